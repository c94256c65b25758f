"""Training throughput sweep of a preset on random bytes: bytes/s and MFU per (batch, compile).

Times optimizer steps (forward + backward + AdamW, bf16 autocast) with CUDA events after a
warm-up, medians reported. Used to pick the baseline's batch size and compile setting.

    python benchmarks/train_throughput.py --preset transformer-30m --batch 32 64 --out r.json
"""
import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def bench(preset: str, batch: int, compile_: bool, steps: int = 20, warmup: int = 5) -> dict:
    import bytelm
    from bytelm.nn.loss import byte_cross_entropy
    from bytelm.train.perf import peak_tflops
    dev = torch.device("cuda")
    torch.manual_seed(0)
    model = bytelm.create_model(preset).to(dev)
    T = model.config.context
    opt = torch.optim.AdamW(model.param_groups(0.1), lr=1e-4, fused=True)
    fwd = torch.compile(model) if compile_ else model
    x = torch.randint(0, 256, (batch, T + 1), device=dev)
    torch.cuda.reset_peak_memory_stats(dev)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = fwd(x[:, :-1])
        loss = byte_cross_entropy(out.logits, x[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    t0 = time.time()
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    warm_s = time.time() - t0
    times = []
    for _ in range(steps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        step()
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e) / 1e3)
    times.sort()
    t = times[len(times) // 2]
    bps = batch * T / t
    fpb = model.flops_per_byte(T)
    peak = peak_tflops(dev)
    return {"preset": preset, "batch": batch, "context": T, "compile": compile_,
            "step_ms": t * 1e3, "bytes_per_s": bps, "flops_per_byte": fpb,
            "mfu": fpb * bps / (peak * 1e12) if peak else None,
            "warmup_s": warm_s, "peak_memory_gib": torch.cuda.max_memory_allocated(dev) / 2**30}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="transformer-30m")
    ap.add_argument("--batch", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--compile", choices=["off", "on", "both"], default="both")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from gpu_ceilings import measure
    rows = []
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    for c in modes:
        for b in args.batch:
            r = bench(args.preset, b, c)
            rows.append(r)
            print(f"{args.preset} batch {b:4d} compile {c!s:5}: {r['step_ms']:7.1f} ms/step "
                  f"{r['bytes_per_s'] / 1e6:6.2f} MB/s  MFU {r['mfu'] or 0:.3f}  "
                  f"mem {r['peak_memory_gib']:.1f} GiB  warmup {r['warmup_s']:.0f}s", flush=True)
    res = {"ceilings": measure(), "rows": rows, "command": " ".join(sys.argv)}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
