"""GPU check of bytelm.ops: accuracy against the references and forward+backward timings.

hebbian: triton (fla chunk_gla) and chunk vs naive (T <= 1024) or chunk fp32 (longer T), bf16
inputs, relative RMS error of o, final state and every grad; fwd+bwd time of triton, chunk and
causal SDPA (flash) at the same B, H, T, D; the first triton call (autotune) timed apart.
swa: flex and blocked vs naive (T <= 4096) or blocked fp32, same timings (first flex call =
compile). Every case runs in its own try/except, so one failure keeps the rest; a time budget
skips what would not fit. Writes one JSON to --out and prints a table.

    python benchmarks/gpu_ops_check.py --out results/gpu_ops.json
"""
import argparse
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bytelm.ops.hebbian import chunk_hebbian, naive_hebbian, select_impl, triton_hebbian  # noqa: E402
from bytelm.ops.swa import (blocked_sliding_window_attention,  # noqa: E402
                            flex_sliding_window_attention, naive_sliding_window_attention)
from bytelm.ops.swa import select_impl as swa_select_impl  # noqa: E402

B, H, D = 4, 8, 64
LAMBDA_MIN = 0.99
# --smoke runs the same code on tiny CPU shapes, to check the script itself without a GPU
DEVICE = "cuda"


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def rel_rms(a, b) -> float:
    a, b = a.detach().double(), b.detach().double()
    den = b.pow(2).mean().sqrt().item()
    num = (a - b).pow(2).mean().sqrt().item()
    return num / den if den > 0 else num


def cuda_time_ms(fn, warmup: int = 2, reps: int = 5) -> float:
    """Median wall time of fn() in ms, CUDA events, after warm-up."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(reps):
        if DEVICE != "cuda":
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
            continue
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e))
    times.sort()
    return times[len(times) // 2]


def first_call_s(fn) -> float:
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def peak_mib(fn) -> float:
    if DEVICE != "cuda":
        return float("nan")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def error_record(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}\n" + "".join(traceback.format_exc().splitlines(True)[-6:])


# hebbian


def hebbian_inputs(T: int, alpha: float, seed: int = 0):
    gen = torch.Generator(device=DEVICE).manual_seed(seed)
    dev = DEVICE
    q = F.elu(torch.randn(B, T, H, D, device=dev, generator=gen)) + 1
    k = F.elu(torch.randn(B, T, H, D, device=dev, generator=gen)) + 1
    v = torch.randn(B, T, H, D, device=dev, generator=gen)
    s = torch.sigmoid(torch.randn(B, T, H, device=dev, generator=gen) + 2)
    g = math.log(alpha) + torch.log(LAMBDA_MIN + (1 - LAMBDA_MIN) * s)
    h0 = torch.randn(B, H, D, D, device=dev, generator=gen)
    do = torch.randn(B, T, H, D, device=dev, generator=gen)
    dht = torch.randn(B, H, D, D, device=dev, generator=gen)
    return [x.bfloat16() for x in (q, k, v)] + [g, h0, do.bfloat16(), dht]


def hebbian_run(fn, q, k, v, g, h0, do, dht, dtype):
    """fwd + bwd with fresh leaves; returns o, final state and grads (fp32 copies)."""
    leaves = [x.detach().to(dtype if i < 3 else torch.float32).requires_grad_()
              for i, x in enumerate((q, k, v, g, h0))]
    o, s = fn(*leaves[:4], scale=D ** -0.5, initial_state=leaves[4], output_final_state=True)
    torch.autograd.backward([o, s], [do.to(o.dtype), dht])
    return [o.float(), s] + [x.grad.float() for x in leaves]


def with_kernel(name, fn):
    """fn with BYTELM_HEBBIAN_KERNEL=name while it runs (the custom op reads it per call, the
    backward's too, so fn must include the backward); name None leaves the environment alone."""
    def run(*args, **kwargs):
        old = os.environ.get("BYTELM_HEBBIAN_KERNEL")
        if name is not None:
            os.environ["BYTELM_HEBBIAN_KERNEL"] = name
        try:
            return fn(*args, **kwargs)
        finally:
            if old is None:
                os.environ.pop("BYTELM_HEBBIAN_KERNEL", None)
            else:
                os.environ["BYTELM_HEBBIAN_KERNEL"] = old
    return run


# (name, function, fla kernel): triton = the custom op over fla's chunk_gla (the default),
# triton_sgla = the custom op over fla's chunk_simple_gla
HEBBIAN_IMPLS = (("triton", triton_hebbian, "gla"), ("triton_sgla", triton_hebbian, "simple_gla"),
                 ("chunk", chunk_hebbian, None))


def hebbian_case(T: int, alpha: float) -> dict:
    rec = {"op": "hebbian", "T": T, "alpha": alpha, "B": B, "H": H, "K": D, "V": D}
    q, k, v, g, h0, do, dht = hebbian_inputs(T, alpha)
    names = ["o", "final_state", "dq", "dk", "dv", "dg", "dh0"]
    if T <= 1024:
        rec["reference"] = "naive fp32"
        ref = hebbian_run(naive_hebbian, q, k, v, g, h0, do, dht, torch.float32)
    else:
        rec["reference"] = "chunk fp32"
        ref = hebbian_run(chunk_hebbian, q, k, v, g, h0, do, dht, torch.float32)
    for impl, fn, kernel in HEBBIAN_IMPLS:
        try:
            run = lambda: with_kernel(kernel, hebbian_run)(  # noqa: E731
                fn, q, k, v, g, h0, do, dht, torch.bfloat16)
            if impl.startswith("triton"):
                rec[f"{impl}_first_call_s"] = first_call_s(run)
            out = run()
            rec[f"{impl}_err"] = {n: rel_rms(a, b) for n, a, b in zip(names, out, ref)}
            rec[f"{impl}_finite"] = all(bool(torch.isfinite(a).all()) for a in out)
            del out
            rec[f"{impl}_fwd_bwd_ms"] = cuda_time_ms(run)
            rec[f"{impl}_peak_mib"] = peak_mib(run)
        except Exception as exc:  # noqa: BLE001 - record and go on
            rec[f"{impl}_error"] = error_record(exc)
    del ref
    rec.update(sdpa_timing(T))
    return rec


def sdpa_timing(T: int) -> dict:
    """Causal flash attention (SDPA) fwd+bwd at B, H, T, D in bf16, for scale."""
    try:
        q, k, v = (torch.randn(B, H, T, D, device=DEVICE, dtype=torch.bfloat16,
                               requires_grad=True) for _ in range(3))
        do = torch.randn(B, H, T, D, device=DEVICE, dtype=torch.bfloat16)

        def run():
            from torch.nn.attention import SDPBackend, sdpa_kernel
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            o.backward(do)
        return {"sdpa_flash_causal_fwd_bwd_ms": cuda_time_ms(run)}
    except Exception as exc:  # noqa: BLE001
        return {"sdpa_error": error_record(exc)}


# sliding-window attention


def swa_run(fn, q, k, v, do, window, dtype):
    leaves = [x.detach().to(dtype).requires_grad_() for x in (q, k, v)]
    o = fn(*leaves, window)
    o.backward(do.to(o.dtype))
    return [o.float()] + [x.grad.float() for x in leaves]


def swa_case(T: int, window: int) -> dict:
    rec = {"op": "swa", "T": T, "window": window, "B": B, "H": H, "D": D}
    gen = torch.Generator(device=DEVICE).manual_seed(0)
    q, k, v, do = (torch.randn(B, H, T, D, device=DEVICE, generator=gen).bfloat16()
                   for _ in range(4))
    names = ["o", "dq", "dk", "dv"]
    if T <= 4096:
        rec["reference"] = "naive fp32"
        ref = swa_run(naive_sliding_window_attention, q, k, v, do, window, torch.float32)
    else:
        rec["reference"] = "blocked fp32"
        ref = swa_run(blocked_sliding_window_attention, q, k, v, do, window, torch.float32)
    for impl, fn in (("flex", flex_sliding_window_attention),
                     ("blocked", blocked_sliding_window_attention)):
        try:
            run = lambda: swa_run(fn, q, k, v, do, window, torch.bfloat16)  # noqa: E731
            if impl == "flex":
                rec["flex_first_call_s"] = first_call_s(run)
            out = run()
            rec[f"{impl}_err"] = {n: rel_rms(a, b) for n, a, b in zip(names, out, ref)}
            del out
            rec[f"{impl}_fwd_bwd_ms"] = cuda_time_ms(run)
            rec[f"{impl}_peak_mib"] = peak_mib(run)
        except Exception as exc:  # noqa: BLE001
            rec[f"{impl}_error"] = error_record(exc)
    del ref
    rec.update(sdpa_timing(T))
    return rec


def environment() -> dict:
    env = {"device": torch.cuda.get_device_name() if DEVICE == "cuda" else DEVICE,
           "torch": torch.__version__}
    try:
        import triton
        env["triton"] = triton.__version__
    except Exception as exc:  # noqa: BLE001
        env["triton"] = f"unavailable: {exc}"
    try:
        import fla
        env["fla"] = getattr(fla, "__version__", "?")
    except Exception as exc:  # noqa: BLE001
        env["fla"] = f"unavailable: {exc}"
    env["hebbian_auto_impl"] = select_impl("auto", DEVICE)
    env["swa_auto_impl"] = swa_select_impl("auto", DEVICE)
    return env


def fmt(x, spec=".1f"):
    return format(x, spec) if isinstance(x, (int, float)) else "-"


def print_table(results: dict) -> None:
    print(json.dumps(results["env"]))
    print(f"{'case':<28}{'impl':<12}{'ms fwd+bwd':>11}{'MiB':>9}{'first s':>9}{'max err':>10}  note")
    for rec in results["cases"]:
        if rec["op"] == "hebbian":
            case = f"hebbian T={rec['T']} a={rec['alpha']}"
            impls = tuple(name for name, _, _ in HEBBIAN_IMPLS)
        else:
            case = f"swa T={rec['T']} W={rec['window']}"
            impls = ("flex", "blocked")
        if "error" in rec:
            print(f"{case:<28}{'':<12}ERROR {rec['error'].splitlines()[0]}")
            continue
        for impl in impls:
            err = rec.get(f"{impl}_err")
            worst = max(err.values()) if err else None
            note = rec.get(f"{impl}_error", "").splitlines()[0] if f"{impl}_error" in rec else ""
            print(f"{case:<28}{impl:<12}{fmt(rec.get(impl + '_fwd_bwd_ms'), '.2f'):>11}"
                  f"{fmt(rec.get(impl + '_peak_mib'), '.0f'):>9}"
                  f"{fmt(rec.get(impl + '_first_call_s'), '.1f'):>9}{fmt(worst, '.1e'):>10}  {note}")
        print(f"{case:<28}{'sdpa':<12}{fmt(rec.get('sdpa_flash_causal_fwd_bwd_ms'), '.2f'):>11}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--budget-s", type=float, default=320.0,
                    help="skip cases that start after this many seconds (whole run < 6 min)")
    ap.add_argument("--smoke", action="store_true", help="tiny shapes on CPU (checks the script)")
    ap.add_argument("--ops", default="hebbian,swa", help="which ops to check (comma list)")
    ap.add_argument("--heads", type=int, default=None, help="H (default 8)")
    ap.add_argument("--head-dim", type=int, default=None, help="K = V (default 64)")
    args = ap.parse_args()
    global DEVICE, B, H, D
    ops = set(args.ops.split(","))
    if not ops <= {"hebbian", "swa"}:
        sys.exit(f"--ops {args.ops!r}: expected a comma list of hebbian, swa")
    H, D = args.heads or H, args.head_dim or D
    if args.smoke:
        DEVICE, B, H = "cpu", 1, 2
        hebbian_Ts, swa_Ts = (64, 130), (64, 200)
    else:
        if not torch.cuda.is_available():
            sys.exit("gpu_ops_check.py needs a CUDA device (or --smoke)")
        hebbian_Ts, swa_Ts = (1024, 4096, 16384), (1024, 4096, 16384)
    t_start = time.perf_counter()
    results = {"env": {}, "cases": []}
    try:
        results["env"] = environment()
    except Exception as exc:  # noqa: BLE001
        results["env"] = {"error": error_record(exc)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # interleaved, so a slow first call (autotune, compile) cannot starve a whole op
    cases = []
    for T_heb, T_swa in zip(hebbian_Ts, swa_Ts):
        cases += [("hebbian", T_heb, 0.1), ("swa", T_swa, 128)]
    cases += [("hebbian", T, 0.99) for T in hebbian_Ts]
    cases = [c for c in cases if c[0] in ops]
    for op, T, p in cases:
        if time.perf_counter() - t_start > args.budget_s:
            results["cases"].append({"op": op, "T": T, ("alpha" if op == "hebbian" else "window"): p,
                                     "error": "skipped: time budget"})
            continue
        t0 = time.perf_counter()
        try:
            rec = hebbian_case(T, p) if op == "hebbian" else swa_case(T, p)
        except Exception as exc:  # noqa: BLE001
            rec = {"op": op, "T": T, ("alpha" if op == "hebbian" else "window"): p,
                   "error": error_record(exc)}
        rec["case_s"] = time.perf_counter() - t0
        results["cases"].append(rec)
        if DEVICE == "cuda":
            torch.cuda.empty_cache()
        # write as we go: a killed run still leaves what it measured
        out.write_text(json.dumps(results, indent=2))
    results["total_s"] = time.perf_counter() - t_start
    out.write_text(json.dumps(results, indent=2))
    print_table(results)


if __name__ == "__main__":
    main()
