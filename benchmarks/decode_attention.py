"""Decode attention over a fixed-shape KV cache (issue #21): ``sdpa`` with a bool mask against
``masked_decode_attention`` (two matmuls and a masked fp32 softmax), one new query per stream,
eager and under ``torch.compile``, at transformer-30m's heads (8 x 64) for the cache sizes of
``bytelm bench generate``; checks the two agree, then times each (CUDA events, median).

    python benchmarks/decode_attention.py --out benchmarks/results/generate/decode_attention_h100.json

The memory floor of a row is the bytes of its keys and values over the GPU's bandwidth
(reported as ``kv_bytes``; divide by the datasheet bandwidth for the floor).
"""
import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from bytelm.bench.report import environment, write_json  # noqa: E402
from bytelm.bench.timing import as_device, time_fn  # noqa: E402
from bytelm.nn.attention import masked_decode_attention, sdpa  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--capacity", type=int, nargs="+", default=[1288, 16384])
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--d-head", type=int, default=64)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    dev = as_device(None if a.device == "auto" else a.device)
    dt = torch.bfloat16 if dev.type == "cuda" else torch.float32
    fns = {"sdpa": lambda q, k, v, m: sdpa(q, k, v, attn_mask=m),
           "matmul": masked_decode_attention}
    rows = []
    for B in a.batch:
        for C in a.capacity:
            if B * C > 64 * 16384 and dev.type != "cuda":
                continue
            g = torch.Generator(device="cpu").manual_seed(0)
            k = torch.randn(B, a.heads, C, a.d_head, generator=g).to(dev, dt)
            v = torch.randn(B, a.heads, C, a.d_head, generator=g).to(dev, dt)
            q = torch.randn(B, a.heads, 1, a.d_head, generator=g).to(dev, dt)
            mask = (torch.arange(C) <= C - 9).to(dev)[None, None, None]  # the last 8 slots empty
            ref = fns["sdpa"](q, k, v, mask).float()
            for name, fn in fns.items():
                for mode in ("eager", "compiled"):
                    f = fn if mode == "eager" else torch.compile(fn, dynamic=False)
                    err = (f(q, k, v, mask).float() - ref).abs().max().item()
                    t = time_fn(lambda: f(q, k, v, mask), warmup=5, reps=a.reps, device=dev)
                    kv = 2 * k.numel() * k.element_size()
                    rows.append({"batch": B, "capacity": C, "impl": name, "mode": mode,
                                 "median_ms": t["median_ms"], "min_ms": t["min_ms"],
                                 "kv_bytes": kv, "kv_gb_per_s": kv / t["median_ms"] / 1e6,
                                 "max_abs_err_vs_sdpa_eager": err})
                    print(f"B={B:3d} C={C:6d} {name:7s} {mode:8s} {t['median_ms']:8.4f} ms "
                          f"{kv / t['median_ms'] / 1e6:8.1f} GB/s  err {err:.2e}", flush=True)
    write_json({"command": "python benchmarks/decode_attention.py " + " ".join(argv or sys.argv[1:]),
                "environment": environment(dev), "dtype": str(dt), "heads": a.heads,
                "d_head": a.d_head, "rows": rows}, a.out)


if __name__ == "__main__":
    main()
