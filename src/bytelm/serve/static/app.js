// bytelm serve: the playground page. Plain JS, no framework, nothing fetched from elsewhere.
// window.bytelm holds the last results and timings (read by the browser test).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { runs: [], limits: {}, a: null, b: null, groups: [], fileBytes: null, gen: null };
window.bytelm = { render: null, gen: null, state };
const COLOURS = ["#2458d3", "#d3452f", "#1b9e5a", "#9b46c9", "#c98a12", "#127f8f"];
const SVGNS = "http://www.w3.org/2000/svg";

function showError(msg) {
  const e = $("error");
  e.textContent = msg || "";
  e.hidden = !msg;
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const resp = await fetch(path, opts);
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data.error || `${resp.status} ${resp.statusText}`);
  return data;
}

function fmt(x, d = 4) { return Number(x).toFixed(d); }
function esc(s) { return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); }

// a byte as the tooltip shows it: printable ASCII as itself, others as \xNN
function byteLabel(b) {
  if (b === 32) return "␣";
  if (b === 10) return "\\n";
  if (b > 32 && b < 127) return String.fromCharCode(b);
  return "\\x" + b.toString(16).padStart(2, "0");
}

// ---------------------------------------------------------------- surprisal view
// bytes -> characters: a group starts at every byte that is not a UTF-8 continuation byte
function groupChars(bytes) {
  const groups = [];
  const dec = new TextDecoder("utf-8");
  let start = 0;
  for (let i = 1; i <= bytes.length; i++) {
    if (i === bytes.length || (bytes[i] & 0xc0) !== 0x80 || i - start >= 4) {
      const sub = Uint8Array.from(bytes.slice(start, i));
      groups.push({ start, end: i, text: dec.decode(sub) });
      start = i;
    }
  }
  return groups;
}

function charBits(res, g) {
  let sum = 0, scored = false;
  for (let i = g.start; i < g.end; i++) {
    if (res.bits[i] !== null) { sum += res.bits[i]; scored = true; }
  }
  return scored ? sum : null;
}

function bucketClass(mode, g) {
  if (mode === "diff") {
    const a = charBits(state.a, g), b = charBits(state.b, g);
    if (a === null || b === null) return "ctx";
    return "d" + Math.max(0, Math.min(16, Math.round((a - b) * 2) + 8));
  }
  const v = charBits(mode === "b" ? state.b : state.a, g);
  return v === null ? "ctx" : "s" + Math.min(16, Math.floor(v * 2));
}

function endClass(res, g) {
  if (!res || !res.ends) return "";
  let cls = "";
  for (let i = g.start; i < g.end; i++) {
    if (res.ends[i]) cls = i === g.end - 1 ? " end" : " cut";
  }
  return cls;
}

function currentMode() {
  const m = $("show").value;
  return (m !== "a" && !state.b) ? "a" : m;
}

function render() {
  const t0 = performance.now();
  const mode = currentMode();
  // boundaries of the run shown; in the difference view, of whichever of the two has patches
  const boundsOf = mode === "b" ? state.b : mode === "diff" && !state.a.ends ? state.b : state.a;
  const parts = new Array(state.groups.length);
  state.groups.forEach((g, k) => {
    let text = g.text, cls = bucketClass(mode, g) + endClass(boundsOf, g);
    if (text === "\n") cls += " nl";
    else if (/^[\x00-\x08\x0b-\x1f\x7f]$/.test(text)) text = "\u00b7";
    parts[k] = `<span data-g="${k}" class="${cls}">${esc(text)}</span>`;
  });
  const view = $("view");
  view.innerHTML = parts.join("");
  view.classList.toggle("ends", $("show-ends").checked);
  renderLegend(mode);
  renderHistogram(boundsOf);
  window.bytelm.render = { ms: performance.now() - t0, mode, groups: state.groups.length };
}

function renderLegend(mode) {
  const lg = $("legend");
  lg.innerHTML = "";
  const label = (t) => { const s = document.createElement("span"); s.textContent = t; lg.append(s); };
  label(mode === "diff" ? "compared run more surprised −4 bits " : "0 bits ");
  for (let i = 0; i <= 16; i++) {
    const s = document.createElement("span");
    s.className = "sw " + (mode === "diff" ? "d" : "s") + i;
    lg.append(s);
  }
  label(mode === "diff" ? " +4 bits run more surprised (per character)" : " ≥ 8 bits per character");
}

function statsLine(res, tag) {
  const span = document.createElement("span");
  span.className = "run";
  span.innerHTML = `<i>${esc(res.run)}</i>: <b id="bpb-${tag}">${fmt(res.bpb)}</b> bits/byte, ` +
    `<b id="bpc-${tag}">${fmt(res.bits_per_char)}</b> bits/char over ${res.n_bytes.toLocaleString()} ` +
    `scored bytes <span class="muted">(window ${res.seq_len}, first byte unscored)</span>`;
  return span;
}

function renderStats() {
  const st = $("stats");
  st.innerHTML = "";
  st.append(statsLine(state.a, "a"));
  if (state.b) {
    st.append(statsLine(state.b, "b"));
    const d = document.createElement("span");
    d.className = "run";
    d.innerHTML = `difference <b id="bpb-diff">${fmt(state.a.bpb - state.b.bpb)}</b> bits/byte`;
    st.append(d);
  }
}

// an <svg> of W x H and add(tag, attrs, text) that appends a child element to it
function svgCanvas(id, W, H) {
  const svg = document.createElementNS(SVGNS, "svg");
  svg.setAttribute("width", W); svg.setAttribute("height", H); svg.id = id;
  const add = (tag, attrs, text) => {
    const el = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    svg.append(el);
    return el;
  };
  return [svg, add];
}

function patchLengths(ends) {
  const lens = [];
  let last = -1;
  for (let i = 0; i < ends.length; i++) if (ends[i]) { lens.push(i - last); last = i; }
  if (last < ends.length - 1) lens.push(ends.length - 1 - last);  // the open last patch
  return lens;
}

function renderHistogram(res) {
  const h = $("hist");
  h.innerHTML = "";
  if (!res || !res.ends) return;
  const lens = patchLengths(res.ends);
  const maxLen = Math.min(Math.max(...lens), 64);
  const counts = new Array(maxLen + 1).fill(0);
  lens.forEach((l) => counts[Math.min(l, maxLen)]++);
  const W = 520, H = 150, pad = 28, bw = (W - 2 * pad) / maxLen, top = Math.max(...counts);
  const [svg, add] = svgCanvas("hist-svg", W, H);
  for (let l = 1; l <= maxLen; l++) {
    const bh = (H - 2 * pad) * counts[l] / top;
    add("rect", { x: pad + (l - 1) * bw + 1, y: H - pad - bh, width: Math.max(bw - 2, 1), height: bh,
                  fill: "#2458d3", "data-len": l, "data-count": counts[l] })
      .append(Object.assign(document.createElementNS(SVGNS, "title"),
                            { textContent: `${counts[l]} patches of ${l} bytes` }));
    if (maxLen <= 20 || l % 5 === 0 || l === 1)
      add("text", { x: pad + (l - 0.5) * bw, y: H - pad + 13, "font-size": 10, "text-anchor": "middle" }, l);
  }
  const mean = res.ends.length / lens.length;
  add("text", { x: pad, y: 16, "font-size": 12 },
      `patch lengths (${res.run}): ${lens.length} patches, mean ${fmt(mean, 2)} bytes`);
  h.append(svg);
}

function tipText(g) {
  const lines = [`${JSON.stringify(g.text)}  bytes ${g.start}..${g.end - 1}`];
  for (const [tag, res] of [["", state.a], ["compared ", state.b]]) {
    if (!res) continue;
    for (let i = g.start; i < g.end; i++) {
      const b = res.bytes[i];
      const bits = res.bits[i] === null ? "not scored (no context)" : `${fmt(res.bits[i], 2)} bits`;
      const hex = "0x" + b.toString(16).padStart(2, "0");
      lines.push(`${tag}${res.run}: ${b > 32 && b < 127 ? `'${byteLabel(b)}' ${hex}` : hex} ${bits}`);
      if (res.top_bytes[i][0] >= 0) {
        lines.push("  expected: " + res.top_bytes[i].map((c, j) => `${byteLabel(c)} ${fmt(res.top_probs[i][j], 3)}`).join("  "));
      }
      if (res.ends && res.ends[i]) lines.push(i === g.end - 1 ? "  a patch ends here" : "  a patch ends here, inside the character");
    }
  }
  return lines.join("\n");
}

function onHover(ev) {
  const tip = $("tip");
  const span = ev.target.closest("span[data-g]");
  if (!span || !state.a) { tip.hidden = true; return; }
  tip.textContent = tipText(state.groups[Number(span.dataset.g)]);
  tip.hidden = false;
  const x = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
  const y = ev.clientY + 18 + tip.offsetHeight > window.innerHeight ? ev.clientY - tip.offsetHeight - 10 : ev.clientY + 18;
  tip.style.left = `${Math.max(4, x)}px`;
  tip.style.top = `${Math.max(4, y)}px`;
}

function requestBody() {
  if (state.fileBytes) {
    let bin = "";
    state.fileBytes.forEach((b) => { bin += String.fromCharCode(b); });
    return { data_b64: btoa(bin) };
  }
  return { text: $("text").value };
}

async function analyse() {
  showError("");
  const t0 = performance.now();
  const btn = $("analyse");
  btn.disabled = true;
  try {
    const body = requestBody();
    const runB = $("run-b").value;
    const [a, b] = await Promise.all([
      api("/api/score", { run: $("run-a").value, ...body }),
      runB ? api("/api/score", { run: runB, ...body }) : Promise.resolve(null)]);
    state.a = a; state.b = b;
    state.groups = groupChars(a.bytes);
    if (b && $("show").value === "a") $("show").value = "diff";
    renderStats();
    render();
    window.bytelm.analyse = { ms: performance.now() - t0, bytes: a.bytes.length };
  } catch (e) {
    showError(e.message);
  } finally {
    btn.disabled = false;
  }
}

async function openFile(ev) {
  const f = ev.target.files[0];
  if (!f) return;
  const bytes = new Uint8Array(await f.arrayBuffer());
  try {
    $("text").value = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    state.fileBytes = null;
  } catch {
    state.fileBytes = bytes;  // not UTF-8: sent as raw bytes until the text is edited
    $("text").value = `(${f.name}: ${bytes.length.toLocaleString()} bytes, not UTF-8 text; sent as raw bytes)`;
  }
}

// ---------------------------------------------------------------- generation
async function generate() {
  showError("");
  const t0 = performance.now();
  const out = $("gen-text");
  const status = $("gen-status");
  const seed = $("gen-seed").value;
  const body = {
    run: $("gen-run").value, prompt: $("prompt").value, mode: $("gen-mode").value,
    temperature: Number($("gen-temp").value), top_k: Number($("gen-topk").value),
    top_p: Number($("gen-topp").value), max_bytes: Number($("gen-max").value),
  };
  if (seed !== "") body.seed = Number(seed);
  const ctrl = new AbortController();
  const g = { ctrl, n: 0, firstMs: null, done: false, stopped: false };
  state.gen = g;
  window.bytelm.gen = g;
  $("gen-prompt").textContent = body.prompt;
  out.textContent = "";
  $("gen-start").disabled = true;
  $("gen-stop").disabled = false;
  status.textContent = "generating…";
  const dec = new TextDecoder("utf-8");
  try {
    const resp = await fetch("/api/generate", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body), signal: ctrl.signal });
    if (!resp.ok) {
      const data = await resp.json().catch(() => ({}));
      throw new Error(data.error || `${resp.status} ${resp.statusText}`);
    }
    const reader = resp.body.getReader();
    const text = new TextDecoder("utf-8");
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += text.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const ev = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const kind = (ev.match(/^event: (.*)$/m) || [, "message"])[1];
        const data = JSON.parse((ev.match(/^data: (.*)$/m) || [, "{}"])[1]);
        if (kind === "done") { g.done = true; continue; }
        out.append(dec.decode(Uint8Array.of(data.byte), { stream: true }));
        g.n++;
        if (g.firstMs === null) g.firstMs = performance.now() - t0;
      }
    }
    out.append(dec.decode());
    status.textContent = `${g.n} bytes in ${fmt((performance.now() - t0) / 1000, 2)} s`;
  } catch (e) {
    if (g.stopped) status.textContent = `stopped after ${g.n} bytes`;
    else { showError(e.message); status.textContent = ""; }
  } finally {
    $("gen-start").disabled = false;
    $("gen-stop").disabled = true;
  }
}

function stopGeneration() {
  if (!state.gen) return;
  state.gen.stopped = true;
  state.gen.ctrl.abort();
}

// ---------------------------------------------------------------- runs' curves
async function renderCurves() {
  const box = $("curves");
  if (box.dataset.done) return;
  box.dataset.done = "1";
  const curves = [];
  for (const r of state.runs.filter((r) => r.curves)) {
    try { curves.push(await api(`/api/runs/${encodeURIComponent(r.name)}/curves`)); }
    catch (e) { showError(e.message); }
  }
  if (!curves.length) { box.textContent = "No loaded run has a metrics.jsonl."; return; }
  const W = 720, H = 320, L = 48, R = 150, T = 16, B = 32;
  const all = curves.flatMap((c) => [...c.train.bpb, ...c.val.bpb]);
  const steps = curves.flatMap((c) => [...c.train.step, ...c.val.step]);
  let y0 = Math.min(...all), y1 = Math.max(...all);
  if (y1 - y0 < 1e-6) { y0 -= 0.5; y1 += 0.5; }
  const x1 = Math.max(1, ...steps);
  const X = (s) => L + (W - L - R) * s / x1, Y = (v) => T + (H - T - B) * (y1 - v) / (y1 - y0);
  const [svg, add] = svgCanvas("curves-svg", W, H);
  add("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#999" });
  add("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#999" });
  for (const v of [y0, (y0 + y1) / 2, y1])
    add("text", { x: L - 4, y: Y(v) + 4, "font-size": 11, "text-anchor": "end" }, fmt(v, 2));
  add("text", { x: L, y: H - 10, "font-size": 11 }, "0");
  add("text", { x: W - R, y: H - 10, "font-size": 11, "text-anchor": "end" }, `step ${x1}`);
  curves.forEach((c, k) => {
    const col = COLOURS[k % COLOURS.length];
    if (c.train.step.length)
      add("polyline", { fill: "none", stroke: col, "stroke-width": 1.5, class: "train",
                        points: c.train.step.map((s, i) => `${X(s)},${Y(c.train.bpb[i])}`).join(" ") });
    c.val.step.forEach((s, i) => add("circle", { cx: X(s), cy: Y(c.val.bpb[i]), r: 3.5, fill: col, class: "val" }));
    add("text", { x: W - R + 10, y: T + 14 + 16 * k, "font-size": 12, fill: col }, c.name);
  });
  box.append(svg);
}

function renderRunTable() {
  const t = $("run-table");
  t.innerHTML = "<tr><th>run</th><th>family</th><th>parameters</th><th>context</th><th>patches</th><th>checkpoint</th></tr>";
  for (const r of state.runs) {
    const tr = document.createElement("tr");
    for (const v of [r.name, r.family, r.n_params.toLocaleString(), r.context, r.patches ? "yes" : "no", r.checkpoint]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.append(td);
    }
    t.append(tr);
  }
}

// ---------------------------------------------------------------- wiring
function showTab(name) {
  document.querySelectorAll("button.tab").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  for (const s of ["text", "generate", "runs"]) $(`tab-${s}`).hidden = s !== name;
  if (name === "runs") renderCurves();
}

async function init() {
  try {
    const info = await api("/api/runs");
    state.runs = info.runs;
    state.limits = info.limits;
  } catch (e) {
    showError(e.message);
    return;
  }
  for (const sel of ["run-a", "run-b", "gen-run"]) {
    for (const r of state.runs) $(sel).append(new Option(r.name, r.name));
  }
  $("gen-max").max = state.limits.max_new_bytes;
  $("loaded").textContent = `${state.runs.length} run(s): ${state.runs.map((r) => r.name).join(", ")}`;
  renderRunTable();
  document.querySelectorAll("button.tab").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
  $("analyse").addEventListener("click", analyse);
  $("file").addEventListener("change", openFile);
  $("text").addEventListener("input", () => { state.fileBytes = null; });
  $("show").addEventListener("change", () => state.a && render());
  $("show-ends").addEventListener("change", () => $("view").classList.toggle("ends", $("show-ends").checked));
  $("view").addEventListener("mouseover", onHover);
  $("view").addEventListener("mouseleave", () => { $("tip").hidden = true; });
  $("gen-start").addEventListener("click", generate);
  $("gen-stop").addEventListener("click", stopGeneration);
  document.body.dataset.ready = "1";
}

init();
