"""bytelm.eval.needle: haystack construction, scoring (oracle 100%, uniform = chance), the CLI."""
import json

import numpy as np
import pytest
import torch

import bytelm
from bytelm.errors import UserError
from bytelm.eval.needle import (build_prompt, default_lengths, distractor_keys, fit, load_filler,
                                needle_spec, overhead, run_needle, score_prompt, sentence_starts)
from bytelm.eval.recall import InductionOracle
from bytelm.models.base import ByteLM, ModelConfig, ModelOutput


def run_cli(argv: list[str]) -> int:
    """``bytelm ARGV`` in-process: the exit code (2 for a UserError, printed on one line)."""
    from bytelm.cli.__main__ import main
    return main([str(a) for a in argv])


class UniformLM(ByteLM):
    """Every byte equally likely (logits 0), any context."""

    def __init__(self, context: int = 1 << 20):
        super().__init__(ModelConfig(family="uniform", context=context))
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return ModelOutput(logits=torch.zeros(*x.shape, 256))

    def init_state(self, batch_size, device=None):
        return None

    def step(self, x, state):
        return torch.zeros(*x.shape, 256), state


@pytest.fixture(scope="module")
def haystacks(shared_data):
    return {"en": shared_data / "en" / "text" / "enwiki_test.txt",
            "tr": shared_data / "tr" / "text" / "news.txt"}


@pytest.mark.parametrize("lang", ["en", "tr"])
@pytest.mark.parametrize("length", [300, 1000, 2049])
def test_build_prompt(haystacks, lang, length):
    spec = needle_spec(lang)
    filler, _ = load_filler(haystacks[lang], length - overhead(spec), seed=0)
    starts = sentence_starts(filler)
    gap = int(np.diff(np.concatenate([starts, [len(filler)]])).max())
    for depth in (0.0, 0.25, 0.5, 0.9, 1.0):
        prompt, off = build_prompt(filler, depth, spec)
        assert len(prompt) == length
        prompt.decode("utf-8")  # valid UTF-8 (the Turkish needle has 2-byte characters)
        needle = spec.needle.encode()
        assert prompt[off:off + len(needle)] == needle and prompt.count(needle) == 1
        assert off in starts  # at a sentence or line start of the filler
        assert abs(off - depth * len(filler)) <= gap
        assert prompt.endswith(("\n" + spec.question).encode())
        # the filler is intact around the needle
        q_len = len(("\n" + spec.question).encode())
        assert prompt[:off] + prompt[off + len(needle) + 1:len(prompt) - q_len] == filler
    assert build_prompt(filler, 0.0, spec)[1] == 0


def test_fit_and_filler_utf8(haystacks):
    text = "ğüşıöç €".encode() * 50
    for n in range(1, 40):
        out = fit(text, n)
        assert len(out) == n
        out.decode("utf-8")
    a, start_a = load_filler(haystacks["tr"], 5000, seed=3)
    b, start_b = load_filler(haystacks["tr"], 5000, seed=3)
    assert a == b and start_a == start_b > 0 and len(a) == 5000
    with pytest.raises(UserError):
        load_filler(haystacks["tr"].parent / "missing.txt", 100)
    folder, _ = load_filler(haystacks["tr"].parent, 3000)  # a folder: its .txt files in order
    assert folder == fit((haystacks["tr"].parent / "ataturk_speeches.txt").read_bytes(), 3000)


def test_distractor_keys():
    ks = distractor_keys("1453", 20, seed=0)
    assert len(set(ks)) == 20 and "1453" not in ks
    assert all(len(k) == 4 and k.isdigit() for k in ks)
    assert ks == distractor_keys("1453", 20, seed=0) != distractor_keys("1453", 20, seed=1)
    mixed = distractor_keys("Ab-7", 5)
    assert all(k[0].isupper() and k[1].islower() and k[2] == "-" and k[3].isdigit() for k in mixed)
    with pytest.raises(UserError):
        distractor_keys("7", 20)
    with pytest.raises(UserError):
        needle_spec("en", key="9999", needle="no key here")


def test_default_lengths():
    assert default_lengths(1024, 4) == [1020, 2048, 4096]
    assert default_lengths(8192, 4) == [1024, 2048, 4096, 8188, 16384, 32768]
    assert default_lengths(128) == [128, 256, 512]


def test_oracle_scores_perfectly(haystacks):
    """An exact induction model recalls the key everywhere: exact at every cell, rank 0."""
    res = run_needle(InductionOracle(), needle_spec("en"), haystacks["en"], [200, 600],
                     [0.0, 0.5, 1.0], n_distractors=20)
    assert len(res["cells"]) == 6
    assert all(c["exact"] and c["rank"] == 0 and c["mode"] == "full" for c in res["cells"])
    assert res["summary"]["exact_acc"] == 1.0 and res["summary"]["mean_rank"] == 0.0


def test_oracle_turkish_question_echo(haystacks):
    """The seed's Turkish question repeats its own subject ("Gizli şifre nedir? Gizli şifre"):
    where the needle does not follow a space (depth 0, a line start) the question's first
    "Gizli şifre" is an equally long, more recent match and an induction model continues with
    " nedir?". The rank still puts the key first."""
    res = run_needle(InductionOracle(), needle_spec("tr"), haystacks["tr"], [200, 600],
                     [0.0, 0.5, 1.0], n_distractors=20)
    for c in res["cells"]:
        assert c["rank"] == 0
        assert c["exact"] == (c["needle_offset"] > 0), c
    assert [c["completion"] for c in res["cells"] if c["needle_offset"] == 0] == [" nedi"] * 2


def test_uniform_model_is_chance(haystacks):
    spec = needle_spec("en")
    res = run_needle(UniformLM(), spec, haystacks["en"], [200], [0.0, 1.0], n_distractors=20)
    for c in res["cells"]:
        assert c["rank"] == 10.0 and c["logprob_margin"] == 0.0 and not c["exact"]
        assert c["logprob"] == pytest.approx(-5 * np.log(256))
    assert res["summary"]["chance_rank"] == 10.0


def test_truncated_and_recurrent(haystacks, one_thread):
    """Beyond the context: the Transformer reads the last context bytes, AGIFORMER's recurrent
    state reads everything and equals its full forward where both apply."""
    spec = needle_spec("en")
    torch.manual_seed(0)
    gpt = bytelm.create_model("transformer-tiny").eval()
    filler, _ = load_filler(haystacks["en"], 300 - overhead(spec))
    prompt, off = build_prompt(filler, 0.0, spec)
    r = score_prompt(gpt, prompt, spec, distractor_keys("1453", 5))
    assert r["mode"] == "truncated" and r["bytes_seen"] == 128 - 4
    with pytest.raises(UserError):
        score_prompt(gpt, prompt, spec, ["0000"], long_mode="recurrent")

    agi = bytelm.create_model("agiformer-tiny", memory_rule="delta").eval()
    short, _ = build_prompt(filler[:40], 0.5, spec)
    assert len(short) + 4 <= 128
    full = score_prompt(agi, short, spec, distractor_keys("1453", 5))
    agi.config.context = 64  # the same prompt no longer fits: read through step()
    rec = score_prompt(agi, short, spec, distractor_keys("1453", 5))
    assert (full["mode"], rec["mode"]) == ("full", "recurrent")
    assert rec["logprob"] == pytest.approx(full["logprob"], abs=1e-3)
    assert rec["rank"] == full["rank"] and rec["completion"] == full["completion"]


def test_cli_tiny_random_model(haystacks, tmp_path, capsys, one_thread):
    torch.manual_seed(0)
    bytelm.create_model("transformer-tiny").save(tmp_path / "ckpt")
    out = tmp_path / "out"
    rc = run_cli(["needle", tmp_path / "ckpt", "--lengths", "124,256", "--depths", "0,0.5,1",
                          "--out", str(out), "--device", "cpu"])
    assert rc == 0
    res = json.loads((out / "needle.json").read_text())
    assert (out / "needle.png").stat().st_size > 1000
    assert {"checkpoint", "model", "needle", "question", "answer", "key", "distractors", "cells",
            "summary", "lengths", "depths", "haystack"} <= set(res)
    assert len(res["cells"]) == 6 and len(res["distractors"]) == 20
    for c in res["cells"]:
        assert {"length", "depth", "actual_depth", "exact", "rank", "logprob_margin", "mode",
                "needle_in_window"} <= set(c)
        assert 0 <= c["rank"] <= 20 and isinstance(c["exact"], bool)
    assert [b["mode"] for b in res["summary"]["by_length"]] == ["full", "truncated"]
    assert "truncated" in capsys.readouterr().out
    assert run_cli(["needle", tmp_path / "ckpt", "--depths", "2"]) == 2
    assert "--depths must lie in [0, 1]" in capsys.readouterr().err
