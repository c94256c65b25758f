"""Renders the results tables of README.md from the committed result files and writes each
between its markers ``<!-- table:NAME -->`` ... ``<!-- /table:NAME -->``:

    python benchmarks/tables.py            # rewrite the tables in place
    python benchmarks/tables.py --check    # exit 1 if any table differs from its files

Every number in a table is read from the file named in its row; MFU uses today's
``flops_per_byte`` (``equal_time_30m/mfu_recount.json``, made by benchmarks/mfu_recount.py).
"""
import argparse
from functools import partial
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RES = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "src"))
DOCS = [ROOT / "README.md", ROOT / "docs" / "hnet.md", ROOT / "docs" / "results.md",
        ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "agiformer.md",
        ROOT / "docs" / "bsfin.md", ROOT / "docs" / "ecosystem.md"]


def _done(rows: list[str], note: str) -> str:
    """A table's markdown: its rows, a blank line, then its note (the file it was read from)."""
    return "\n".join(rows) + "\n\n" + note


def _load(rel: str) -> dict:
    return json.loads((RES / rel).read_text())


def _mfu_row(rel: str) -> dict:
    """A run file's row of equal_time_30m/mfu_recount.json (MFU with today's flops_per_byte)."""
    rows = {r["file"]: r for r in _load("equal_time_30m/mfu_recount.json")["rows"]}
    return rows[f"benchmarks/results/{rel}"]


def _mfu_now(rel: str) -> float:
    return _mfu_row(rel)["mfu_now"]


def _budget_min(d: dict) -> float:
    """The --train.time_budget_min of a run file's commands."""
    return next(float(a.split("=")[1]) for c in d["commands"] for a in c.split()
                if a.startswith("--train.time_budget_min="))


def equal_time_8min() -> str:
    """The 8.3-minute English runs of the three seed-era families (one H100 each)."""
    runs = [("`transformer-30m`", "equal_time_30m/baseline_en.json"),
            ("`agiformer-31m`", "equal_time_30m/agiformer_en.json"),
            ("`bsfin-35m` (babylon)", "equal_time_30m/bsfin_en_babylon_qkmem.json")]
    out = ["| model (English Wikipedia, 8.3 min, one H100) | test bpb | steps | bytes seen | "
           "steady bytes/s | MFU | file |", "|---|---:|---:|---:|---:|---:|---|"]
    for name, rel in runs:
        d = _load(rel)
        ts = d["train_summary"]
        out.append(f"| {name} | {d['test']['bpb']:.3f} | {ts['steps']:,} | "
                   f"{ts['bytes_seen'] / 1e6:,.0f} M | {ts['steady_bytes_per_s'] / 1e6:.2f} M | "
                   f"{100 * _mfu_now(rel):.1f}% | `{rel}` |")
    return "\n".join(out)


def hnet_2_5min() -> str:
    """hnet against transformer-30m, 2.5 minutes each: the latest AdamW job and the Muon job."""
    files = ["hnet/equal_time_2.5min_e1d3_h100.json", "hnet/equal_time_2.5min_muon_h100.json"]
    out = ["| model (English Wikipedia, 2.5 min each) | optimizer | test bpb | steps | "
           "overall / steady bytes/s | s to val 1.60 | s to val 1.50 |",
           "|---|---|---:|---:|---:|---:|---:|"]
    for rel in files:
        d = _load(rel)
        for r in sorted(d["runs"], key=lambda r: r["test"]["bpb"]):
            ts = r["train_summary"]
            opt = next((o.split("=", 1)[1] for o in r["options"] if o.startswith("--optim.name=")), "adamw")
            reach = [f"{r[k]['train_s']:.0f}" if r.get(k) else "not reached" for k in ("time_to_1_60", "time_to_1_50")]
            out.append(f"| `{r['name']}` | {opt} | {r['test']['bpb']:.3f} | {ts['steps']:,} | "
                       f"{ts['bytes_per_s'] / 1e6:.2f} M / {ts['steady_bytes_per_s'] / 1e6:.2f} M | "
                       f"{reach[0]} | {reach[1]} |")
    dev = {_load(f)["device"] for f in files}
    return _done(out, "Files: " + " (rows 1-3) and ".join(f"`{f}`" for f in files) + " (rows 4-5): "
                      f"two device calls on {', '.join(sorted(dev))} machines, {_load(files[1])['date']}; "
                      "compare rows within one file. Seconds of training, compilation included, "
                      "validations not.")


def _ablation(rows: list[tuple[str, str, str]]) -> str:
    """A CPU-ablation table: (label, result file, run name) rows, validation bpb per eval."""
    loaded = [(label, rel, next(r for r in _load(rel)["runs"] if r["name"] == name))
              for label, rel, name in rows]
    steps = [s for s, _ in loaded[0][2]["val_curve"]]
    best = min(r["val_curve"][-1][1] for _, _, r in loaded)
    out = ["| run | " + " | ".join(f"val bpb at step {s}" for s in steps) + " | chunk len (train, last) |",
           "|---|" + "---:|" * (len(steps) + 1)]
    for label, _, r in loaded:
        vals = [f"{v:.3f}" for _, v in r["val_curve"]]
        if r["val_curve"][-1][1] == best:
            vals[-1] = f"**{vals[-1]}**"
        cl = (r.get("last_train_stats") or {}).get("chunk_len")
        out.append(f"| {label} | " + " | ".join(vals) + f" | {cl:.2f} |" if cl else
                   f"| {label} | " + " | ".join(vals) + " | - |")
    files = sorted({rel for _, rel, _ in rows})
    out.append("\nFile" + ("s" if len(files) > 1 else "") + ": " +
               ", ".join(f"`{f}`" for f in files) + " (400 steps, same data order, fp32, CPU).")
    return "\n".join(out)


R1, R2, R3, R4, R5, R6 = (f"hnet/cpu_ablation{s}.json"
                          for s in ("", "_round2", "_round3", "_round4", "_round5", "_round6"))


def hnet_ablation_1() -> str:
    """Round 1: the residual projection, the byte stages' learning rate, Muon."""
    return _ablation([
        ("A: first version (`residual_proj=false`, byte LR 1x)", R1, "A_nores"),
        ("B: + zero-init residual projection", R1, "B_res"),
        ("C: B + byte stages at 2x LR (`byte_lr_mult=2`, now the preset)", R1, "C_res_blr2"),
        ("E: B with `--optim.name=muon` (same LR)", R1, "E_res_muon"),
        ("D: a Transformer, 4 layers at 192 (reference, not equal cost)", R1, "D_gpt"),
        ("F: D with `--optim.name=muon`", R1, "F_gpt_muon")])


def hnet_ablation_2() -> str:
    """Round 2: where the per-step deficit sits (byte-stage width and depth)."""
    return _ablation([
        ("C: byte stages 2 + 2 at 128 (rerun)", R2, "C_res_blr2"),
        ("G: byte stages 1.5x wider (192)", R2, "G_wide_bytes"),
        ("H: byte stages 3 + 3 deep", R2, "H_deep_bytes"),
        ("I: byte stages 2x wider (256)", R2, "I_wider_bytes")])


def hnet_ablation_3() -> str:
    """Rounds 3-6: from I, chunk length, encoder/decoder split, main-network LR, byte mixer."""
    rows = [("I (rerun)", R3, "I_wider_bytes"),
            ("J: I + target chunk 6 bytes (fewer main positions)", R3, "J_wide_chunk6"),
            ("K: I with 1 encoder + 3 decoder blocks", R3, "K_wide_enc1_dec3"),
            ("L: I + main network at half the learning rate (`main_lr_mult=0.5`)", R3, "L_wide_main_lr05")]
    if (RES / R4).exists():
        rows += [("M: K + L", R4, "M_wide_e1d3_mlr05"),
                 ("N: M + a fifth main block", R4, "N_wide_e1d3_mlr05_main5")]
    if (RES / R5).exists():
        rows += [("O: M with window attention (64) in the byte stages", R5, "O_M_swa64"),
                 ("P: M with byte stages 3x wide (384)", R5, "P_M_bytes384")]
    if (RES / R6).exists():
        rows += [("Q: M with window attention (32)", R6, "Q_M_swa32"),
                 ("R: M with window attention (16)", R6, "R_M_swa16")]
    return _ablation(rows)


def _hnet_shapes(rel: str) -> str:
    """hnet shapes against transformer-30m, 2.5 minutes each in one GPU job: size, speed, test."""
    d = _load(rel)
    out = [f"| model (2.5 min each, one {d['device']} job, {d['date']}) | params | MFLOP/byte | "
           "steps | overall / steady bytes/s | test bpb |", "|---|---:|---:|---:|---:|---:|"]
    for r in d["runs"]:
        ts = r["train_summary"]
        out.append(f"| `{r['name']}` | {r['n_params'] / 1e6:.1f} M | {r['flops_per_byte'] / 1e6:.1f} | "
                   f"{ts['steps']:,} | {ts['bytes_per_s'] / 1e6:.2f} M / "
                   f"{ts['steady_bytes_per_s'] / 1e6:.2f} M | {r['test']['bpb']:.3f} |")
    return _done(out, f"File: `{rel}` (commit {d['git_commit'][:7]}).")


def hnet_swa_paths() -> str:
    """flex_attention inside the compiled hnet against the eager blocked form (one H100)."""
    files = ["hnet/swa_paths_w128_h100.json", "hnet/swa_paths_w512_h100.json"]
    out = ["| window | op: rel. error vs fp32 reference, compiled (flex) / eager (blocked) | "
           "op: input-grad rel. error, flex / blocked (q) | model loss bf16, compiled / eager / fp32 eager | "
           "model grads rel. diff, compiled vs eager / bf16 vs fp32 |", "|---:|---|---|---|---|"]
    for rel in files:
        d = _load(rel)
        for op, m in zip(d["op"], d["model"]):
            assert op["impl_compiled"] == "triton" and op["impl_eager"] == "chunk", rel
            out.append(f"| {op['window']} | {op['compiled']['rel_out']:.4f} / {op['eager']['rel_out']:.4f} | "
                       f"{op['compiled']['rel_grad_qkv'][0]:.4f} / {op['eager']['rel_grad_qkv'][0]:.4f} | "
                       f"{m['loss_compiled_bf16']:.4f} / {m['loss_eager_bf16']:.4f} / {m['loss_eager_fp32']:.4f} | "
                       f"{m['grad_rel_compiled_vs_eager']:.3f} / {m['grad_rel_eager_bf16_vs_fp32']:.3f} |")
    return _done(out, "Op: bf16 (8, 8, 1024, 64); model: `hnet-59m` with `--model.byte_mixer=swa`, seeded "
                      "weights, 8 x 1,024 bytes of the validation split. Files: "
                      + ", ".join(f"`{f}`" for f in files) + ".")


def baseline_30m() -> str:
    """The seed-era families on the baseline's benchmarks (one H100 run each)."""
    runs = [("`transformer-30m`, English Wikipedia (72 MB)", "baseline_en"),
            ("`transformer-30m`, Turkish text (4.4 MB)", "baseline_tr"),
            ("`agiformer-31m`, English Wikipedia", "agiformer_en"),
            ("`agiformer-31m`, Turkish text", "agiformer_tr"),
            ("`bsfin-35m` (babylon), English Wikipedia", "bsfin_en_babylon_qkmem"),
            ("`bsfin-35m` (babylon), Turkish text", "bsfin_tr_babylon_qkmem"),
            ("`bsfin-35m` (babylon, norms off), English Wikipedia", "bsfin_en_babylon"),
            ("`bsfin-35m` (entropy-model, norms off), English Wikipedia", "bsfin_en_entropy-model"),
            ("`bsfin-35m` (babylon, eager, norms off), Turkish text", "bsfin_tr_babylon"),
            ("`bsfin-35m` (entropy-model, norms off), Turkish text", "bsfin_tr_entropy-model")]
    out = ["| run | time budget (measured training) | bytes seen | test bpb | test bits/char | "
           "steady bytes/s | MFU | peak memory |", "|---|---|---|---|---|---|---|---|"]
    for label, f in runs:
        rel = f"equal_time_30m/{f}.json"
        d = _load(rel)
        ts = d["train_summary"]
        budget = _budget_min(d)
        test = f"{d['test']['bpb']:.3f}"
        if "_tr" in f:  # the old Turkish test split: half of it the book index since cut
            test += f" (val {ts['best_val_bpb']:.3f})"
        elif d["test"]["bpb"] > 1.9:
            test += " (collapsed)"
        out.append(f"| {label} | {budget:g} min ({ts['train_time_s'] / 60:.1f} min) | "
                   f"{ts['bytes_seen'] / 1e6:,.0f} M | {test} | {d['test']['bits_per_char']:.3f} | "
                   f"{ts['steady_bytes_per_s'] / 1e6:.2f} M | {100 * _mfu_now(rel):.1f}% | "
                   f"{ts['peak_memory_gib']:.1f} GiB |")
    out.append("\nFiles: `equal_time_30m/<run>.json` (baseline_en, baseline_tr, agiformer_en, ...); "
               "Turkish test bpb on the test split of then (217,578 bytes, 49.8% of them the book "
               "index that `../shared/data` has since cut), so only its val column is comparable.")
    return "\n".join(out)


def _run_cells(rel: str) -> dict:
    """One equal_time_30m run file as the cells of a detail table (name -> text)."""
    d = _load(rel)
    ts, sp = d["train_summary"], d["corpus"]["splits"]
    budget = _budget_min(d)
    m = _mfu_row(rel)
    bv = d.get("best_val") or {}
    last = ", the last" if bv.get("step") == ts["steps"] else ""
    return {
        "corpus": f"`{d['corpus']['source'].split('/', 3)[-1]}`: {sp['train']:,} / {sp['val']:,} / {sp['test']:,} bytes",
        "budget": f"{budget:g} min ({ts['train_time_s'] / 60:.1f} min measured training)",
        "steps": f"{ts['steps']:,} / {ts['bytes_seen'] / 1e6:.1f} M ({ts['bytes_seen'] / sp['train']:.1f} epochs)",
        "best_val": f"{bv['bpb']:.4f} ({bv['step']:,}{last})" if bv else "-",
        "test": f"**{d['test']['bpb']:.4f}** / {d['test']['bits_per_char']:.4f}",
        "speed": f"{ts['steady_bytes_per_s']:,.0f}",
        "mfu": f"{100 * m['mfu_now']:.1f}% / {100 * m['mfu_vs_measured_matmul_now']:.1f}%"
               + (f" (matmul {d['ceilings']['bf16_matmul_tflops_measured']:.1f} TFLOP/s)" if d.get("ceilings") else ""),
        "memory": f"{ts['peak_memory_gib']:.1f} GiB",
        "params": f"{ts['n_params'] / 1e6:.2f} M",
        "flops": f"{m['flops_per_byte_now'] / 1e6:.1f} M",
        "file": f"`{rel}`",
    }


ROWS = {"corpus": "corpus (`bytelm prepare`; train / val / test)", "budget": "time budget",
        "steps": "optimizer steps / bytes seen", "best_val": "best validation bpb (step)",
        "test": "**test bpb** / bits per char", "speed": "steady bytes/s",
        "mfu": "MFU vs the 989.4 TFLOP/s datasheet / vs the call's measured bf16 matmul",
        "memory": "peak GPU memory", "params": "parameters",
        "flops": "training FLOPs per byte (today's `flops_per_byte`)", "file": "result file"}


def _run_detail(cols: list[tuple[str, str]], rows: list[str]) -> str:
    """Runs side by side (label, result file), one row per ROWS key in ``rows``."""
    cells = [_run_cells(rel) for _, rel in cols]
    out = ["| | " + " | ".join(label for label, _ in cols) + " |", "|---|" + "---|" * len(cols)]
    out += [f"| {ROWS[r]} | " + " | ".join(c[r] for c in cells) + " |" for r in rows]
    return "\n".join(out) + "\n\nMFU recounted by `benchmarks/mfu_recount.py` (`equal_time_30m/mfu_recount.json`)."


FAMILIES_30M = [("transformer-30m", "baseline"), ("agiformer-31m", "agiformer"),
                ("bsfin-35m (babylon), norms on: the default", "bsfin_{}_babylon_qkmem"),
                ("bsfin-35m (babylon), norms off", "bsfin_{}_babylon"),
                ("bsfin-35m (entropy-model), norms off", "bsfin_{}_entropy-model")]


def families_30m(lang: str) -> str:
    """The three seed-era families on one corpus of the baseline's benchmark (one H100 run each)."""
    cols = [(label, f"equal_time_30m/{(f + '_{}') if '{}' not in f else f}.json".format(lang))
            for label, f in FAMILIES_30M]
    out = _run_detail(cols, ["params", "flops", "budget", "test", "best_val", "steps", "speed",
                             "mfu", "memory", "file"])
    return out + (" Turkish test bpb is on the test split of then (217,578 bytes, 49.8% of them "
                  "the book index that `../shared/data` has since cut): only validation is comparable."
                  if lang == "tr" else "")


def _rate(v: float) -> str:
    return f"{v / 1e3:.0f} K" if v >= 1e5 else (f"{v / 1e3:.1f} K" if v >= 1e4 else f"{v:,.0f}")


def generate_fast() -> str:
    """``bytelm bench generate --decode auto`` for every family on one H100 (two calls)."""
    files = ["generate/bench_generate_fast_transformer_hnet_h100.json",
             "generate/bench_generate_fast_agiformer_bsfin_h100_partial.json"]
    rows = {}
    for rel in files:
        for r in _load(rel)["rows"]:
            if r["status"] == "ok":
                rows[(r["model"], r["batch"], r["context"])] = r
    models = ["transformer-30m", "agiformer-31m", "hnet-30m", "bsfin-35m"]
    cols = [(1, 1024), (1, 16384), (64, 1024), (64, 16384)]
    out = ["| model | 1K, 1 stream | 16K, 1 stream | 1K, 64 streams | 16K, 64 streams | "
           "TTFB 1K / 16K (1 stream) |", "|---|---:|---:|---:|---:|---:|"]
    for m in models:
        cells = [_rate(rows[(m, b, c)]["bytes_per_s"]) if (m, b, c) in rows else "-" for b, c in cols]
        t = [rows.get((m, 1, c), {}).get("ttfb_ms") for c in (1024, 16384)]
        ttfb = f"{t[0]:.1f} / {t[1]:.1f} ms" if None not in t else "-"
        out.append(f"| {m} | " + " | ".join(cells) + f" | {ttfb} |")
    return _done(out, "(bytes/s in total over the streams.) Files: " + ", ".join(f"`{f}`" for f in files) + ".")


def generate_after() -> str:
    """``bytelm bench generate`` for transformer-30m and hnet-30m after the cache fixes (one H100)."""
    files = ["generate/bench_generate_after_h100.json", "generate/bench_generate_hnet_split_h100.json"]
    rows = {}
    for rel in files:  # the later file (hnet's split single-stream default) overrides
        for r in _load(rel)["rows"]:
            if r["status"] == "ok":
                rows[(r["model"], r["batch"], r["context"])] = (r, rel)
    cols = [(1, 1024), (1, 16384), (64, 1024), (64, 16384)]
    out = ["| model | 1K, 1 stream | 16K, 1 stream | 1K, 64 streams | 16K, 64 streams | "
           "TTFB 1K / 16K (1 stream) |", "|---|---:|---:|---:|---:|---:|"]
    for m in ("transformer-30m", "hnet-30m"):
        cells = [_rate(rows[(m, b, c)][0]["bytes_per_s"]) for b, c in cols]
        t = [rows[(m, 1, c)][0]["ttfb_ms"] for c in (1024, 16384)]
        out.append(f"| {m} | " + " | ".join(cells) + f" | {t[0]:.1f} / {t[1]:.1f} ms |")
    commit = [re.search(r"GIT_COMMIT=(\w+)", _load(f)["device_command"]).group(1)[:7] for f in files]
    return _done(out, f"(bytes/s in total over the streams.) Files: `{files[0]}` (commit {commit[0]}), "
                      f"hnet's one-stream cells `{files[1]}` (commit {commit[1]}, the split decoder); "
                      "two device calls, two H100 machines.")


def decode_profile_h100() -> str:
    """Compiled decoding steps on one H100: before and after the in-place KV-cache write, and
    with the cache in bf16 (no per-step conversion)."""
    how = {"": "scatter_ write, fp32 (before)", "_indexput": "index_put_ write, fp32",
           "_bf16cache": "index_put_ write, bf16"}
    every = ("", "_indexput", "_bf16cache")
    rows = [("transformer-30m", 1, every), ("transformer-30m", 64, every),
            ("hnet-30m", 1, ("", "_bf16cache")), ("hnet-30m", 64, every)]  # hnet b1: no index_put_ fp32 run
    out = ["| model | streams | cache | step ms (median) | bytes/s (all streams) | "
           "busy ms / step | kernels / step | file |", "|---|---:|---|---:|---:|---:|---:|---|"]
    commits = []
    for preset, b, tags in rows:
        for tag in tags:
            rel = f"generate/profile_decode_compiled_{preset}_b{b}_sdpa{tag}_h100.json"
            d = _load(rel)
            ms = d["step_ms_median"]
            out.append(f"| `{preset}` | {b} | {how[tag]} | {ms:.2f} | {b * 1e3 / ms:,.0f} | "
                       f"{d['busy_ms_per_step']:.2f} | {d['kernels_per_step']:.0f} | "
                       f"`{rel.split('/')[1]}` |")
            commits.append(d["git_commit"][:7])
    return _done(out, "Prompt 512 bytes, 64 decoded bytes, bf16 autocast, compiled (CUDA graphs), SDPA "
                      "cache reads; each cache column is its own device call (three H100 machines); "
                      f"folder `generate/`, commits {', '.join(sorted(set(commits)))}.")


def _recall(rel: str) -> str:
    """``bytelm recall``: query accuracy per (length, pairs) cell and model, their mean, final loss."""
    d = _load(rel)
    ms = d["models"]
    out = ["| length | pairs | " + " | ".join(f"`{m['spec']}`" for m in ms) + " |",
           "|---:|---:|" + "---:|" * len(ms)]
    for i, (length, pairs) in enumerate(d["eval"]["cells"]):
        out.append(f"| {length} | {pairs} | " + " | ".join(f"{m['cells'][i]['query_acc']:.3f}" for m in ms) + " |")
    out.append("| mean | | " + " | ".join(f"{m['mean_query_acc']:.3f}" for m in ms) + " |")
    out.append("| final train loss | | " + " | ".join(f"{m['final_loss']:.2f}" for m in ms) + " |")
    return _done(out, f"Query accuracy (chance 1/256). File: `{rel}`.")


def recall_encoder_norm() -> str:
    """AGIFORMER's encoder norm and recall (CPU, 1,000 steps, 64 bytes), two result files."""
    labels = {"transformer-tiny": "transformer-tiny", "agiformer-tiny": "agiformer-tiny",
              "agiformer-tiny[encoder_norm=false]": "agiformer-tiny, `encoder_norm=false`",
              "agiformer-tiny[encoder_norm_init=0.1]": "agiformer-tiny, `encoder_norm_init=0.1`"}
    reduced = "patch_size=1,patch_kernel=1,window=64,think_steps=0,mixer_gate=fixed,fixed_alpha=1.0"
    labels[f"agiformer-tiny[{reduced}]"] = "reduced (byte-level softmax attention only)"
    labels[f"agiformer-tiny[{reduced},encoder_norm=false]"] = "reduced, `encoder_norm=false`"
    files = ["recall/recall_cpu_encoder_norm.json", "recall/recall_cpu_encoder_norm_gain.json"]
    out = ["| query accuracy after 1,000 steps (64 bytes) | 1 pair | 2 pairs | final value loss |",
           "|---|---:|---:|---:|"]
    for rel in files:
        d = _load(rel)
        assert [c[1] for c in d["eval"]["cells"]] == [1, 2], rel
        for m in d["models"]:
            out.append(f"| {labels[m['spec']]} | " + " | ".join(f"{c['query_acc']:.3f}" for c in m["cells"])
                       + f" | {m['final_loss']:.3f} |")
    return _done(out, "Files: " + ", ".join(f"`{f}`" for f in files) + " (CPU).")


def recall_delta_seeds() -> str:
    """Decay-only against delta-rule memory over four training seeds (CPU, 4,000 steps)."""
    out = ["| training seed | decay only (`hebbian`) | delta rule (`delta`) |", "|---:|---:|---:|"]
    allc = {"agiformer-tiny": [], "agiformer-tiny[memory_rule=delta]": []}
    for seed in (1337, 1, 2, 3):
        d = _load(f"recall/recall_cpu_delta_4000_s{seed}.json")
        cells = {m["spec"]: [c["query_acc"] for c in m["cells"]] for m in d["models"]}
        row = []
        for spec in allc:
            allc[spec] += cells[spec]
            row.append(" / ".join(f"{v:.3f}" for v in cells[spec]))
        out.append(f"| {seed} | " + " | ".join(row) + " |")
    out.append("| mean of the 8 cells | " + " | ".join(f"{sum(v) / len(v):.3f}" for v in allc.values()) + " |")
    return _done(out, "Query accuracy at 64 bytes, 1 pair / 2 pairs. Files: "
                      "`recall/recall_cpu_delta_4000_s{1337,1,2,3}.json` (CPU).")


def agiformer_params() -> str:
    """Exact parameter counts of the AGIFORMER presets by part, from today's code."""
    import bytelm
    out = ["| preset | params | encoder | blocks | memory | reasoning | head |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for name in ("agiformer-31m", "agiformer-129m"):
        m = bytelm.create_model(name)
        c = m.config
        n = {k: sum(p.numel() for p in v.parameters()) for k, v in m.named_children()}
        desc = f"d {c.d_model}, {c.n_layers} layers, {c.n_heads} heads, W {c.window}"
        out.append(f"| {name} ({desc}) | {sum(p.numel() for p in m.parameters()):,} | "
                   + " | ".join(f"{n.get(k, 0):,}" for k in ("encoder", "blocks", "memory", "reason", "head"))
                   + " |")
    return _done(out, "From `bytelm.create_model` (the norms between the parts, 512 or 768 parameters each, "
                      "are in the total only).")


def patch_stats() -> str:
    """Patch lengths of every boundary rule on 100 KB of English and of Turkish."""
    rel = "patching/patch_stats.json"
    d = _load(rel)
    out = ["| patcher | en mean / median / p90 / max | tr mean / median / p90 / max |", "|---|---|---|"]
    for name, st in d["stats"].items():
        cells = [f"{v['mean']:.2f} / {v['median']:g} / {v['p90']:g} / {v['max']}" for v in (st["en"], st["tr"])]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    lm = d["lm"]
    return _done(out, f"File: `{rel}` ({d['bytes_per_sample']:,} bytes of each; the entropy model: "
                      f"`{lm['preset']}`, {lm['steps']} steps, val {lm['val_bpb']:.2f} bpb).")


def lm_eval_h100() -> str:
    """The local lm-eval suite on the four 30M-class models (1 minute of training each)."""
    out = ["| model | training steps | `bytelm eval` test bpb | enwiki_ppl bits/byte | word perplexity | "
           "cloze acc | cloze_mc acc / acc_norm |", "|---|---:|---:|---:|---:|---:|---:|"]
    for m in ("transformer-30m", "hnet-30m", "agiformer-31m", "bsfin-35m"):
        run = _load(f"lm_eval/run_{m}_en_lmeval_h100.json")
        suite = next(iter(_load(f"lm_eval/lm_eval_suite_{m}_h100.json")["runs"].values()))
        wp = suite["enwiki_ppl"]["word_perplexity"]
        out.append(f"| {m} | {run['train_summary']['steps']:,} | {run['test']['bpb']:.3f} | "
                   f"{suite['enwiki_ppl']['bits_per_byte']:.3f} | {wp:.0f} | " if wp < 1e4 else
                   f"| {m} | {run['train_summary']['steps']:,} | {run['test']['bpb']:.3f} | "
                   f"{suite['enwiki_ppl']['bits_per_byte']:.3f} | {wp:.3e} | ")
        out[-1] += (f"{suite['enwiki_cloze']['acc']:.3f} | {suite['enwiki_cloze_mc']['acc']:.3f} / "
                    f"{suite['enwiki_cloze_mc']['acc_norm']:.3f} |")
    return _done(out, "Files: `lm_eval/run_<model>_en_lmeval_h100.json` (training, test bpb) and "
                      "`lm_eval/lm_eval_suite_<model>_h100.json` (the suite).")


def lm_eval_muon() -> str:
    """The local lm-eval suite on the two models of the 2.5-minute Muon job (one H100 call)."""
    runs = {r["name"]: r for r in _load("hnet/equal_time_2.5min_muon_h100.json")["runs"]}
    suite = _load("lm_eval/lm_eval_suite_2.5min_muon_h100.json")["runs"]
    out = ["| model (2.5 min, Muon) | params | steps | `bytelm eval` test bpb | enwiki_ppl bits/byte | "
           "word perplexity | cloze acc | cloze_mc acc / acc_norm |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for path, s in suite.items():
        r = runs[path.split("/")[2]]
        out.append(f"| `{r['name']}` | {r['n_params'] / 1e6:.1f} M | {r['train_summary']['steps']:,} | "
                   f"{r['test']['bpb']:.3f} | {s['enwiki_ppl']['bits_per_byte']:.3f} | "
                   f"{s['enwiki_ppl']['word_perplexity']:.0f} | {s['enwiki_cloze']['acc']:.3f} | "
                   f"{s['enwiki_cloze_mc']['acc']:.3f} / {s['enwiki_cloze_mc']['acc_norm']:.3f} |")
    return _done(out, "Files: `hnet/equal_time_2.5min_muon_h100.json` (training, test bpb) and "
                      "`lm_eval/lm_eval_suite_2.5min_muon_h100.json` (the suite), one device call.")


def prose_report() -> str:
    """``benchmarks/prose_numbers.py``'s report over README.md and docs/*.md, per file (prose
    outside generated tables, so this table does not change its own counts)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import prose_numbers as pn
    rows = pn.report(pn.run(), pn.read_exceptions()).splitlines()
    return _done(rows, "direct: in a cited file, a generated table of the same doc, or specific "
                       "anywhere; derived: a difference, ratio or % change of two numbers; weak: "
                       "matches, but so would a mistyped number (not counted as traced); short: one "
                       "significant digit (out of scope); untraced: none outside "
                       "`docs/prose_numbers_exceptions.txt` (counts from the original-code study, "
                       "../shared/spec/original_code_study.md, not from a result file).")


def _row(rel: str, **match) -> dict:
    """The first row of a bench JSON whose fields equal ``match``."""
    return next(r for r in _load(rel)["rows"] if all(r.get(k) == v for k, v in match.items()))


def targets_issue8() -> str:
    """Issue #8's performance targets against the files that measured them (one H100)."""
    ts = "train_speed/"
    tr = lambda n: _row(ts + "bench_train_transformer_h100.json", seq_len=n)  # noqa: E731
    cg = lambda n: _row(ts + "bench_train_agiformer_cg_h100.json", seq_len=n)  # noqa: E731
    cu = lambda n: _row(ts + "bench_train_agiformer_custom_h100.json", seq_len=n)  # noqa: E731
    fa = lambda n: _row(ts + "bench_train_agiformer_h100.json", seq_len=n)  # noqa: E731
    prof = _load(ts + "profile_train_agiformer_cg_h100.json")
    cat = prof["categories"]
    mix = "mixer/bench_mixer_h100.json"
    mfla, mcus = "mixer/bench_mixer_hebbian_fla_h100.json", "mixer/bench_mixer_hebbian_custom_h100.json"
    ms = lambda rel, **k: _row(rel, **k)["median_ms"]  # noqa: E731
    sd16 = [ms(mfla, op="sdpa") / ms(mfla, op="hebbian"),
            ms(mix, op="sdpa", T=16384) / ms(mix, op="hebbian", impl="triton", T=16384)]
    sd64 = ms(mix, op="sdpa", T=65536) / ms(mix, op="hebbian", impl="triton", T=65536)
    custom = ms(mcus, op="sdpa") / ms(mcus, op="hebbian")
    vs_gla = ms(mcus, op="hebbian") / ms(mfla, op="hebbian")
    st, rr = "generate/bench_generate_static_h100.json", "generate/bench_generate_static_rerun_h100.json"
    dec = lambda rel, c: _row(rel, decode="compiled", context=c)  # noqa: E731
    mem = [_row(ts + "bench_train_memory_h100.json", preset="agiformer-31m", seq_len=n)["peak_memory_gib"]
           for n in (1024, 4096, 16384, 65536)]
    cpu_train = _row(ts + "bench_train_cpu.json", preset="agiformer-tiny")["bytes_per_s"]
    cpu_dec = _row("generate/bench_generate_cpu.json", model="agiformer-tiny", batch=1, context=64)["bytes_per_s"]
    demo = [r["wall_s"] for r in _load("hardening/demo_time_cpu.json")["runs"]]
    pct = lambda v: f"{100 * v:.1f}%"  # noqa: E731
    rows = [
        ("transformer-30m >= 30% MFU at 1K", f"{pct(tr(1024)['mfu'])} (`{ts}bench_train_transformer_h100.json`)",
         "met" if tr(1024)["mfu"] >= 0.30 else "not met"),
        ("agiformer-31m >= 25% MFU",
         f"{pct(cg(1024)['mfu'])} with CUDA graphs, GPU busy {100 * (1 - prof['idle_fraction']):.0f}% of the step "
         f"(`{ts}bench_train_agiformer_cg_h100.json`, `{ts}profile_train_agiformer_cg_h100.json`)",
         f"not met: the kernel mix is the ceiling (never-idle MFU {pct(prof['mfu_if_never_idle'])}; fla "
         f"`chunk_gla` {100 * cat['fla/chunk']['share_of_busy']:.0f}% of busy time, matmuls "
         f"{100 * cat['matmul/gemm']['share_of_busy']:.0f}%)"),
        ("agiformer-31m bytes/s at 16K >= 0.8x its 1K",
         f"{cg(16384)['bytes_per_s'] / cg(1024)['bytes_per_s']:.2f} (CUDA graphs), "
         f"{cu(16384)['bytes_per_s'] / cu(1024)['bytes_per_s']:.2f} (custom op), "
         f"{fa(16384)['bytes_per_s'] / fa(1024)['bytes_per_s']:.2f} (fla autograd)", "met"),
        ("agiformer-31m at 16K >= 3x the baseline's",
         f"{cu(16384)['bytes_per_s'] / tr(16384)['bytes_per_s']:.2f}x, both compiled without CUDA graphs "
         f"({cu(16384)['bytes_per_s']:,.0f} vs {tr(16384)['bytes_per_s']:,.0f} bytes/s); "
         f"{cg(16384)['bytes_per_s'] / tr(16384)['bytes_per_s']:.2f}x with CUDA graphs for AGIFORMER only "
         f"({cg(16384)['bytes_per_s']:,.0f}; no Transformer run with CUDA graphs)",
         "not met mode for mode; met only against a baseline without CUDA graphs"),
        ("Hebbian fwd+bwd at 16K >= 2x SDPA flash",
         f"{min(sd16):.2f}-{max(sd16):.2f}x (fla autograd, two calls), {custom:.2f}x (custom op, the default)",
         f"not met: fla's kernels are latency bound at head dim 64; {sd64:.1f}x at 64K"),
        ("Hebbian <= 1.25x fla `chunk_gla`",
         f"1.0 (fla autograd: it is `chunk_gla`), {vs_gla:.2f}x (custom op, against fla's in another call)",
         "met" if vs_gla <= 1.25 else "not met"),
        ("single-stream decoding >= 2,000 bytes/s",
         f"compiled fixed-shape decoder: {dec(st, 1024)['bytes_per_s']:,.0f} after a 1K prompt and "
         f"{dec(st, 16384)['bytes_per_s']:,.0f} after 16K (`{st}`); {dec(rr, 1024)['bytes_per_s']:,.0f} / "
         f"{dec(rr, 16384)['bytes_per_s']:,.0f} in a rerun (`{rr}`)", "met"),
        ("decoding at 16K within 10% of 1K",
         f"{dec(rr, 16384)['decode_ms_per_byte']:.3f} vs {dec(rr, 1024)['decode_ms_per_byte']:.3f} ms per byte "
         f"in the rerun; {dec(st, 1024)['decode_ms_per_byte'] / dec(st, 16384)['decode_ms_per_byte']:.0%} "
         "in the first call", "met in the rerun"),
        ("peak training memory linear in the context",
         " / ".join(f"{v:.2f}" for v in mem) + f" GiB at 1K / 4K / 16K / 64K (`{ts}bench_train_memory_h100.json`)", "met"),
        ("CPU: agiformer-tiny training and decoding; quick start < 5 min",
         f"{cpu_train:,.0f} bytes/s training, {cpu_dec:,.0f} bytes/s decoding; `bytelm demo` "
         f"{min(demo):.0f}-{max(demo):.0f} s wall under three loads (`hardening/demo_time_cpu.json`)",
         "met" if max(demo) < 300 else "not met"),
    ]
    out = ["| target | measured | status |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return _done(out, "Statuses are the judgement at the time, from the numbers beside them.")


def _speedrun(rel: str) -> str:
    """``bytelm bench speedrun``: the table its JSON holds (written by the benchmark)."""
    return _load(rel)["table"].rstrip() + f"\n\nFile: `{rel}` (commit {_load(rel)['git_commit'][:7]})."


def _compile_scope(rel: str) -> str:
    rows = {}
    for r in _load(rel)["rows"]:
        if r.get("status") == "ok":
            rows.setdefault(r["preset"], {})[r["compile_scope"]] = r
    out = ["| preset | first step, whole model | first step, blocks | median step, whole model | "
           "median step, blocks |", "|---|---:|---:|---:|---:|"]
    for p, by in rows.items():
        if {"model", "blocks"} <= set(by):
            m, b = by["model"], by["blocks"]
            out.append(f"| {p} | {m['first_step_s']:.1f} s | {b['first_step_s']:.1f} s | "
                       f"{m['step_ms']:,.1f} ms | {b['step_ms']:,.1f} ms |")
    return _done(out, f"File: `{rel}`.")


def optimizers_cpu() -> str:
    """EnhancedSGD vs AdamW vs SGD (benchmarks/optimizers.py), sorted by validation bpb."""
    rel = "optimizers/optimizers.json"
    runs = sorted(_load(rel)["runs"], key=lambda r: r["final_val_bpb"])
    out = ["| optimizer | val bpb | test bpb |", "|---|---:|---:|"]
    for r in runs:
        out.append(f"| {r['label']} (`{r['key']}`) | {r['final_val_bpb']:.3f} | "
                   f"{r['test_bpb']:.3f} |")
    return _done(out, f"File: `{rel}`.")


def live_forgetting() -> str:
    """Continual learning on an English stream after Turkish (benchmarks/live_forgetting.py)."""
    rel = "live/live_forgetting.json"
    d = _load(rel)
    out = ["| variant | Turkish (original) bpb before -> after | English (new) bpb before -> after | "
           "mean grad scale |", "|---|---|---|---|"]
    for v in d["variants"]:
        name = ("importance scaling" if v["importance"] else "plain fine-tuning") if not v["replay"] \
            else (f"importance + replay {v['replay']:g}" if v["importance"] else f"replay {v['replay']:g}")
        out.append(f"| {name} | {v['original_before']:.3f} -> {v['original_after']:.3f} "
                   f"({v['original_after'] - v['original_before']:+.2f}) | {v['new_before']:.3f} -> "
                   f"{v['new_after']:.3f} | {v['mean_grad_scale']:.3f} |")
    return _done(out, f"File: `{rel}`.")


def mixer_h100() -> str:
    """``bytelm bench mixer`` on one H100: one mixing op forward + backward, ms."""
    rel = "mixer/bench_mixer_h100.json"
    rows = {(r["op"], r["impl"], r["T"]): r for r in _load(rel)["rows"] if r["status"] == "ok"}
    cols = [("SDPA flash (full causal)", "sdpa", "sdpa"), ("SWA flex (W 512)", "swa", "triton"),
            ("SWA blocked", "swa", "chunk"), ("linear attn (fla)", "linear", "triton"),
            ("Hebbian fla chunk_gla", "hebbian", "triton"), ("Hebbian PyTorch chunked", "hebbian", "chunk")]
    Ts = sorted({t for _, _, t in rows})
    out = ["| T | " + " | ".join(c[0] for c in cols) + " |", "|---:|" + "---:|" * len(cols)]
    for T in Ts:
        out.append(f"| {T:,} | " + " | ".join(
            f"{rows[(o, i, T)]['median_ms']:.2f}" if (o, i, T) in rows else "-" for _, o, i in cols) + " |")
    return _done(out, f"File: `{rel}` (the naive references are in the file too).")


def train_speed_h100() -> str:
    """``bytelm bench train --compile`` at equal bytes per step, 1K and 16K context (H100)."""
    files = ["train_speed/bench_train_transformer_h100.json", "train_speed/bench_train_agiformer_h100.json"]
    out = ["| model | context | batch | ms/step | bytes/s | MFU (989 datasheet / matmul measured in "
           "the same call) | peak GiB |", "|---|---:|---:|---:|---:|---:|---:|"]
    for rel in files:
        d = _load(rel)
        ceil = d["ceilings"]["matmul_tflops_measured"]
        for r in d["rows"]:
            if r["status"] != "ok":
                continue
            out.append(f"| {r['preset']} | {r['seq_len']:,} | {r['batch']} | {r['step_ms']:.1f} | "
                       f"{r['bytes_per_s']:,.0f} | {100 * r['mfu']:.1f}% / {100 * r['mfu_vs_measured']:.1f}% "
                       f"({ceil:.0f} TFLOP/s) | {r['peak_memory_gib']:.1f} |")
    out.append("\nFiles: " + ", ".join(f"`{f}`" for f in files) +
               " (MFU with the `flops_per_byte` of the run's date).")
    return "\n".join(out)


def generate_first_h100() -> str:
    """The first ``bytelm bench generate`` table (eager decoding, before the static caches)."""
    rel = "generate/bench_generate_h100.json"
    out = ["| model | batch | prompt | time to first byte | bytes/s per stream | bytes/s total |",
           "|---|---:|---:|---:|---:|---:|"]
    for r in _load(rel)["rows"]:
        if r["status"] != "ok":
            out.append(f"| {r['model']} | {r['batch']} | {r['context']:,} | {r['status']} | | |")
            continue
        out.append(f"| {r['model']} | {r['batch']} | {r['context']:,} | {r['ttfb_ms']:.1f} ms | "
                   f"{r['bytes_per_s_per_stream']:,.0f} | {r['bytes_per_s']:,.0f} |")
    return _done(out, f"File: `{rel}`.")


def _s(v, fmt: str = "{:.1f}") -> str:
    return "-" if v is None else fmt.format(v)


def _hnet_equal_time(rel: str) -> str:
    """One equal-time GPU job of hnet_equal_time.py: every run's speed, curve and test bpb."""
    d = _load(rel)
    out = [f"| model ({d['minutes']:g} min each, one {d['device']} job) | steps | overall / steady "
           "bytes/s | MFU | first step s | validation s | val bpb (step) | test bpb |",
           "|---|---:|---:|---:|---:|---:|---|---:|"]
    best = min(r["test"]["bpb"] for r in d["runs"])
    for r in d["runs"]:
        ts = r["train_summary"]
        curve = " / ".join(f"{v['bpb']:.3f} ({v['step']})" for v in r["val_curve"])
        test = f"{r['test']['bpb']:.3f}"
        out.append(f"| `{r['name']}` | {ts['steps']:,} | {ts['bytes_per_s'] / 1e6:.2f} M / "
                   f"{ts['steady_bytes_per_s'] / 1e6:.2f} M | {_s(ts.get('mfu') and 100 * ts['mfu'])}% | "
                   f"{_s(ts.get('first_step_s'))} | {_s(ts.get('eval_time_s'))} | {curve} | "
                   + (f"**{test}**" if r["test"]["bpb"] == best else test) + " |")
    return _done(out, f"File: `{rel}` (commit {str(d.get('git_commit'))[:7]}).")


def hnet_survey() -> str:
    """Steady compiled training steps of hnet variants against transformer-30m (one H200 job)."""
    rel = "hnet/survey_h200.json"
    runs = _load(rel)["runs"]
    base = next(r for r in runs if r["preset"].startswith("transformer"))["bytes_per_s"]
    out = ["| configuration | params | MFLOP/byte | bytes/s | vs transformer-30m |",
           "|---|---:|---:|---:|---:|"]
    labels = {"t30": "transformer-30m", "h": "hnet-30m (learned)", "hs": "hnet-30m, chunker=space",
              "h768": "hnet-30m, main 8 x 768", "h6": "hnet-30m, chunk_len=6"}
    for r in runs:
        out.append(f"| {labels.get(r['name'], r['name'])} (`{r['name']}`) | {r['n_params'] / 1e6:.1f} M | "
                   f"{r['flops_per_byte'] / 1e6:.1f} | "
                   f"{r['bytes_per_s'] / 1e6:.2f} M | {r['bytes_per_s'] / base:.2f}x |")
    return _done(out, f"File: `{rel}`.")


def _kasgarli_bpe(rel: str) -> str:
    """One ``bytelm kasgarli --bpe`` result: per language the byte model's test bpb, bits per
    character and total bits, each BPE baseline (weights and vocabulary chosen on validation;
    bytes per token, budget fraction @ epoch of the chosen weights), the gap to the vocabulary
    chosen on validation, and the gap to the last-step BPE model (the old rule: the full budget's
    last weights, the vocabulary with the lower validation bpb at that step)."""
    from bytelm.experiments.kasgarli import best_bpe
    d = _load(rel)
    langs = d["languages"]
    vocabs = [b["vocab_requested"] for b in langs[0]["bpe"]]
    thr = d["threshold_bpb"]
    out = ["| lang | bytes: bpb | bits/char | total bits (vs first) | steps to " + f"{thr:g} val bpb | " +
           " | ".join(f"BPE {v}: bpb (bytes/token; budget @ epoch)" for v in vocabs) +
           " | bytes - BPE chosen on val | bytes - last-step BPE |",
           "|---|---:|---:|---:|---:|" + "---:|" * (len(vocabs) + 2)]
    for r in langs:
        t = r["test"]
        steps = r["steps_to_threshold"]
        cells = []
        for b in r["bpe"]:
            sel = b.get("selection", {})
            cells.append(f"{b['test']['bpb']:.3f} ({b['test_bytes_per_token']:.2f}; "
                         f"{sel.get('fraction', 1):g} @ {sel.get('epochs', float('nan')):.1f})")
        last = _last_step_bpe(r)
        out.append(f"| {r['lang']} | {t['bpb']:.3f} | {t['bits_per_char']:.3f} | "
                   f"{t['total_bits']:,.0f} ({t['total_bits_vs_first']:.3f}) | "
                   f"{steps if steps is not None else 'never'} | " + " | ".join(cells) +
                   f" | {t['bpb'] - best_bpe(r)['test']['bpb']:+.3f} | {t['bpb'] - last:+.3f} |")
    out.append("\n(Last-step BPE: the full budget's last weights and the vocabulary with the lower "
               "validation bpb there, the rule before validation-chosen weights.)")
    return _done(out, f"File: `{rel}`.")


def _last_step_bpe(lang: dict) -> float | None:
    """Test bpb of the last-step BPE baseline: full-budget weights at their last step, the
    vocabulary with the lowest validation bpb there."""
    def last_val(b):
        full = [c for c in b.get("candidates", []) if c["fraction"] == 1.0]
        return full[0]["val_curve"][-1]["bpb"] if full else float("inf")
    b = min(lang["bpe"], key=last_val)
    return b.get("test_final", b["test"])["bpb"]


def tr_test_split() -> str:
    """bpb of each part of the old Turkish test split (benchmarks/tr_test_split.py), two sizes."""
    files = ["kasgarli/tr_test_split_cpu.json", "kasgarli/tr_test_split_small_cpu.json"]
    ds = [_load(f) for f in files]
    out = ["| part of the Turkish test split | bytes | " + " | ".join(d["preset"] for d in ds) + " |",
           "|---|---:|" + "---:|" * len(ds)]
    for i, seg in enumerate(ds[0]["segments"]):
        name = seg["name"].split(" (from")[0]
        name = f"`{name.split(' ')[0]}`" + name[len(name.split(' ')[0]):]
        vals = [f"{d['segments'][i]['bpb']:.3f}" for d in ds]
        if seg.get("index"):
            vals = [f"**{v}**" for v in vals]
        out.append(f"| {name} | {seg['stop'] - seg['start']:,} | " + " | ".join(vals) + " |")
    for key, label, nbytes in (("test", "whole test split", ds[0]["test_bytes"]),
                               ("test_without_index", "test split without the index",
                                ds[0]["test_bytes"] - ds[0]["index_bytes"]),
                               ("val", "val split", ds[0]["val"]["n_bytes"] + 1)):
        out.append(f"| {label} | {nbytes:,} | " + " | ".join(f"{d[key]['bpb']:.3f}" for d in ds) + " |")
    out.append("\nFiles: " + ", ".join(f"`{f}`" for f in files) + " (the split of then; the index is "
               "cut from `../shared/data` since).")
    return "\n".join(out)


def curriculum_tr() -> str:
    """The Phase 7 curriculum experiment on Turkish (benchmarks/curriculum.py; one H100)."""
    rel = "curriculum/curriculum_tr.json"
    labels = {"A_curriculum": "A: agiformer-31m, curriculum", "B_flat": "B: agiformer-31m, flat, alpha 0.99",
              "C_transformer": "C: transformer-30m, flat (copied from the printed output: the file's `note`)"}
    out = ["| arm | best val bpb (step) | final val bpb | test bpb / bits per char | train time | "
           "non-finite steps |", "|---|---:|---:|---:|---:|---:|"]
    for key, a in _load(rel)["arms"].items():
        sm = a["summary"]
        curve = a.get("val_curve") or []
        best_step = min(curve, key=lambda v: v["bpb"])["step"] if curve else None
        best = f"{sm['best_val_bpb']:.4f}" + (f" ({best_step})" if best_step else "")
        t = sm.get("train_time_s")
        time = f"{t:.0f} s" if t is not None else f"{sm['train_time_s_derived']:.0f} s (derived)"
        out.append(f"| {labels.get(key, key)} | {best} | {sm['val_bpb']:.4f} | {a['test']['bpb']:.4f} / "
                   f"{a['test']['bits_per_char']:.4f} | {time} | {a['nonfinite_steps']} |")
    return _done(out, f"File: `{rel}`.")


def curriculum_tr_summary() -> str:
    """The curriculum experiment in three columns (docs/results.md's summary)."""
    rel = "curriculum/curriculum_tr.json"
    labels = {"A_curriculum": "`agiformer-31m`, 3-stage curriculum + plasticity",
              "B_flat": "`agiformer-31m`, flat",
              "C_transformer": "`transformer-30m`, flat (copied from the run's printed output: "
                               "its JSON record was lost)"}
    out = ["| run | best val bpb | test bpb | bytes/s (H100) |", "|---|---:|---:|---:|"]
    for key, a in _load(rel)["arms"].items():
        sm = a["summary"]
        out.append(f"| {labels.get(key, key)} | {sm['best_val_bpb']:.3f} | {a['test']['bpb']:.3f} | "
                   f"{sm['bytes_per_s'] / 1e6:.2f} M |")
    return _done(out, f"File: `{rel}`.")


def hnet_sizes() -> str:
    """Parameters and training FLOPs per byte of hnet-30m by stage, from today's code (not a
    result file: the preset itself, so the table cannot go stale against it)."""
    from bytelm.registry import create_model
    m, t = create_model("hnet-30m"), create_model("transformer-30m")
    c = m.config
    sp, sf = m.stage_params(), m.stage_flops()
    out = ["| stage | parameters | training FLOPs per byte |", "|---|---:|---:|",
           f"| byte stages ({c.enc_layers} + {c.dec_layers} blocks at {c.d_byte}, router, residual "
           f"projection, head) | {sp['byte'] / 1e6:.2f} M | {sf['byte'] / 1e6:.1f} M |",
           f"| main network ({c.main_layers} blocks at {c.d_main}, over {c.slots} slots per "
           f"{c.context:,} bytes) | {sp['main'] / 1e6:.1f} M | {sf['main'] / 1e6:.1f} M |",
           f"| total | {m.n_params() / 1e6:.1f} M | {m.flops_per_byte() / 1e6:.1f} M "
           f"(transformer-30m: {t.flops_per_byte() / 1e6:.1f} M) |",
           "\nFrom `create_model('hnet-30m')`: `stage_params()`, `stage_flops()`."]
    return "\n".join(out)


def _kasgarli_families(rel: str) -> str:
    """Test bpb per language and family, the best BPE model and each family's gap to it."""
    d = _load(rel)
    ps = d["presets"]
    out = ["| lang | " + " | ".join(f"{p}: bpb" for p in ps) + " | best BPE (vocab) | " +
           " | ".join(f"{p} - BPE" for p in ps) + " |", "|---|" + "---:|" * (2 * len(ps) + 1)]
    for row in d["languages"]:
        best = min(row["bytes"][p]["bpb"] for p in ps)
        vals = [(f"**{row['bytes'][p]['bpb']:.3f}**" if row["bytes"][p]["bpb"] == best else
                 f"{row['bytes'][p]['bpb']:.3f}") for p in ps]
        gaps = [f"{row['gap_to_bpe'][p]:+.3f}" for p in ps]
        out.append(f"| {row['lang']} | " + " | ".join(vals) +
                   f" | {row['best_bpe_bpb']:.3f} ({row['best_bpe_vocab']}) | " + " | ".join(gaps) + " |")
    out.append(f"\nFile: `{rel}`; FLOPs per byte as the file records them: " + ", ".join(
        f"{r['preset']} {r['flops_per_byte'] / 1e6:.2f} M" for r in d["runs"]) + ".")
    return "\n".join(out)


TABLES = {  # marker name -> the function that renders its table
    "hnet_sizes": hnet_sizes,
    "curriculum_tr": curriculum_tr,
    "curriculum_tr_summary": curriculum_tr_summary,
    "tr_test_split": tr_test_split,
    "kasgarli_bible_small": partial(_kasgarli_bpe, "kasgarli/kasgarli_bible.json"),
    "kasgarli_ntrex": partial(_kasgarli_bpe, "kasgarli/kasgarli_ntrex.json"),
    "kasgarli_mono": partial(_kasgarli_bpe, "kasgarli/kasgarli_mono.json"),
    "kasgarli_bpe_cpu_preview": partial(_kasgarli_bpe, "kasgarli/kasgarli_bpe_cpu_preview.json"),
    "hnet_1min_h200": partial(_hnet_equal_time, "hnet/equal_time_1min_h200.json"),
    "hnet_1min_v2": partial(_hnet_equal_time, "hnet/equal_time_1min_v2_h100.json"),
    "hnet_2_5min_first": partial(_hnet_equal_time, "hnet/equal_time_2.5min_h100.json"),
    "hnet_survey": hnet_survey,
    "generate_first_h100": generate_first_h100,
    "mixer_h100": mixer_h100,
    "train_speed_h100": train_speed_h100,
    "optimizers_cpu": optimizers_cpu,
    "live_forgetting": live_forgetting,
    "speedrun_cpu": partial(_speedrun, "speedrun/speedrun_cpu.json"),
    "speedrun_muon_cpu": partial(_speedrun, "speedrun/speedrun_muon_cpu.json"),
    "compile_scope_cpu": partial(_compile_scope, "compile/compile_scope_cpu.json"),
    "compile_scope_h100": partial(_compile_scope, "compile/compile_scope_h100.json"),
    "baseline_30m": baseline_30m,
    "generate_fast": generate_fast,
    "kasgarli_hnet_cpu_preview": partial(_kasgarli_families, "kasgarli/kasgarli_families5_cpu_preview.json"),
    "kasgarli_bible_31m": partial(_kasgarli_families, "kasgarli/kasgarli_bible_families.json"),
    "equal_time_8min": equal_time_8min,
    "hnet_2_5min": hnet_2_5min,
    "hnet_ablation_1": hnet_ablation_1,
    "hnet_ablation_2": hnet_ablation_2,
    "hnet_ablation_3": hnet_ablation_3,
    "hnet_wide_2_5min": partial(_hnet_shapes, "hnet/equal_time_2.5min_wide_h100.json"),
    "hnet_muon_2_5min": partial(_hnet_shapes, "hnet/equal_time_2.5min_muon_h100.json"),
    "hnet_muon_2_5min_curve": partial(_hnet_equal_time, "hnet/equal_time_2.5min_muon_h100.json"),
    "seeds_2_5min_curve": partial(_hnet_equal_time, "hnet/equal_time_2.5min_seeds_h100.json"),
    "hnet_swa_paths": hnet_swa_paths,
    "generate_after": generate_after,
    "lm_eval_muon": lm_eval_muon,
    "prose_report": prose_report,
    "hnet_e1d3_2_5min": partial(_hnet_shapes, "hnet/equal_time_2.5min_e1d3_h100.json"),
    "hnet_e1d3_2_5min_curve": partial(_hnet_equal_time, "hnet/equal_time_2.5min_e1d3_h100.json"),
    "speedrun_h100": partial(_speedrun, "speedrun/speedrun_h100.json"),
    "speedrun_hnet_h100": partial(_speedrun, "speedrun/speedrun_hnet_e1d3_h100.json"),
    "decode_profile_h100": decode_profile_h100,
    "recall_h100_values": partial(_recall, "recall/recall_h100_values/recall.json"),
    "baseline_detail": partial(_run_detail, [("English Wikipedia", "equal_time_30m/baseline_en.json"),
                                             ("Turkish text", "equal_time_30m/baseline_tr.json")],
                               ["corpus", "budget", "steps", "best_val", "test", "speed", "mfu",
                                "memory", "file"]),
    "families_30m_en": partial(families_30m, "en"),
    "recall_encoder_norm": recall_encoder_norm,
    "recall_delta_seeds": recall_delta_seeds,
    "agiformer_params": agiformer_params,
    "patch_stats": patch_stats,
    "targets_issue8": targets_issue8,
    "lm_eval_h100": lm_eval_h100,
    "families_30m_tr": partial(families_30m, "tr"),
}
MARK = re.compile(r"(<!-- table:(\w+) -->\n)(.*?)(<!-- /table:\2 -->)", re.S)


def render(text: str) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(2)
        if name not in TABLES:
            raise SystemExit(f"unknown table {name!r}; known: {', '.join(TABLES)}")
        return m.group(1) + TABLES[name]() + "\n" + m.group(4)
    return MARK.sub(sub, text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a table is stale")
    a = ap.parse_args()
    stale = []
    for doc in DOCS:
        text = doc.read_text()
        new = render(text)
        if new != text:
            stale.append(doc.name)
            if not a.check:
                doc.write_text(new)
    if a.check and stale:
        print(f"stale tables in {', '.join(stale)}: run python benchmarks/tables.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
