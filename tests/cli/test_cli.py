"""Happy path of the CLI: prepare -> train -> eval -> generate, and info."""
import json
import math
import re

import torch

import bytelm
from bytelm import create_model

from .helpers import TRAIN_ARGS


def test_prepare_prints_split_sizes(run_cli, tmp_path, src_text):
    rc, out, err = run_cli("prepare", src_text, "--out", tmp_path / "c")
    assert rc == 0, err
    assert out == f"prepared {tmp_path / 'c'}: train 54,284 bytes, val 4,289 bytes, test 1,542 bytes\n"
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["meta.json", "test.bin", "train.bin",
                                                                 "val.bin"]
    # re-preparing into a prepared corpus is allowed and gives the same bytes
    before = (tmp_path / "c" / "train.bin").read_bytes()
    assert run_cli("prepare", src_text, "--out", tmp_path / "c")[0] == 0
    assert (tmp_path / "c" / "train.bin").read_bytes() == before


def test_train_writes_a_run(trained_run):
    # the session fixture ran `bytelm train` for 2 steps
    for name in ("run_config.json", "metrics.jsonl", "summary.json"):
        assert (trained_run / name).is_file(), name
    for ck in ("last", "best"):
        assert {p.name for p in (trained_run / "ckpt" / ck).iterdir()} == {
            "config.json", "model.safetensors", "optimizer.pt", "rng.safetensors", "trainer_state.json"}
    assert json.loads((trained_run / "summary.json").read_text())["steps"] == 2


def test_train_prints_summary(run_cli, corpus, tmp_path):
    rc, out, err = run_cli("train", "--preset", "transformer-tiny", "--data", corpus,
                           "--out", tmp_path / "run", *TRAIN_ARGS, "--train.steps=1")
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["steps"] == 1 and math.isfinite(summary["val_bpb"])


def test_eval(run_cli, ckpt, tmp_path):
    res_file = tmp_path / "res.json"
    rc, out, err = run_cli("eval", ckpt, "--split", "val", "--max-bytes", "3000", "--json", res_file)
    assert rc == 0, err
    m = re.fullmatch(r"val: (\d+\.\d{4}) bits/byte, \d+\.\d{4} bits/char over 2,999 bytes "
                     r"\(window 128, stride 128\)\n", out)
    assert m, out
    res = json.loads(res_file.read_text())
    assert math.isfinite(res["bpb"]) and res["bpb"] > 0
    assert res["n_bytes"] == 2999
    assert f"{res['bpb']:.4f}" == m.group(1)
    assert res["split"] == "val"


def test_eval_run_dir_uses_best_checkpoint(run_cli, trained_run, ckpt):
    rc, out, err = run_cli("eval", trained_run, "--split", "val", "--max-bytes", "1000")
    assert rc == 0, err
    assert run_cli("eval", trained_run / "ckpt" / "best", "--split", "val", "--max-bytes", "1000")[1] == out


def _gen(run_cli, ckpt, *args, stdin=None):
    rc, out, err = run_cli("generate", ckpt, "--max-bytes", "24", *args, stdin=stdin)
    assert rc == 0, err
    assert "error" not in err
    return out


def test_generate_is_deterministic_and_stream_matches(run_cli, ckpt):
    greedy = ("--prompt", "The ", "--seed", "0", "--temperature", "0")
    a = _gen(run_cli, ckpt, *greedy)
    assert a.endswith("\n") and len(a) > 1
    assert _gen(run_cli, ckpt, *greedy) == a
    assert _gen(run_cli, ckpt, *greedy, "--stream") == a
    sampled = ("--prompt", "The ", "--seed", "0", "--temperature", "0.8", "--top-k", "50", "--top-p", "0.9")
    assert _gen(run_cli, ckpt, *sampled) == _gen(run_cli, ckpt, *sampled, "--stream")


def test_generate_precision(run_cli, ckpt, monkeypatch):
    """--precision: auto is fp32 on CPU (the same bytes as fp32); bf16 runs the decoder under
    autocast with its caches in bf16."""
    import importlib
    batch = importlib.import_module("bytelm.generate.batch")  # (bytelm.generate.batch is a function)
    greedy = ("--prompt", "The ", "--temperature", "0", "--decode", "static")
    assert _gen(run_cli, ckpt, *greedy) == _gen(run_cli, ckpt, *greedy, "--precision", "fp32")
    made = []
    real = batch.make_decoder

    def spy(*a, **k):
        dec = real(*a, **k)
        made.append({b.dtype for b in dec.buffers() if b.is_floating_point()})
        return dec
    monkeypatch.setattr(batch, "make_decoder", spy)
    out = _gen(run_cli, ckpt, *greedy, "--precision", "bf16")
    assert out.endswith("\n") and len(out) > 1
    assert made and all(torch.bfloat16 in d for d in made)


def test_generate_prompt_from_stdin_and_file(run_cli, ckpt, tmp_path):
    ref = _gen(run_cli, ckpt, "--prompt", "hello", "--temperature", "0")
    assert _gen(run_cli, ckpt, "--prompt", "-", "--temperature", "0", stdin=b"hello") == ref
    (tmp_path / "p.txt").write_bytes(b"hello")
    assert _gen(run_cli, ckpt, "--prompt-file", tmp_path / "p.txt", "--temperature", "0") == ref


def test_generate_prompts_file_in_one_batch(run_cli, ckpt, tmp_path):
    """--prompts-file (lines or JSON lines, prompts of different lengths): one JSON line per
    prompt, each the bytes --prompt gives alone (greedy)."""
    opts = ("--temperature", "0", "--max-bytes", "12")
    prompts = ["hello", "a", "The quick brown fox"]
    model = bytelm.load(ckpt).eval()
    alone = [bytelm.generate(model, p, max_bytes=12, temperature=0).decode("utf-8", "replace")
             for p in prompts]
    (tmp_path / "p.txt").write_text("\n".join(prompts) + "\n\n")
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(x) for x in
                                               [prompts[0], {"prompt": prompts[1]}, prompts[2]]))
    for f in ("p.txt", "p.jsonl"):
        lines = [json.loads(x) for x in _gen(run_cli, ckpt, "--prompts-file", tmp_path / f,
                                             *opts).splitlines()]
        assert [x["prompt"] for x in lines] == prompts
        assert [x["output"] for x in lines] == alone


def test_generate_interactive_reads_until_empty_line(run_cli, ckpt):
    opts = ("--temperature", "0", "--max-bytes", "8")
    expected = (_gen(run_cli, ckpt, "--prompt", "ab", *opts)
                + _gen(run_cli, ckpt, "--prompt", "cd", *opts))
    rc, out, err = run_cli("generate", ckpt, "--interactive", *opts, stdin=b"ab\ncd\n\nef\n")
    assert rc == 0, err
    assert out == expected  # "ef" after the empty line is never read
    assert "interactive" in err and "error" not in err


def test_info(run_cli):
    rc, out, err = run_cli("info")
    assert rc == 0, err
    assert out.splitlines()[0].split() == ["preset", "params", "family"]
    assert re.search(r"^transformer-tiny\s+[\d,]+\s+gpt$", out, re.M), out

    rc, out, err = run_cli("info", "transformer-tiny")
    assert rc == 0, err
    m = re.search(r"^parameters: ([\d,]+) \(", out, re.M)
    assert m, out
    model = create_model("transformer-tiny")
    assert int(m.group(1).replace(",", "")) == sum(p.numel() for p in model.parameters())
    assert "context = 128" in out


def test_train_stop_after_then_resume(run_cli, corpus, tmp_path):
    run = tmp_path / "run"
    base = ("train", "--preset", "transformer-tiny", "--data", corpus, "--out", run, *TRAIN_ARGS,
            "--train.steps=3")
    rc, out, err = run_cli(*base, "--train.stop_after=1")
    assert rc == 0, err
    assert json.loads(out)["steps"] == 1
    rc, out, err = run_cli("train", "--out", run, "--resume", "--train.stop_after=0")
    assert rc == 0, err
    assert json.loads(out)["steps"] == 3
