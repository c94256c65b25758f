"""The two hardware ceilings, measured: matrix-product rate and device-memory copy bandwidth.

MFU against a datasheet peak mixes up "our code is slow" with "this card (or its clocks) is
slower than the datasheet"; every bench result carries these two numbers, measured in the same
run, so model throughput can also be read against what the card actually delivers.
"""
import torch

from bytelm.bench.timing import as_device, time_fn

# (matmul side, copy MiB): bf16 8192^3 and a 1 GiB copy fill an H100; a CPU gets a quick look
_GPU_SIZES = (8192, 1024)
_CPU_SIZES = (1024, 64)


def measure(device=None, matmul_n: int | None = None, copy_mib: int | None = None,
            warmup: int = 3, reps: int = 10) -> dict:
    """Measures the matmul rate and copy bandwidth of ``device`` (None: CUDA when available).

    Args:
        device: torch device; bf16 matmul on CUDA, fp32 on CPU.
        matmul_n: side of the square matrix product (default 8192 on GPU, 1024 on CPU).
        copy_mib: size of the copied buffer in MiB (default 1024 on GPU, 64 on CPU).
        warmup, reps: as in ``time_fn``; medians are reported.
    Returns:
        dict: device, device_name, torch, matmul_dtype, matmul_n, matmul_tflops_measured
        (2 n^3 / median time), copy_mib, copy_tb_per_s_measured (bytes read + written over the
        median time of one device-to-device copy). Inputs are random, never zeros.
    """
    dev = as_device(device)
    n_default, mib_default = _GPU_SIZES if dev.type == "cuda" else _CPU_SIZES
    n = matmul_n or n_default
    mib = copy_mib or mib_default
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    gen = torch.Generator(device=dev).manual_seed(0)
    a = torch.randn(n, n, device=dev, dtype=dtype, generator=gen)
    b = torch.randn(n, n, device=dev, dtype=dtype, generator=gen)
    mm = time_fn(lambda: a @ b, warmup=warmup, reps=reps, device=dev)
    del a, b
    x = torch.randn(mib * 2**20 // 4, device=dev, generator=gen)
    y = torch.zeros_like(x)
    cp = time_fn(lambda: y.copy_(x), warmup=warmup, reps=reps, device=dev)
    del x, y
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    return {"device": dev.type, "device_name": name, "torch": torch.__version__,
            "matmul_dtype": str(dtype).removeprefix("torch."), "matmul_n": n,
            "matmul_tflops_measured": 2 * n**3 / (mm["median_ms"] / 1e3) / 1e12,
            "copy_mib": mib,
            "copy_tb_per_s_measured": 2 * mib * 2**20 / (cp["median_ms"] / 1e3) / 1e12}
