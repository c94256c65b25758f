"""bytelm.experiments.recall: the MQAR generator, value-only scoring (oracle 100%, uniform 1/256), and a
tiny end-to-end run of every family."""
import json
import re

import numpy as np
import pytest
import torch

from bytelm.errors import UserError
from bytelm.experiments.recall import (InductionOracle, RecallTask, default_grid, evaluate_recall,
                                make_batch, parse_model_spec, score_values, split_specs,
                                value_mask)
from tests.eval.test_needle import UniformLM, run_cli

TASK = RecallTask()


def parse(line: bytes):
    """(context pairs, query pairs) of one example as lists of (key, value) strings."""
    m = re.fullmatch(rb"((?:k[0-9a-f]{2}=v[0-9a-f]{2};)+)([g-z]*)\|((?:k[0-9a-f]{2}=v[0-9a-f]{2};)+)\n",
                     line)
    assert m, line
    pairs = lambda s: re.findall(r"k(..)=v(..);", s.decode())  # noqa: E731
    assert not set(m.group(2).decode()) & set("kv0123456789abcdef")
    return pairs(m.group(1)), pairs(m.group(3))


@pytest.mark.parametrize("n_pairs,seq_len", [(1, 64), (3, 64), (7, 128), (10, 500)])
def test_make_batch(n_pairs, seq_len):
    x, pos = make_batch(np.random.default_rng(0), TASK, 4, n_pairs, seq_len)
    assert x.shape == (4, seq_len) and x.dtype == torch.uint8
    assert pos.shape == (4, n_pairs, 2)
    for row, p in zip(x, pos):
        line = bytes(row.tolist())
        ctx, queries = parse(line)
        assert len(ctx) == len(queries) == n_pairs
        assert len({k for k, _ in ctx}) == n_pairs  # distinct keys
        # every query value is the value bound to its key in the context: determined by it
        assert sorted(queries) == sorted(ctx) and dict(queries) == dict(ctx)
        # value_pos points at the query values, in query order, after the '|'
        assert [line[i:i + 1].decode() for i in p.flatten().tolist()] == \
            list("".join(v for _, v in queries))
        assert p.min() > line.index(b"|")
    x2, pos2 = make_batch(np.random.default_rng(0), TASK, 4, n_pairs, seq_len)
    assert torch.equal(x, x2) and torch.equal(pos, pos2)  # deterministic
    assert not torch.equal(x, make_batch(np.random.default_rng(1), TASK, 4, n_pairs, seq_len)[0])


def test_make_batch_errors():
    assert TASK.max_pairs(64) == 3 and TASK.max_pairs(128) == 7
    with pytest.raises(UserError):
        make_batch(np.random.default_rng(0), TASK, 1, 4, 64)
    with pytest.raises(UserError):
        RecallTask(key_len=0)


def _one_hot_of_next(x: torch.Tensor) -> torch.Tensor:
    """Logits that predict every next byte correctly."""
    logits = torch.zeros(*x.shape, 256)
    logits[:, :-1].scatter_(-1, x[:, 1:].long()[..., None], 10.0)
    return logits


def test_scores_value_bytes_only():
    x, pos = make_batch(np.random.default_rng(0), TASK, 3, 5, 128)
    perfect = _one_hot_of_next(x)
    mask = value_mask(pos, 128)
    assert mask.sum() == 3 * 5 * 2
    # right on the value bytes, wrong everywhere else: 100%
    wrong_elsewhere = perfect.clone()
    wrong_elsewhere[:, :-1][~mask] = torch.roll(wrong_elsewhere[:, :-1][~mask], 1, -1)
    s = score_values(wrong_elsewhere, x, pos)
    assert s["byte_correct"] == s["n_values"] == 30 and s["query_correct"] == s["n_queries"] == 15
    # right everywhere but on one value byte of each query: byte 50%, query 0%
    one_off = perfect.clone()
    first = (pos[..., 0] - 1)  # logits predicting the first value byte of each query
    for b in range(3):
        one_off[b, first[b]] = torch.roll(one_off[b, first[b]], 1, -1)
    s = score_values(one_off, x, pos)
    assert s["byte_correct"] == 15 and s["query_correct"] == 0


def test_oracle_and_uniform():
    cells = default_grid(TASK, 256)
    assert cells == [(64, 1), (64, 2), (128, 1), (128, 2), (128, 4), (256, 1), (256, 2),
                     (256, 4), (256, 8)]
    for c in evaluate_recall(InductionOracle(), TASK, cells, n_examples=8):
        assert c["byte_acc"] == c["query_acc"] == 1.0 and c["value_prob"] > 0.99
    for c in evaluate_recall(UniformLM(), TASK, cells[:3], n_examples=8):
        assert c["value_prob"] == pytest.approx(1 / 256)
    with pytest.raises(UserError):
        default_grid(TASK, 128, seq_lens=[256])


def test_model_specs():
    assert split_specs("a-tiny,a-tiny[memory_rule=delta,window=4], t") == \
        ["a-tiny", "a-tiny[memory_rule=delta,window=4]", "t"]
    assert parse_model_spec("a-tiny[memory_rule=delta,window=4]") == \
        ("a-tiny", {"memory_rule": "delta", "window": "4"})
    with pytest.raises(UserError):
        parse_model_spec("a-tiny[window]")


def test_recall_tiny_end_to_end(tmp_path, capsys, one_thread):
    """AGIFORMER (Hebbian and delta memory) and the Transformer, 30 steps each: the pipeline runs
    and every cell is scored on its query values (accuracy is not expected to be high)."""
    out = tmp_path / "rec"
    rc = run_cli(["recall", "--preset", "agiformer-tiny", "--steps", "30",
                          "--lengths", "64,128", "--examples", "8", "--out", str(out),
                          "--train.batch_size=4", "--train.device=cpu"])
    assert rc == 0
    res = json.loads((out / "recall.json").read_text())
    assert (out / "recall.png").stat().st_size > 1000
    specs = [m["spec"] for m in res["models"]]
    assert specs == ["agiformer-tiny", "agiformer-tiny[memory_rule=delta]", "transformer-tiny"]
    assert [m["memory_rule"] for m in res["models"]] == ["hebbian", "delta", None]
    for m in res["models"]:
        assert len(m["cells"]) == 5 and m["history"][-1]["step"] == 30
        assert np.isfinite(m["final_loss"])
        for c in m["cells"]:
            # n_queries = examples x pairs: only the query values were scored
            assert c["n_queries"] == 8 * c["n_pairs"]
            assert 0 <= c["query_acc"] <= c["byte_acc"] <= 1 and 0 < c["value_prob"] < 1
        assert (tmp_path / "rec" / "models").is_dir()
    printed = capsys.readouterr().out
    assert "| 128 | 4 |" in printed and "transformer-tiny" in printed
    assert run_cli(["recall", "--preset", "transformer-tiny"]) == 2
    assert "not an AGIFORMER preset" in capsys.readouterr().err
