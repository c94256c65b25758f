"""Measuring learning and forgetting: bits per byte of a model on named domains, before and after
a live run (``bytelm.eval.bpb.evaluate_bpb`` over contiguous windows)."""
from pathlib import Path

import numpy as np
import torch

from bytelm.errors import UserError


def as_bytes_array(data, split: str = "val") -> np.ndarray:
    """uint8 array of ``data``: a prepared corpus dir (its ``split``), a file, bytes or an array."""
    if isinstance(data, np.ndarray):
        return data.astype(np.uint8, copy=False)
    if isinstance(data, (bytes, bytearray)):
        return np.frombuffer(bytes(data), dtype=np.uint8)
    p = Path(data)
    if p.is_dir():
        from bytelm.data import open_split
        return open_split(p, split, min_len=2).data
    if p.is_file():
        return np.fromfile(p, dtype=np.uint8)
    raise UserError(f"evaluation data not found: {data}")


def bpb_on(model, data, seq_len: int, max_bytes: int | None = None, batch_size: int = 8,
           split: str = "val") -> float:
    """Bits per byte of ``model`` on ``data`` (see ``as_bytes_array``), in eval mode, fp32 on CPU
    and bf16 autocast on CUDA; restores the model's train/eval mode."""
    from bytelm.eval.bpb import evaluate_bpb
    arr = as_bytes_array(data, split)
    if len(arr) < 2:
        raise UserError("evaluation data needs at least 2 bytes")
    was_training = model.training
    model.eval()
    try:
        return evaluate_bpb(model, arr, seq_len=seq_len, batch_size=batch_size,
                            max_bytes=max_bytes)["bpb"]
    finally:
        model.train(was_training)


def evaluate_domains(model, domains: dict, seq_len: int, max_bytes: int | None = None) -> dict:
    """{name: bpb} for each named domain (values as accepted by ``bpb_on``)."""
    with torch.no_grad():
        return {name: bpb_on(model, d, seq_len, max_bytes) for name, d in domains.items()}


def forgetting_report(before: dict, after: dict) -> dict:
    """{name: {"before", "after", "delta"}}; delta > 0 on the original domain is forgetting, delta
    < 0 on the new domain is learning."""
    return {k: {"before": before[k], "after": after[k], "delta": after[k] - before[k]}
            for k in before}
