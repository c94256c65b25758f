"""The validation a training run logs is the score of the weights it saves: for every family,
evaluate_bpb of the checkpoint loaded back (what `bytelm eval` does) equals the run's last
validation, with dropout on during training (a GPU run of bsfin-35m once logged 5.35 bpb where its
checkpoint scored 1.95: a cache of BSFIN's complex block matrices was stamped by version counters,
which fused AdamW, bytelm's optimizer on CUDA, does not bump; docs/benchmarks.md)."""
import json

import pytest
import torch

import bytelm
from bytelm.data import open_split
from bytelm.eval.bpb import evaluate_bpb
from bytelm.train.loop import Trainer


# fused: AdamW as build_optimizer makes it on CUDA (it updates without bumping version counters);
# budget: a time budget, whose planner runs a validation batch before the first step
@pytest.mark.parametrize("fused,budget", [(False, False), (True, False), (True, True)],
                         ids=["adamw", "fused-adamw", "fused-adamw-time-budget"])
@pytest.mark.parametrize("preset", ["transformer-tiny", "agiformer-tiny", "bsfin-tiny", "hnet-tiny"])
def test_logged_validation_is_the_checkpoints_score(make_cfg, tmp_path, preset, fused, budget,
                                                    monkeypatch):
    if fused:
        adamw = torch.optim.AdamW
        monkeypatch.setattr(torch.optim, "AdamW", lambda *a, **k: adamw(*a, **{**k, "fused": True}))
    cfg = make_cfg(tmp_path / preset, {"train.steps": 6, "train.eval_every": 3, "model.dropout": 0.1,
                                       "train.batch_size": 8,
                                       **({"train.time_budget_min": 5.0} if budget else {})},
                   preset=preset)
    Trainer(cfg).run()
    vals = [json.loads(ln) for ln in (tmp_path / preset / "metrics.jsonl").read_text().splitlines()]
    vals = [r for r in vals if r["kind"] == "val"]
    assert [r["step"] for r in vals] == [3, 6]
    model = bytelm.load(tmp_path / preset / "ckpt" / "last")
    got = evaluate_bpb(model.eval(), open_split(cfg.data.path, "val"), seq_len=cfg.seq_len,
                       stride=cfg.eval.stride, batch_size=cfg.eval.batch_size,
                       max_bytes=cfg.train.eval_bytes, precision=cfg.train.precision)
    assert got["bpb"] == pytest.approx(vals[-1]["bpb"], abs=1e-4), (got["bpb"], vals)
    assert torch.isfinite(torch.tensor(got["bpb"]))
