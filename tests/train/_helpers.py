"""Helpers shared by the trainer tests."""
from pathlib import Path

import torch

from bytelm.train.metrics import read_metrics


def step_losses(run_dir) -> list[tuple[int, float]]:
    """(step, loss) of every optimizer step, from the "train" records of metrics.jsonl."""
    out = []
    for rec in read_metrics(run_dir):
        if rec["kind"] == "train":
            losses = rec["losses"]
            first = rec["step"] - len(losses) + 1
            out.extend((first + i, v) for i, v in enumerate(losses))
    return out


def logged_steps(run_dir, kind: str) -> list[int]:
    return [r["step"] for r in read_metrics(run_dir) if r["kind"] == kind]


def ckpt_weights(ckpt_dir) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file
    return load_file(str(Path(ckpt_dir) / "model.safetensors"))


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"weights differ in {k}"
