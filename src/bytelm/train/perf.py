"""Throughput bookkeeping: peak FLOP rates, MFU, peak memory."""
import torch

# dense bf16 tensor-core peaks from the datasheets (TFLOP/s); MFU is relative to these
_PEAKS = {"H100": 989.4, "H200": 989.4, "A100": 312.0, "L40S": 362.0, "A10G": 125.0, "4090": 165.2}


def peak_tflops(device: torch.device, override: float = 0.0) -> float | None:
    """The device's dense bf16 peak in TFLOP/s (None on CPU or an unknown GPU)."""
    if override > 0:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, val in _PEAKS.items():
        if key in name:
            return val
    return None


def mfu(flops_per_byte: float, bytes_per_s: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation: achieved model FLOP/s over the peak."""
    return None if not peak else flops_per_byte * bytes_per_s / (peak * 1e12)


def peak_memory_gib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**30
