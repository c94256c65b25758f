"""``bytelm bench {train,generate,mixer}`` on CPU with tiny settings: JSON keys, positive finite
numbers, n/a beyond a bounded cache, skips with reasons, one-line errors for bad input."""
import argparse
import json
import math

import pytest

from bytelm.cli import bench
from bytelm.cli.__main__ import _Parser
from bytelm.errors import UserError

TOP_KEYS = {"mode", "command", "settings", "env", "ceilings", "rows", "complete"}


def _parse(*argv) -> argparse.Namespace:
    p = _Parser(prog="bytelm")
    bench.add_parser(p.add_subparsers(dest="command", required=True, parser_class=_Parser))
    return p.parse_args(["bench", *map(str, argv)])


def _strict(text: str) -> dict:
    def no_nan(c):
        raise AssertionError(f"non-standard JSON constant {c}")
    return json.loads(text, parse_constant=no_nan)


def run_bench(tmp_path, capsys, *argv) -> tuple[dict, str]:
    out = tmp_path / "res.json"
    args = _parse(*argv, "--device", "cpu", "--out", out)
    assert args.func is bench.run
    assert bench.run(args) == 0
    printed = capsys.readouterr().out
    res = _strict(out.read_text())
    assert set(res) == TOP_KEYS and res["complete"] is True
    assert res["mode"] == argv[0] and res["command"].startswith(f"bytelm bench {argv[0]} ")
    assert res["env"]["device"] == "cpu"
    for key in ("matmul_tflops_measured", "copy_tb_per_s_measured"):
        assert _pos(res["ceilings"][key])
    return res, printed


def _pos(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_bench_train(tmp_path, capsys):
    res, printed = run_bench(tmp_path, capsys, "train", "--preset", "agiformer-tiny",
                             "transformer-tiny", "--batch", 2, "--seq-len", 32, 64,
                             "--steps", 2, "--warmup", 0)
    rows = res["rows"]
    assert [(r["preset"], r["seq_len"]) for r in rows] == [
        ("agiformer-tiny", 32), ("agiformer-tiny", 64), ("transformer-tiny", 32),
        ("transformer-tiny", 64)]
    for r in rows:
        assert r["status"] == "ok", r
        for key in ("step_ms", "step_ms_min", "bytes_per_s", "flops_per_byte", "model_tflops",
                    "mfu_vs_measured", "first_step_s", "warmup_s", "host_peak_rss_gib"):
            assert _pos(r[key]), (key, r[key])
        assert r["bytes_per_s"] == pytest.approx(2 * r["seq_len"] / (r["step_ms"] / 1e3))
        assert math.isfinite(r["loss"]) and r["compile"] is False and r["precision"] == "float32"
        # CPU: no datasheet peak and no device peak memory, reported as null, never as 0
        assert r["mfu"] is None and r["peak_memory_gib"] is None
    assert "agiformer-tiny" in printed and "step ms" in printed


def test_bench_train_equal_bytes_per_step_beyond_the_context(tmp_path, capsys):
    res, _ = run_bench(tmp_path, capsys, "train", "--preset", "agiformer-tiny",
                       "--bytes-per-step", 256, "--seq-len", 64, 256, "--context", 256,
                       "--steps", 1, "--warmup", 0)
    assert [(r["batch"], r["seq_len"], r["context"]) for r in res["rows"]] == [
        (4, 64, 256), (1, 256, 256)]
    assert all(r["status"] == "ok" for r in res["rows"])


@pytest.mark.parametrize("argv, msg", [
    (["--preset", "no-such-model"], "unknown preset"),
    (["--preset", "transformer-tiny", "--seq-len", 129], "exceeds the context"),
    (["--preset", "transformer-tiny", "--batch", -1], "--batch must be >= 1"),
    (["--preset", "transformer-tiny", "--bytes-per-step", 0], "--bytes-per-step must be >= 1"),
    (["--preset", "transformer-tiny", "--steps", 0], "--steps must be >= 1"),
    (["--preset", "transformer-tiny", "--warmup", -2], "--warmup must be >= 0"),
])
def test_bench_train_bad_input(argv, msg):
    with pytest.raises(UserError, match=msg) as e:
        bench.run(_parse("train", *argv, "--device", "cpu"))
    assert "\n" not in str(e.value)


def test_bench_generate(tmp_path, capsys):
    res, printed = run_bench(tmp_path, capsys, "generate", "--preset", "agiformer-tiny",
                             "transformer-tiny", "--contexts", 16, 124, 160, "--new-bytes", 8,
                             "--batch", 1, 2, "--prefill-reps", 1, "--decode-reps", 2,
                             "--decode-warmup", 2)
    rows = {(r["model"], r["batch"], r["context"]): r for r in res["rows"]}
    assert len(rows) == 2 * 2 * 3
    for (model, batch, ctx), r in rows.items():
        if model == "transformer-tiny" and ctx == 160:
            # the KV cache holds 128 bytes: reported, not cropped
            assert r["status"] == "n/a (exceeds context)" and r["cache_limit"] == 128
            assert "ttfb_ms" not in r and "bytes_per_s" not in r
            continue
        assert r["status"] == "ok", r
        for key in ("ttfb_ms", "ttfb_first_call_ms", "prefill_bytes_per_s", "decode_ms_per_byte",
                    "bytes_per_s_per_stream", "bytes_per_s"):
            assert _pos(r[key]), (key, r[key])
        assert r["bytes_per_s"] == pytest.approx(batch * r["bytes_per_s_per_stream"])
        assert r["new_bytes"] == 8
    # the O(1) state decodes at every context, also beyond the 128 bytes it was built for
    for batch in (1, 2):
        assert rows[("agiformer-tiny", batch, 160)]["beyond_trained_context"] is True
        assert rows[("agiformer-tiny", batch, 160)]["cache_limit"] is None
        assert rows[("agiformer-tiny", batch, 16)]["decode_start"] == 16 + 2
    # 124 prompt bytes fit the GPT cache but 2 + 8 more do not: decoding ends at the capacity
    r = rows[("transformer-tiny", 1, 124)]
    assert r["decode_start"] + r["new_bytes"] == 128 and "note" in r
    assert "n/a (exceeds context)" in printed


def test_bench_generate_compiled_decode(tmp_path, capsys):
    """--decode both: a compiled row next to each eager one (the warm-up raised to the
    decoder's warmup_steps, four patches for AGIFORMER, so every graph is built first, and
    reported apart)."""
    res, printed = run_bench(tmp_path, capsys, "generate", "--preset", "agiformer-tiny",
                             "--contexts", 16, "--new-bytes", 8, "--batch", 1,
                             "--prefill-reps", 1, "--decode-reps", 2, "--decode-warmup", 2,
                             "--decode", "both")
    rows = {r["decode"]: r for r in res["rows"]}
    assert set(rows) == {"eager", "compiled"}
    for r in rows.values():
        assert r["status"] == "ok" and _pos(r["decode_ms_per_byte"]) and _pos(r["warmup_s"]), r
    assert rows["compiled"]["decode_start"] == 16 + 4 * 4 and rows["eager"]["decode_start"] == 18
    assert "compiled" in printed


def test_decode_row_static_decoders_every_family(one_thread):
    """decode="static" (the fixed-shape decoders, uncompiled) times every family; a bounded
    cache is sized to the row (prompt + warm-up + new bytes), not the context."""
    import torch

    from bytelm import create_model
    from bytelm.cli.bench import _gen_presets
    without = set()
    for preset in _gen_presets(on_gpu=False):
        model = create_model(preset).eval()
        with torch.no_grad():
            r = decode_row_static(model, preset)
        if not model.has_static_decoder:  # reported, not timed
            assert r["status"].startswith("n/a: static decoding needs a fixed-shape decoder"), r
            without.add(model.config.family)
            continue
        assert r["status"] == "ok" and r["decode"] == "static" and _pos(r["bytes_per_s"]), r
    # every family has a fixed-shape decoder: one without is a regression
    assert without == set()


def decode_row_static(model, name):
    import torch

    from bytelm.bench.generate import decode_row
    return decode_row(model, name, batch=2, context=20, new_bytes=4, prefill_reps=1,
                      decode_reps=1, decode_warmup=1, device=torch.device("cpu"), decode="static")


def test_bench_generate_defaults_cover_every_family():
    from bytelm.registry import list_families
    args = _parse("generate")
    bench._fill_defaults(args, "generate", on_gpu=True)
    gpu = set(args.preset)
    args = _parse("generate")
    bench._fill_defaults(args, "generate", on_gpu=False)
    assert {p.rsplit("-", 1)[0] for p in args.preset} == {p.rsplit("-", 1)[0] for p in gpu}
    assert len(gpu) == len(list_families()) and args.decode == "auto"
    assert args.contexts == [64, 512] and args.batch == [1, 4]


def test_bench_generate_ckpt(tmp_path, capsys):
    from bytelm import create_model
    create_model("transformer-tiny").save(tmp_path / "ck")
    res, _ = run_bench(tmp_path, capsys, "generate", "--ckpt", tmp_path / "ck", "--contexts", 8,
                       "--new-bytes", 4, "--batch", 1, "--prefill-reps", 1, "--decode-reps", 1)
    (r,) = res["rows"]
    assert r["status"] == "ok" and r["model"] == str(tmp_path / "ck") and _pos(r["bytes_per_s"])


@pytest.mark.parametrize("argv, msg", [
    (["--ckpt", "/no/such/ckpt"], "checkpoint not found"),
    (["--preset", "gpt-huge"], "unknown preset"),
    (["--contexts", 0], "--contexts must be >= 1"),
    (["--new-bytes", -5], "--new-bytes must be >= 1"),
])
def test_bench_generate_bad_input(argv, msg):
    with pytest.raises(UserError, match=msg):
        bench.run(_parse("generate", *argv, "--device", "cpu"))


def test_bench_mixer(tmp_path, capsys):
    res, printed = run_bench(tmp_path, capsys, "mixer", "--T", 32, 64, "--B", 1, "--H", 2,
                             "--D", 8, "--window", 16, "--warmup", 0, "--reps", 2,
                             "--naive-max-t", 32)
    rows = {(r["T"], r["op"], r["impl"]): r for r in res["rows"]}
    expect_ok = {("sdpa", "sdpa"), ("swa", "naive"), ("swa", "chunk"), ("linear", "naive"),
                 ("linear", "chunk"), ("hebbian", "naive"), ("hebbian", "chunk")}
    for T in (32, 64):
        for op, impl in expect_ok:
            r = rows[(T, op, impl)]
            if impl == "naive" and T == 64:
                assert r["status"] == "skipped: naive reference only up to T=32"
                continue
            assert r["status"] == "ok", r
            for key in ("median_ms", "min_ms", "first_call_ms", "tflops", "positions_per_s"):
                assert _pos(r[key]), (key, r[key])
            assert r["dtype"] == "float32"
        for op in ("swa", "linear", "hebbian"):
            assert rows[(T, op, "triton")]["status"] == "skipped: triton needs CUDA"
    assert "skipped" in printed


def test_bench_mixer_skips_what_would_not_fit_or_finish(tmp_path, capsys):
    # 2M positions of naive (T, T) scores need petabytes: skipped before allocating anything
    res, _ = run_bench(tmp_path, capsys, "mixer", "--T", 2_000_000, "--ops", "swa",
                       "--impls", "naive", "--naive-max-t", 10_000_000)
    assert res["rows"][0]["status"].startswith("skipped: needs ~")
    res, _ = run_bench(tmp_path, capsys, "mixer", "--T", 64, 128, "--ops", "sdpa",
                       "--max-case-s", 1e-9)
    first, second = res["rows"]
    assert first["status"].startswith("skipped: ~") and "--max-case-s" in first["status"]
    assert second["status"] == "skipped: over the time budget at T=64"


@pytest.mark.parametrize("argv, msg", [
    (["--T", -4], "--T must be >= 1"),
    (["--window", 0], "--window must be >= 1"),
    (["--max-case-s", 0], "--max-case-s must be a positive number"),
])
def test_bench_mixer_bad_input(argv, msg):
    with pytest.raises(UserError, match=msg):
        bench.run(_parse("mixer", *argv, "--device", "cpu"))


def test_bench_bad_choice_is_user_error():
    with pytest.raises(UserError):
        _parse("mixer", "--ops", "nonsense")


@pytest.mark.gpu
def test_bench_modes_cuda(tmp_path, capsys):
    """The CUDA paths: events, bf16 autocast, peak memory, triton impls, datasheet MFU."""
    def run_cuda(*argv) -> dict:
        out = tmp_path / f"{argv[0]}.json"
        assert bench.run(_parse(*argv, "--device", "cuda", "--out", out)) == 0
        capsys.readouterr()
        return _strict(out.read_text())

    res = run_cuda("train", "--preset", "agiformer-tiny", "transformer-tiny", "--batch", 4,
                   "--steps", 3, "--warmup", 1)
    for r in res["rows"]:
        assert r["status"] == "ok" and r["precision"] == "bfloat16", r
        assert _pos(r["peak_memory_gib"]) and _pos(r["bytes_per_s"]) and _pos(r["mfu_vs_measured"])
    res = run_cuda("generate", "--preset", "agiformer-tiny", "transformer-tiny", "--contexts", 16,
                   160, "--new-bytes", 8, "--batch", 1, 4, "--prefill-reps", 1)
    for r in res["rows"]:
        if r["model"] == "transformer-tiny" and r["context"] == 160:
            assert r["status"] == "n/a (exceeds context)"
        else:
            assert r["status"] == "ok" and _pos(r["bytes_per_s"]) and _pos(r["peak_memory_gib"]), r
    res = run_cuda("mixer", "--T", 256, 1024, "--B", 2, "--H", 4, "--D", 64, "--reps", 3,
                   "--warmup", 1)
    for r in res["rows"]:
        assert r["status"] == "ok", r
        assert r["dtype"] == "bfloat16" and _pos(r["median_ms"]) and _pos(r["peak_memory_gib"])
    assert {r["impl"] for r in res["rows"]} == {"sdpa", "naive", "chunk", "triton"}


def test_decode_row_too_many_new_bytes_for_the_cache():
    import torch

    from bytelm import create_model
    from bytelm.bench.generate import NA_CONTEXT, decode_row
    model = create_model("transformer-tiny").eval()
    with torch.no_grad():
        r = decode_row(model, "t", batch=1, context=16, new_bytes=130, prefill_reps=1,
                       decode_reps=1, decode_warmup=2, device=torch.device("cpu"))
    # the prompt fits (time to first byte measured), 2 + 130 decoded bytes do not
    assert r["status"] == NA_CONTEXT and _pos(r["ttfb_ms"]) and "bytes_per_s" not in r


def test_bench_generate_times_greedy_blocks(tmp_path, capsys):
    """The Transformer's fixed-shape decoder is timed in greedy blocks (what generation runs
    at temperature 0): segments of whole blocks, three untimed block calls in the warm-up."""
    res, _ = run_bench(tmp_path, capsys, "generate", "--preset", "transformer-tiny",
                       "--contexts", 16, "--new-bytes", 12, "--batch", 1, "--prefill-reps", 1,
                       "--decode-reps", 2, "--decode-warmup", 2, "--decode", "static")
    (r,) = res["rows"]
    assert r["status"] == "ok" and r["greedy_block"] == 8, r
    assert r["new_bytes"] == 16 and r["decode_start"] == 16 + 2 + 3 * 8
    assert _pos(r["decode_ms_per_byte"])
    res, printed = run_bench(tmp_path, capsys, "generate", "--preset", "transformer-tiny",
                             "--contexts", 16, "--new-bytes", 4, "--batch", 1,
                             "--prefill-reps", 1, "--decode-reps", 2, "--decode-warmup", 2,
                             "--decode", "both", "--greedy-blocks", "both")
    # eager has no blocks (one row); the fixed-shape decoder a row with and one without
    got = [(r["decode"], r["greedy_block"], r["status"]) for r in res["rows"]]
    assert got == [("eager", 1, "ok"), ("compiled", 8, "ok"), ("compiled", 1, "ok")], got
