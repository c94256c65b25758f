"""Numeric precision of a forward pass: bf16 autocast on CUDA, fp32 elsewhere.

Used by training, evaluation, recall and live learning alike, so it sits below all of them.
"""
import contextlib

import torch


def autocast_ctx(device: torch.device, precision: str):
    """bf16 autocast on CUDA (precision auto/bf16); fp32 otherwise.

    Args:
        device: where the forward pass runs.
        precision: "auto" (bf16 on CUDA), "bf16" or "fp32".
    Returns:
        a context manager: ``torch.autocast`` or a null context.
    """
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if use_bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
