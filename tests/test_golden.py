"""Golden loss: 20 deterministic CPU steps of transformer-tiny, compared with tests/golden/.

A change that alters numerics (init, data order, schedule, loss) shows up here. Regenerate on
purpose with BYTELM_UPDATE_GOLDEN=1 and say why in the commit message.
"""
import os
from pathlib import Path

import pytest

from bytelm.options import build_run_config
from bytelm.train.loop import train
from bytelm.train.metrics import read_metrics

GOLDEN = Path(__file__).parent / "golden" / "gpt-tiny_cpu.txt"


def test_golden_loss(small_corpus, tmp_path):
    cfg = build_run_config("transformer-tiny", {
        "data.path": str(small_corpus), "train.steps": 20, "train.batch_size": 4,
        "train.log_every": 1, "train.eval_every": 0, "train.eval_bytes": 2000,
        "train.out_dir": str(tmp_path / "run"), "train.progress": False, "train.device": "cpu",
        "optim.lr": 3e-3, "optim.warmup_steps": 5, "train.seed": 7})
    train(cfg)
    losses = [r["loss"] for r in read_metrics(tmp_path / "run") if r["kind"] == "train"]
    assert len(losses) == 20
    if os.environ.get("BYTELM_UPDATE_GOLDEN"):
        GOLDEN.write_text("".join(f"{v:.6f}\n" for v in losses))
    golden = [float(v) for v in GOLDEN.read_text().split()]
    assert losses == pytest.approx(golden, rel=2e-4, abs=2e-4)
    assert losses[-1] < losses[0] - 1.0
