"""bytelm.eval.needle: haystack construction, scoring (oracle 100%, uniform = chance), the CLI."""
import json

import numpy as np
import pytest
import torch

import bytelm
from bytelm.errors import UserError
import bytelm.eval.needle as needle_mod
from bytelm.eval.needle import (build_prompt, control_prompt, default_lengths, distractor_keys, fit,
                                load_filler, needle_spec, overhead, plot_needle, run_needle,
                                score_prompt, sentence_starts)
from bytelm.experiments.recall import InductionOracle
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


class UnigramLM(UniformLM):
    """A fixed byte distribution whatever the context: the bytes of ``favoured`` are ``boost``
    nats more likely than the rest. A prior on the key and no recall at all."""

    def __init__(self, favoured: bytes = b"1453", boost: float = 2.0, context: int = 1 << 20):
        super().__init__(context)
        self.config.family = "unigram"
        self.logits = torch.zeros(256)
        self.logits[list(favoured)] = boost

    def forward(self, x):
        return ModelOutput(logits=self.logits.expand(*x.shape, 256).clone())

    def step(self, x, state):
        return self.logits.expand(*x.shape, 256).clone(), state


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
    # extra bytes continue the same text and leave the first n_bytes (and the start) unchanged
    for seed in (0, 3):
        for n in (301, 5000):
            base, st = load_filler(haystacks["tr"], n, seed=seed)
            more, st_more = load_filler(haystacks["tr"], n, seed=seed, extra=23)
            assert len(more) == n + 23 and st_more == st and fit(more, n) == base
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
        assert c["logprob_gain"] == pytest.approx(0.0, abs=1e-9)
    s = res["summary"]
    assert s["chance_rank"] == 10.0 and s["control_rank"] == 10.0
    assert s["by_length"][0]["control_logprob"] == pytest.approx(-5 * np.log(256))


def test_control_prompt_construction(haystacks, monkeypatch):
    """Per length exactly one control is scored: the same length, the same question at the
    end, no needle, and its filler continues the with-needle prompts' filler."""
    spec = needle_spec("tr")
    q = ("\n" + spec.question).encode()
    seen = []
    real = needle_mod.score_prompt

    def spy(model, prompt, *a, **k):
        seen.append(prompt)
        return real(model, prompt, *a, **k)
    monkeypatch.setattr(needle_mod, "score_prompt", spy)
    lengths, depths = [150, 333, 700], [0.0, 0.4, 1.0]
    res = run_needle(UniformLM(), spec, haystacks["tr"], lengths, depths, n_distractors=5, seed=2)
    assert len(seen) == len(lengths) * (len(depths) + 1)
    needle = spec.needle.encode()
    for L in lengths:
        controls = [p for p in seen if len(p) == L and needle not in p]
        withs = [p for p in seen if len(p) == L and needle in p]
        assert len(controls) == 1 and len(withs) == len(depths)
        ctl = controls[0]
        assert ctl.endswith(q) and ctl[:-len(q)].decode("utf-8")
        assert ctl == control_prompt(ctl[:-len(q)], spec)
        for p in withs:
            off = p.index(needle)
            filler = p[:off] + p[off + len(needle) + 1:len(p) - len(q)]
            assert ctl.startswith(filler.rstrip(b" "))
    assert [b["length"] for b in res["summary"]["by_length"]] == lengths


def test_control_separates_recall_from_prior(haystacks, tmp_path):
    """An oracle that reads the needle: rank 0 with the needle, a worse rank without it, and a
    large positive gain. A model with a prior on the key's digits and no recall (a unigram):
    a good rank everywhere -- the same as its control's -- and gain exactly 0."""
    spec = needle_spec("en")
    lengths, depths = [100, 200], [0.0, 0.5, 1.0]
    oracle = run_needle(InductionOracle(context=150), spec, haystacks["en"], lengths, depths,
                        n_distractors=20)
    assert [b["mode"] for b in oracle["summary"]["by_length"]] == ["full", "recurrent"]
    assert {b["length"] for b in oracle["summary"]["by_length"]} == set(lengths)
    for b in oracle["summary"]["by_length"]:
        assert {"control_rank", "control_logprob", "control_exact", "mean_logprob_gain"} <= set(b)
        assert b["mean_rank"] == 0.0 and b["control_rank"] > b["mean_rank"]
        assert not b["control_exact"] and b["mean_logprob_gain"] > 10
    for c in oracle["cells"]:
        ctl = next(b for b in oracle["summary"]["by_length"] if b["length"] == c["length"])
        assert c["logprob_gain"] == pytest.approx(c["logprob"] - ctl["control_logprob"])
        assert c["logprob_gain"] > 10 and c["rank"] == 0
    assert oracle["summary"]["control_rank"] > oracle["summary"]["mean_rank"] == 0

    prior = run_needle(UnigramLM(context=150), spec, haystacks["en"], lengths, depths,
                       n_distractors=20)
    assert [b["mode"] for b in prior["summary"]["by_length"]] == ["full", "recurrent"]
    s = prior["summary"]
    assert s["mean_rank"] < 2 < s["chance_rank"]  # the rank alone looks like recall
    for b in s["by_length"]:
        assert b["control_rank"] == b["mean_rank"]
        assert b["mean_logprob_gain"] == pytest.approx(0.0, abs=1e-9)
    for c in prior["cells"]:
        assert c["logprob_gain"] == pytest.approx(0.0, abs=1e-9)
    assert s["control_rank"] == s["mean_rank"]
    assert s["mean_logprob_gain"] == pytest.approx(0, abs=1e-9)

    plot_needle(oracle, tmp_path / "needle.png")  # with the gain panel
    assert (tmp_path / "needle.png").stat().st_size > 1000
    old = json.loads(json.dumps(oracle))  # a result from before the control still plots
    for c in old["cells"]:
        del c["logprob_gain"]
    for b in old["summary"]["by_length"]:
        del b["control_rank"]
    plot_needle(old, tmp_path / "old.png")
    assert (tmp_path / "old.png").stat().st_size > 1000


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
                "needle_in_window", "logprob", "logprob_gain"} <= set(c)
        assert 0 <= c["rank"] <= 20 and isinstance(c["exact"], bool)
    by_len = res["summary"]["by_length"]
    assert [b["mode"] for b in by_len] == ["full", "truncated"]
    for b in by_len:
        assert 0 <= b["control_rank"] <= 20 and b["control_logprob"] < 0
        gains = [c["logprob_gain"] for c in res["cells"] if c["length"] == b["length"]]
        assert b["mean_logprob_gain"] == pytest.approx(np.mean(gains))
    mean_control = np.mean([b["control_rank"] for b in by_len])
    assert res["summary"]["control_rank"] == pytest.approx(mean_control)
    out_text = capsys.readouterr().out
    assert "truncated" in out_text
    assert "distractors above key (chance 10, 0 best)" in out_text
    header = next(line for line in out_text.splitlines() if line.startswith("| length"))
    assert "control rank" in header and "logprob gain" in header
    row = next(line for line in out_text.splitlines() if line.startswith("| 124 |"))
    assert row.count("|") == header.count("|")
    assert f"{by_len[0]['control_rank']:.2f}" in row
    assert run_cli(["needle", tmp_path / "ckpt", "--depths", "2"]) == 2
    assert "--depths must lie in [0, 1]" in capsys.readouterr().err
