"""``bytelm serve`` driven as a person uses it: a real headless Chromium (Debian's, through
Playwright) against the live server with two tiny runs.

Measured here: the first streamed byte within 1 s of the click, a 10 KB text's surprisal
view rendered within 2 s of the click. Screenshots go to the test's tmp folder (printed);
BYTELM_DOCS_SCREENSHOT=PATH also writes the overview one there (docs/serve.png).
"""
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from .conftest import EVAL_TEXT, LONG

CHROMIUM = os.environ.get("BYTELM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ERRORS: list[str] = []  # what the page logged as errors; the tests expect none they did not cause
# 10,240 bytes (cut at a character boundary)
TEN_KB = ("The quick brown fox jumps over the lazy dog; pijamalı hasta yağız şoföre çabucak güvendi.\n"
          * 120).encode()[:10240].decode("utf-8", "ignore")


@pytest.fixture(scope="module")
def page(server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        pg = browser.new_page(viewport={"width": 1180, "height": 760})
        errors = ERRORS
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.goto(server)
        pg.wait_for_selector("body[data-ready='1']", timeout=10000)
        yield pg
        browser.close()
    assert not errors, f"the page logged errors: {errors}"


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve-screenshots")
    yield d
    print(f"\nbytelm serve screenshots: {d}")


def _analyse(page, text, run_a, run_b=""):
    page.select_option("#run-a", run_a)
    page.select_option("#run-b", run_b)
    page.fill("#text", text)
    page.evaluate("window.bytelm.render = null")
    t0 = time.perf_counter()
    page.click("#analyse")
    page.wait_for_function("() => window.bytelm.render !== null", timeout=20000)
    return time.perf_counter() - t0


def _eval(run, corpus, tmp_path) -> dict:
    from bytelm.cli.__main__ import main
    out = tmp_path / "eval.json"
    assert main(["eval", str(run), "--data", str(corpus), "--split", "test", "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_surprisal_matches_eval(page, gpt_run, eval_corpus, tmp_path, shots):
    ref = _eval(gpt_run, eval_corpus, tmp_path)
    _analyse(page, EVAL_TEXT, "gpt")
    assert page.text_content("#bpb-a") == f"{ref['bpb']:.4f}"
    assert page.text_content("#bpc-a") == f"{ref['bits_per_char']:.4f}"
    spans = page.locator("#view span[data-g]")
    assert spans.count() == len(EVAL_TEXT)  # one span per character, multi-byte ones included
    assert page.eval_on_selector("#view", "v => v.textContent") == EVAL_TEXT
    classes = set(page.eval_on_selector_all("#view span[data-g]", "els => els.map(e => e.classList[0])"))
    assert len(classes - {"ctx"}) >= 4, f"hardly coloured: {classes}"
    assert page.locator("#view span.ctx").count() == 1  # byte 0: no context, not scored
    # hovering a character shows its bits and the bytes the model expected there
    i = EVAL_TEXT.index("ç")
    spans.nth(i).hover()
    tip = page.text_content("#tip")
    assert page.is_visible("#tip") and "expected:" in tip and "0xc3" in tip and "0xa7" in tip
    page.screenshot(path=str(shots / "surprisal.png"))


def test_boundaries_and_histogram(page, shots):
    _analyse(page, EVAL_TEXT, "bsfin")
    res = page.evaluate("window.bytelm.state.a")
    ends = res["ends"]
    assert ends is not None and 1 < sum(ends) < len(ends) - 1
    data = EVAL_TEXT.encode()
    # a boundary on the last byte of a character is drawn on that character
    char_end = [i for i, e in enumerate(ends) if e and (i + 1 == len(data) or (data[i + 1] & 0xC0) != 0x80)]
    assert page.locator("#view span.end").count() == len(char_end)
    bars = page.eval_on_selector_all("#hist-svg rect", "rs => rs.map(r => [+r.dataset.len, +r.dataset.count])")
    n_patches = sum(ends) + (0 if ends[-1] else 1)
    assert sum(c for _, c in bars) == n_patches
    assert page.is_visible("#hist-svg")
    page.uncheck("#show-ends")
    assert "ends" not in page.get_attribute("#view", "class")
    page.check("#show-ends")
    page.screenshot(path=str(shots / "boundaries.png"))


def test_compare_two_runs(page, shots):
    _analyse(page, EVAL_TEXT, "gpt", "bsfin")
    a, b = page.evaluate("[window.bytelm.state.a.bpb, window.bytelm.state.b.bpb]")
    assert page.text_content("#bpb-diff") == f"{a - b:.4f}"
    assert page.input_value("#show") == "diff"
    diff_classes = page.eval_on_selector_all("#view span[data-g]", "els => els.map(e => e.classList[0])")
    assert {c[0] for c in diff_classes} <= {"d", "c"} and len(set(diff_classes)) >= 3
    # the bytes the Transformer finds easier (it has trained longer) are coloured towards blue
    assert sum(int(c[1:]) < 8 for c in diff_classes if c != "ctx") > len(diff_classes) // 2
    page.select_option("#show", "b")
    assert page.locator("#view span.s0, #view span[class^='s']").count() > 0
    page.select_option("#show", "diff")
    page.screenshot(path=str(shots / "compare.png"), full_page=False)
    if os.environ.get("BYTELM_DOCS_SCREENSHOT"):
        page.screenshot(path=os.environ["BYTELM_DOCS_SCREENSHOT"],
                        clip={"x": 0, "y": 0, "width": 1180, "height": 560})


def test_open_a_file_of_raw_bytes(page):
    raw = b"\xff\xfe caf\xc3\xa9 \x00\x01 bytes"  # not UTF-8: sent as raw bytes
    page.select_option("#run-b", "")
    page.set_input_files("#file", files=[{"name": "raw.bin", "mimeType": "application/octet-stream",
                                          "buffer": raw}])
    page.wait_for_function("() => document.getElementById('text').value.startsWith('(raw.bin')")
    page.evaluate("window.bytelm.render = null")
    page.click("#analyse")
    page.wait_for_function("() => window.bytelm.render !== null", timeout=10000)
    assert page.evaluate("window.bytelm.state.a.bytes") == list(raw)
    assert page.text_content("#stats").count(f"over {len(raw) - 1} scored bytes") == 1
    page.fill("#text", "typed again")  # editing the text drops the file
    page.click("#analyse")
    page.wait_for_function("() => window.bytelm.state.a.bytes.length === 11", timeout=10000)


def test_ten_kb_renders_within_2s(page):
    wall = _analyse(page, TEN_KB, "gpt")
    assert len(TEN_KB.encode()) >= 10235
    assert page.locator("#view span[data-g]").count() == len(TEN_KB)
    took = page.evaluate("window.bytelm.analyse.ms") / 1000
    print(f"\n10 KB surprisal view: {took:.3f} s from click to render in the page ({wall:.3f} s wall)")
    assert took < 2.0 and wall < 2.0


def test_generate_streams_and_stops(page, server, shots):
    import httpx
    page.click("button.tab[data-tab=generate]")
    page.select_option("#gen-run", "gpt")
    page.fill("#prompt", "The ")
    page.fill("#gen-max", str(LONG))
    page.fill("#gen-temp", "1")
    t0 = time.perf_counter()
    page.click("#gen-start")
    page.wait_for_function("() => document.getElementById('gen-text').textContent.length > 0", timeout=5000)
    wall = time.perf_counter() - t0
    first = page.evaluate("window.bytelm.gen.firstMs") / 1000
    print(f"\nfirst streamed byte: {first:.3f} s after the click in the page ({wall:.3f} s wall)")
    assert first < 1.0 and wall < 1.0
    page.wait_for_function("() => window.bytelm.gen.n >= 20", timeout=10000)
    page.click("#gen-stop")
    page.wait_for_function("() => document.getElementById('gen-status').textContent.startsWith('stopped')", timeout=5000)
    n = page.evaluate("window.bytelm.gen.n")
    assert 20 <= n < LONG and page.is_enabled("#gen-start") and not page.is_enabled("#gen-stop")
    deadline = time.monotonic() + 5
    while httpx.get(server + "api/status").json()["generating"]:
        assert time.monotonic() < deadline, "stop did not end the generation on the server"
        time.sleep(0.05)
    # a seeded run of a few bytes completes, and a second click is served (the lock was freed)
    page.fill("#gen-max", "12")
    page.fill("#gen-seed", "3")
    page.click("#gen-start")
    page.wait_for_function("() => document.getElementById('gen-status').textContent.startsWith('12 bytes')", timeout=5000)
    page.screenshot(path=str(shots / "generate.png"))


def test_runs_curves_and_errors(page, shots):
    page.click("button.tab[data-tab=runs]")
    page.wait_for_selector("#curves-svg", timeout=5000)
    assert page.locator("#curves-svg polyline.train").count() == 2
    assert page.locator("#curves-svg circle.val").count() == 3 + 1  # gpt at 20/40/60, bsfin at its end
    assert page.locator("#run-table tr").count() == 3
    page.screenshot(path=str(shots / "runs.png"))
    # a request the server refuses shows its one-line message on the page
    page.click("button.tab[data-tab=text]")
    page.fill("#text", "x")
    page.click("#analyse")
    page.wait_for_selector("#error:not([hidden])", timeout=5000)
    assert "at least 2 bytes" in page.text_content("#error")
    ERRORS.remove("Failed to load resource: the server responded with a status of 400 (Bad Request)")
