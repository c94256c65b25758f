"""Measures the two hardware ceilings on this GPU: bf16 matmul rate and device copy bandwidth.

Prints JSON; imported by the other benchmark scripts so every result file carries them.
"""
import json

import torch


def measure() -> dict:
    if not torch.cuda.is_available():
        return {"device": "cpu"}
    dev = torch.device("cuda")
    n = 8192
    a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(10):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        a @ b
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e) / 1e3)
    times.sort()
    matmul = 2 * n**3 / times[len(times) // 2] / 1e12
    del a, b
    x = torch.randn(2**28, device=dev)  # 1 GiB fp32
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    times = []
    for _ in range(10):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        y.copy_(x)
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e) / 1e3)
    times.sort()
    copy_bw = 2 * x.numel() * 4 / times[len(times) // 2] / 1e12
    return {"device": torch.cuda.get_device_name(dev), "torch": torch.__version__,
            "bf16_matmul_tflops_measured": matmul, "copy_tb_per_s_measured": copy_bw}


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
