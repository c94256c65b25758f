"""The tokenized (BPE) baseline of the Kasgarli test: lossless tokenizer, exact scoring, FLOPs."""
import json
import math

import numpy as np
import pytest
import torch

pytest.importorskip("tokenizers")

from bytelm.errors import UserError  # noqa: E402
from bytelm.experiments.bpe_baseline import (_n_bytes, bpe_baseline, encode, score_tokens,  # noqa: E402
                                   token_model, train_bpe)
from bytelm.models.base import ModelOutput  # noqa: E402
from tests.eval.test_needle import run_cli  # noqa: E402


@pytest.fixture(scope="module")
def tr_text(shared_data) -> list[bytes]:
    """Lines of the small Turkish sample (cut at line ends, so every part is valid UTF-8)."""
    return (shared_data / "small" / "tr.txt").read_bytes().splitlines(keepends=True)


def part(lines: list[bytes], n_bytes: int, skip: int = 0) -> bytes:
    """Whole lines from line ``skip`` on, until about n_bytes."""
    out = b""
    for line in lines[skip:]:
        if len(out) >= n_bytes:
            break
        out += line
    return out


def test_bpe_is_lossless_and_counts_bytes(tr_text):
    n = len(tr_text) * 2 // 3
    tok = train_bpe(b"".join(tr_text[:n]), 600)
    assert tok.get_vocab_size() == 600
    test = b"".join(tr_text[n:])
    ids = encode(tok, test)
    assert tok.decode(ids.tolist()).encode() == test  # ç ğ ı ö ş ü survive
    assert _n_bytes(tok, ids) == len(test)
    assert len(ids) < len(test) / 1.5  # merges happened


class Uniform(torch.nn.Module):
    def __init__(self, V):
        super().__init__()
        self.V = V

    def forward(self, x):
        return ModelOutput(logits=torch.zeros(*x.shape, self.V))


def test_uniform_model_scores_log2_vocab_per_token(tr_text):
    n = len(tr_text) // 2
    tok = train_bpe(b"".join(tr_text[:n]), 400)
    text = part(tr_text, 6_000, skip=n)
    ids = encode(tok, text)
    for seq_len in (7, 64, len(ids) + 5):  # windows that do and do not divide the stream
        s = score_tokens(Uniform(400), tok, ids, seq_len=seq_len, batch_size=3)
        assert s["n_tokens"] == len(ids) - 1  # every token but the first, once
        assert s["n_bytes"] == len(text) - _n_bytes(tok, ids[:1])
        assert s["bits"] == pytest.approx((len(ids) - 1) * math.log2(400), rel=1e-6)
        assert s["bpb"] == pytest.approx(s["bits"] / s["n_bytes"])


def test_baseline_matches_the_byte_models_flops(tr_text):
    n = len(tr_text) // 2
    train, test = b"".join(tr_text[:n]), part(tr_text, 4_000, skip=n)
    flops = 5 * 2 * 64 * 1e6
    torch.manual_seed(0)
    r = bpe_baseline("transformer-tiny", train, test, 400, flops, batch_size=2, seq_len=64)
    per_step = r["flops_per_token"] * 2 * 64
    assert abs(r["train_flops"] - flops) <= per_step / 2 + 1  # nearest whole step
    assert r["vocab_size"] == 400 and math.isfinite(r["test"]["bpb"])
    assert r["test"]["scored_bytes"] > 0.9 * len(test) and r["train_bytes_per_token"] > 1.5
    m = token_model("transformer-tiny", 400)
    assert m.embed.weight.shape[0] == 400 and m.head.weight.shape[0] == 400
    json.dumps(r)  # JSON-able


def test_baseline_is_chosen_on_validation(tr_text):
    """Every budget fraction trains from the same initial weights; the test split is scored with
    the weights of the best validation check, and with one check at the full budget's end that
    is exactly the unselected last step."""
    n = len(tr_text) * 2 // 3  # 45 long lines: 30 train, then val and test lines
    train, val = b"".join(tr_text[:n]), part(tr_text, 3_000, skip=n)
    test = part(tr_text, 3_000, skip=n + 5)
    assert val and test and not test.startswith(val)
    flops = 8 * 2 * 64 * 1e6
    r = bpe_baseline("transformer-tiny", train, test, 400, flops, batch_size=2, seq_len=64,
                     val=val, fractions=(1.0, 0.5), n_evals=4)
    assert [c["fraction"] for c in r["candidates"]] == [1.0, 0.5]
    assert [c["steps"] for c in r["candidates"]] == [r["steps"], round(r["steps"] / 2)]
    checks = [(v["bpb"], c["fraction"], v["step"]) for c in r["candidates"] for v in c["val_curve"]]
    assert all(len(c["val_curve"]) >= 4 for c in r["candidates"])
    sel = r["selection"]
    assert (sel["val_bpb"], sel["fraction"], sel["step"]) == min(checks)
    assert sel["train_flops"] <= r["train_flops"]
    assert sel["rule"] == "best validation bpb over 4 checks in each of 2 schedules (1, 0.5 of " \
        "the FLOP budget)"
    assert math.isfinite(r["test"]["bpb"]) and math.isfinite(r["test_final"]["bpb"])
    json.dumps(r)
    one = bpe_baseline("transformer-tiny", train, test, 400, flops, batch_size=2, seq_len=64,
                       val=val, fractions=(1.0,), n_evals=1)
    assert one["selection"]["step"] == one["steps"]
    assert one["test"] == one["test_final"]
    # the same seed gives the same full-budget run, whatever else is selected
    assert one["test_final"]["bits"] == pytest.approx(r["test_final"]["bits"], rel=1e-5)
    with pytest.raises(UserError, match="fractions"):
        bpe_baseline("transformer-tiny", train, test, 400, flops, batch_size=2, seq_len=64,
                     val=val, fractions=(0.5,))


def test_bad_input():
    with pytest.raises(UserError, match="> 256"):
        train_bpe(b"abc\n", 200)
    with pytest.raises(UserError, match="UTF-8"):
        train_bpe(b"\xff\xfe abc\n", 300)
    with pytest.raises(UserError, match="Transformer preset"):
        token_model("agiformer-tiny", 300)
    tok = train_bpe(b"hello world\n" * 50, 300)
    with pytest.raises(UserError, match="window"):
        from bytelm.experiments.bpe_baseline import train_tokens
        train_tokens(token_model("transformer-tiny", 300), np.arange(5), 1, 1, 64)
    assert tok.get_vocab_size() <= 300


def test_kasgarli_cli_with_bpe(shared_data, tmp_path, capsys, one_thread):
    out = tmp_path / "kas"
    rc = run_cli(["kasgarli", "--langs", "eng,tur", "--max-lines", "400", "--steps", "3",
                  "--evals", "1", "--out", str(out), "--train.batch_size=2",
                  "--train.device=cpu", "--bpe", "300,400"])
    assert rc == 0
    res = json.loads((out / "kasgarli.json").read_text())
    for r in res["languages"]:
        assert [b["vocab_requested"] for b in r["bpe"]] == [300, 400]
        for b in r["bpe"]:
            assert b["byte_model_flops"] > 0 and math.isfinite(b["test"]["bpb"])
            assert "validation" in b["selection"]["rule"] and len(b["candidates"]) == 3
    printed = capsys.readouterr().out
    assert "tokenized baseline" in printed and "bytes - BPE chosen on val" in printed
    assert run_cli(["kasgarli", "--bpe", "100", "--out", str(tmp_path / "x")]) == 2
    assert run_cli(["kasgarli", "--bpe", "a,b", "--out", str(tmp_path / "x")]) == 2
    # the tokenized baseline is a Transformer: refused up front for another family
    assert run_cli(["kasgarli", "--bpe", "1000", "--preset", "agiformer-tiny",
                    "--out", str(tmp_path / "y")]) == 2
    assert "needs a Transformer preset" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()
    # languages run one at a time (as side-by-side processes do), then all at once into the
    # same folder: the second run reuses every byte run and BPE baseline (none is trained again)
    split = tmp_path / "split"
    common = ["--max-lines", "400", "--steps", "3", "--evals", "1", "--out", str(split),
              "--train.batch_size=2", "--train.device=cpu", "--bpe", "300,400"]
    for lang in ("tur", "eng"):
        assert run_cli(["kasgarli", "--langs", lang] + common) == 0
    stamps = sorted(f.stat().st_mtime_ns for f in split.glob("runs/*/bpe_*.json"))
    assert len(stamps) == 4
    assert run_cli(["kasgarli", "--langs", "eng,tur"] + common) == 0
    assert sorted(f.stat().st_mtime_ns for f in split.glob("runs/*/bpe_*.json")) == stamps
    merged = json.loads((split / "kasgarli.json").read_text())
    assert [r["bpe"] for r in merged["languages"]] == [r["bpe"] for r in res["languages"]]
    # a baseline saved under another selection rule (an older result) is trained again
    saved = next(split.glob("runs/eng/bpe_300.json"))
    old = json.loads(saved.read_text())
    old["selection"]["rule"] = "last step"
    saved.write_text(json.dumps(old))
    assert run_cli(["kasgarli", "--langs", "eng"] + common) == 0
    assert json.loads(saved.read_text())["selection"] == res["languages"][0]["bpe"][0]["selection"]
