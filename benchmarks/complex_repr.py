"""BSFIN's complex-linear map in three representations, forward + backward (issue #5: "prefer
torch.complex64 or explicit real/imag pairs, whichever is faster; measure and say").

    PYTHONPATH=src python benchmarks/complex_repr.py --out OUT.json [--tokens 14592 --dim 512]

- pairs4: (A r - B i, A i + B r), four real matmuls (the reference form,
  ``bsfin.interference.complex_linear_reference``); fp32, and bf16 autocast on CUDA;
- block: one real matmul of [r, i] (2n) with the block matrix [[A, -B], [B, A]] (2m x 2n), the
  same FLOPs in one GEMM; the model's form since the H100 run (ablations/complex_repr_h100.json);
- complex64: torch.complex64 tensors and one complex matmul (fp32 only: no bf16 complex).
Each is checked against pairs4 in fp32 (outputs and the gradients of A, B, r, i), then timed
(median of --reps after --warmup). tokens defaults to one bsfin-35m batch: 64 rows x ~228
patches of a 1,024-byte context.
"""
import argparse
import time

import torch

from bytelm.bench.report import write_json


def pairs4(r, i, A, B):
    from bytelm.models.bsfin.interference import complex_linear_reference
    return complex_linear_reference(r, i, A, B)


def block(r, i, A, B):
    W = torch.cat([torch.cat([A, -B], 1), torch.cat([B, A], 1)], 0)  # (2m, 2n)
    y = torch.cat([r, i], -1) @ W.T
    return y.chunk(2, -1)


def complex64(r, i, A, B):
    z = torch.complex(r.float(), i.float())
    W = torch.complex(A.float(), B.float())
    y = z @ W.T
    return y.real, y.imag


FORMS = {"pairs4": pairs4, "block": block, "complex64": complex64}


def run(fn, r, i, A, B):
    yr, yi = fn(r, i, A, B)
    (yr.float().square().mean() + yi.float().square().mean()).backward()
    return yr, yi


def timed(fn, args, dev, warmup: int, reps: int, amp: bool) -> float:
    ts = []
    for n in range(warmup + reps):
        for t in args:
            t.grad = None
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            run(fn, *args)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if n >= warmup:
            ts.append(time.perf_counter() - t0)
    return sorted(ts)[len(ts) // 2] * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=14592)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    n = args.dim

    def leaf(*shape, scale=1.0):
        return (scale * torch.randn(*shape, device=dev)).requires_grad_()
    r, i = leaf(args.tokens, n), leaf(args.tokens, n)
    A, B = leaf(n, n, scale=n ** -0.5), leaf(n, n, scale=n ** -0.5)
    tensors = (r, i, A, B)
    ref_out = run(pairs4, *tensors)
    ref_grads = [t.grad.clone() for t in tensors]
    res = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "torch": torch.__version__, "tokens": args.tokens, "dim": n,
           "flops_fwd_bwd": 3 * 4 * 2 * args.tokens * n * n, "forms": {}}
    for name, fn in FORMS.items():
        for t in tensors:
            t.grad = None
        out = run(fn, *tensors)
        err = max(float((o.detach().float() - ro.detach()).abs().max() / ro.detach().abs().max())
                  for o, ro in zip(out, ref_out))
        gerr = max(float((t.grad - g).abs().max() / g.abs().max()) for t, g in zip(tensors, ref_grads))
        rec = {"max_rel_err_fp32": err, "max_rel_grad_err_fp32": gerr,
               "fp32_ms": timed(fn, tensors, dev, args.warmup, args.reps, amp=False)}
        if dev.type == "cuda" and name != "complex64":
            rec["bf16_autocast_ms"] = timed(fn, tensors, dev, args.warmup, args.reps, amp=True)
        res["forms"][name] = rec
        print(name, {k: float(f"{v:.4g}") for k, v in rec.items()}, flush=True)
    write_json(res, args.out)


if __name__ == "__main__":
    main()
