"""Where a training step's time goes: torch.profiler over optimizer steps of a preset.

Explains a low MFU: how much of the step the GPU is idle (waiting on the host), how many
kernels a step launches and how long they are, and how kernel time splits into matmuls,
attention, Triton-fused, FLA-chunk and elementwise work.

    python benchmarks/profile_train.py --preset agiformer-31m --batch 64 --seq-len 1024 \
        --compile --steps 5 --warmup 3 --out benchmarks/results/train_speed/profile_train_agiformer_h100.json

The step is ``bytelm.bench.train.TrainStep`` (the one ``bytelm bench train`` times: autocast
bf16 on CUDA, torch.compile with --compile, fused AdamW, clip). After the first step and
--warmup more, --steps steps are timed unprofiled (CUDA events; wall_ms_per_step is their
median), then --steps more run under torch.profiler (one profiler warm-up step first).

On CUDA a "kernel" is a device event of the profiler (kernel, memcpy or memset; its duration
is the device's), busy time is their sum per step and gpu_idle_fraction = 1 - busy / wall.
On CPU (e.g. ``--preset agiformer-tiny --device cpu``) there are no kernels: every ``aten::``
op stands in, timed by its self (exclusive) host time, and every gpu_* field is null;
``kernel_source`` says which was counted. Also counted per step: kernel-launch API calls
(CUDA) and torch.compile'd graphs run (compiled_regions_per_step; above 1 means graph breaks,
eager Python between the graphs). Output: one JSON (--out) and a table on stdout; --trace
FILE.json.gz also writes the Chrome trace of the profiled steps.
"""
import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, schedule

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from bytelm.bench.memory import device_peak_gib, reset_peak  # noqa: E402
from bytelm.bench.report import environment, format_table, precision_dtype, write_json  # noqa: E402
from bytelm.bench.timing import as_device, synchronize, time_fn  # noqa: E402
from bytelm.bench.train import TrainStep, check_seq_lens  # noqa: E402
from bytelm.train.perf import mfu, peak_tflops  # noqa: E402

CATEGORIES = ("matmul/gemm", "flash/attention", "triton fused", "fla/chunk", "memcpy/memset",
              "elementwise/other")
_MATMUL = re.compile(r"gemm|gemv|matmul|cutlass|sm90|nvjet|xmma|splitk"
                     r"|(?<![a-z])(add|b|baddb)?mm(?![a-z])")
_ATTENTION = re.compile(r"flash|fmha|attention|flex")
_FLA = re.compile(r"chunk|fused_recurrent|gla")
SHORT_US = 10.0  # a kernel shorter than this is "short" (launch-overhead sized)
NAME_CHARS = 120


def category(name: str) -> str:
    """The kernel-time category of a kernel (or CPU op) name; see CATEGORIES.

    Inductor's pointwise/reduction kernels (triton_poi_/triton_per_/triton_red_...) are
    "triton fused" even when their name mentions a matmul or attention op they were fused
    next to; its template kernels (triton_tem_) go by what they compute.
    """
    n = name.lower()
    if n.startswith("triton_") and not n.startswith("triton_tem_"):
        return "triton fused"
    if _FLA.search(n):
        return "fla/chunk"
    if _ATTENTION.search(n):
        return "flash/attention"
    if _MATMUL.search(n):
        return "matmul/gemm"
    if n.startswith("triton"):
        return "triton fused"
    if n.startswith(("memcpy", "memset")):
        return "memcpy/memset"
    return "elementwise/other"


def git_commit() -> str:
    """env GIT_COMMIT, else this checkout's HEAD (+"-dirty" with uncommitted changes), else
    "unknown"."""
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True, timeout=10).stdout
        return head + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _is_cuda_event(e) -> bool:
    return getattr(e.device_type, "name", str(e.device_type)).upper().endswith("CUDA")


def _is_annotation(e) -> bool:
    # record_function ranges (ProfilerStep#, Optimizer.step#...) are mirrored on the GPU
    # timeline, spanning the kernels they enclose: not kernels themselves
    return bool(getattr(e, "is_user_annotation", False)) or e.name.startswith("ProfilerStep")


def kernel_events(events, cuda: bool) -> list[tuple[str, float]]:
    """(name, us) of each kernel: device events and their durations on CUDA; on CPU every
    aten:: op and its self (exclusive) host time, so nested ops are not counted twice."""
    if cuda:
        return [(e.name, e.time_range.elapsed_us()) for e in events
                if _is_cuda_event(e) and not _is_annotation(e)]
    return [(e.name, e.self_cpu_time_total) for e in events
            if not _is_cuda_event(e) and e.name.startswith("aten::")]


def compiled_regions(events) -> int:
    """How many torch.compile'd graphs ran (dynamo's "Torch-Compiled Region" ranges); more
    than one per step means graph breaks, with eager Python between the graphs."""
    return sum(1 for e in events if not _is_cuda_event(e)
               and e.name.startswith("Torch-Compiled Region"))


def launch_calls(events) -> tuple[int, float]:
    """(number, total host us) of CUDA kernel-launch API calls (cudaLaunchKernel & co.)."""
    calls = [e for e in events if not _is_cuda_event(e)
             and re.search(r"LaunchKernel|GraphLaunch", e.name)]
    return len(calls), sum(e.time_range.elapsed_us() for e in calls)


def summarise(kernels: list[tuple[str, float]], n_steps: int, wall_ms: float,
              top: int = 25) -> dict:
    """Per-step kernel statistics: busy time, counts, top kernels, time per category."""
    busy_us = sum(d for _, d in kernels) / n_steps
    by_name: dict[str, list[float]] = defaultdict(list)
    for name, d in kernels:
        by_name[name].append(d)
    ranked = sorted(by_name.items(), key=lambda kv: -sum(kv[1]))
    top_rows = [{"name": name[:NAME_CHARS], "category": category(name),
                 "calls_per_step": len(ds) / n_steps, "total_us_per_step": sum(ds) / n_steps,
                 "mean_us_per_call": sum(ds) / len(ds),
                 "share_of_busy": sum(ds) / n_steps / busy_us if busy_us else None}
                for name, ds in ranked[:top]]
    cats = {c: {"us_per_step": 0.0, "calls_per_step": 0.0, "largest": []} for c in CATEGORIES}
    for name, ds in ranked:
        c = cats[category(name)]
        c["us_per_step"] += sum(ds) / n_steps
        c["calls_per_step"] += len(ds) / n_steps
        if len(c["largest"]) < 5:  # the category's 5 largest names by time
            c["largest"].append({"name": name[:NAME_CHARS], "us_per_step": sum(ds) / n_steps,
                                 "calls_per_step": len(ds) / n_steps})
    for c in cats.values():
        c["share_of_busy"] = c["us_per_step"] / busy_us if busy_us else None
        c["share_of_wall"] = c["us_per_step"] / (wall_ms * 1e3)
    short = [d for _, d in kernels if d < SHORT_US]
    n = len(kernels)
    return {"busy_ms_per_step": busy_us / 1e3, "kernels_per_step": n / n_steps,
            "mean_kernel_us": busy_us * n_steps / n if n else None,
            "median_kernel_us": statistics.median(d for _, d in kernels) if n else None,
            "distinct_kernels": len(by_name),
            f"kernels_under_{SHORT_US:g}us_per_step": len(short) / n_steps,
            f"kernels_under_{SHORT_US:g}us_share_of_busy":
                sum(short) / n_steps / busy_us if busy_us else None,
            "categories": cats, "top_kernels": top_rows}


def profile_steps(step, n: int, device: torch.device, trace: str | None):
    """Runs 1 + n steps under torch.profiler (the first is the profiler's warm-up); returns
    (events of the n active steps, host ms of each, synchronised after each step)."""
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    walls = []
    sched = schedule(wait=0, warmup=1, active=n, repeat=1)
    with profile(activities=acts, schedule=sched) as prof:
        for i in range(1 + n):
            synchronize(device)
            t0 = time.perf_counter()
            step()
            synchronize(device)
            if i:
                walls.append((time.perf_counter() - t0) * 1e3)
            prof.step()
    if trace:
        Path(trace).parent.mkdir(parents=True, exist_ok=True)
        prof.export_chrome_trace(trace)
    return prof.events(), walls


def run(args) -> dict:
    device = as_device(None if args.device == "auto" else args.device)
    dtype = precision_dtype(args.precision, device)
    seq_len = check_seq_lens([args.preset], [args.seq_len] if args.seq_len else None,
                             args.context)[args.preset][0]
    cuda = device.type == "cuda"
    env = environment(device)
    reset_peak(device)
    step = TrainStep(args.preset, args.batch, seq_len, args.compile, dtype, device, args.context,
                     args.compile_mode)
    model = step.model
    t = time_fn(step, warmup=args.warmup, reps=args.steps, device=device)
    events, prof_walls = profile_steps(step, args.steps, device, args.trace)
    loss = float(step.loss)
    step.close()

    wall_ms = t["median_ms"]
    kernels = kernel_events(events, cuda)
    stats = summarise(kernels, args.steps, wall_ms, args.top)
    n_launch, launch_us = launch_calls(events) if cuda else (None, None)
    bytes_per_step = args.batch * seq_len
    fpb = model.flops_per_byte(seq_len)
    peak = peak_tflops(device)
    busy_ms = stats["busy_ms_per_step"]
    mm = stats["categories"]["matmul/gemm"]
    res = {
        "command": shlex.join(["python", "benchmarks/profile_train.py",
                               *(sys.argv[1:] if args.argv is None else args.argv)]),
        "git_commit": git_commit(), "env": env,
        "device": device.type, "device_name": env["device_name"],
        "preset": args.preset, "family": model.config.family, "n_params": model.n_params(),
        "batch": args.batch, "seq_len": seq_len, "context": model.config.context,
        "compile": args.compile, "compile_mode": args.compile_mode if args.compile else None,
        "precision": str(dtype).removeprefix("torch."),
        "warmup_steps": 1 + args.warmup, "timed_steps": args.steps, "profiled_steps": args.steps,
        "kernel_source": ("cuda device events (kernels, memcpy, memset); device durations"
                          if cuda else
                          "cpu: aten:: op events stand in for kernels; self (exclusive) host time"),
        "wall_ms_per_step": wall_ms, "wall_ms_per_step_times": t["times_ms"],
        "profiled_wall_ms_per_step": statistics.median(prof_walls),
        "first_step_s": t["first_call_ms"] / 1e3,
        "gpu_busy_ms_per_step": busy_ms if cuda else None,
        "gpu_idle_fraction": 1 - busy_ms / wall_ms if cuda else None,
        "busy_ms_per_step": busy_ms, "idle_fraction": 1 - busy_ms / wall_ms,
        **{k: v for k, v in stats.items() if k not in ("busy_ms_per_step", "categories",
                                                        "top_kernels")},
        "compiled_regions_per_step": compiled_regions(events) / args.steps,
        "launch_calls_per_step": n_launch / args.steps if cuda else None,
        "launch_api_us_per_step": launch_us / args.steps if cuda else None,
        "matmul_time_share": mm["share_of_busy"], "matmul_share_of_wall": mm["share_of_wall"],
        "bytes_per_step": bytes_per_step, "bytes_per_s": bytes_per_step / (wall_ms / 1e3),
        "flops_per_byte": fpb, "model_tflops": fpb * bytes_per_step / (wall_ms / 1e3) / 1e12,
        "peak_tflops": peak, "mfu": mfu(fpb, bytes_per_step / (wall_ms / 1e3), peak),
        "mfu_if_never_idle": mfu(fpb, bytes_per_step / (busy_ms / 1e3), peak) if busy_ms else None,
        "peak_memory_gib": device_peak_gib(device), "loss": loss,
        "categories": stats["categories"], "top_kernels": stats["top_kernels"],
        "trace": args.trace,
    }
    unit = "kernels" if cuda else "CPU aten ops"
    res["summary"] = (
        f"{args.preset} b{args.batch} T{seq_len} compile={args.compile} on {res['device_name']}: "
        f"{wall_ms:.1f} ms/step, {'GPU' if cuda else 'op'} busy {busy_ms:.1f} ms "
        f"({100 * (1 - res['idle_fraction']):.0f}%), idle {100 * res['idle_fraction']:.0f}%; "
        f"matmuls take {100 * mm['share_of_wall']:.0f}% of the step "
        f"({100 * (mm['share_of_busy'] or 0):.0f}% of busy time); "
        f"{res['kernels_per_step']:,.0f} {unit} per step averaging "
        f"{res['mean_kernel_us'] or 0:.1f} us"
        + (f"; {res['compiled_regions_per_step']:.0f} compiled graphs per step"
           if args.compile else "")
        + (f"; MFU {100 * res['mfu']:.1f}% (never idle: {100 * res['mfu_if_never_idle']:.1f}%)"
           if res["mfu"] is not None else ""))
    return res


def print_report(res: dict) -> None:
    unit = "kernel" if res["device"] == "cuda" else "cpu op"
    print(res["summary"])
    print(f"kernel source: {res['kernel_source']}")
    print(f"wall {res['wall_ms_per_step']:.2f} ms/step "
          f"(profiled {res['profiled_wall_ms_per_step']:.2f}), "
          f"busy {res['busy_ms_per_step']:.2f} ms, {res['kernels_per_step']:.0f} {unit}s/step, "
          f"{res[f'kernels_under_{SHORT_US:g}us_per_step']:.0f} under {SHORT_US:g} us, "
          f"{res['distinct_kernels']} distinct"
          + (f", {res['launch_calls_per_step']:.0f} launch calls/step "
             f"({res['launch_api_us_per_step'] / 1e3:.1f} ms host)"
             if res["launch_calls_per_step"] is not None else "")
          + (f", {res['compiled_regions_per_step']:.0f} compiled graphs/step"
             if res["compile"] else ""))
    cats = [{"category": c, "ms": v["us_per_step"] / 1e3, "calls": v["calls_per_step"],
             "busy": v["share_of_busy"], "wall": v["share_of_wall"]}
            for c, v in res["categories"].items()]
    print(format_table(cats, [("category", "category", ""), ("ms/step", "ms", ".2f"),
                              ("calls/step", "calls", ".0f"), ("of busy", "busy", ".3f"),
                              ("of wall", "wall", ".3f")]))
    rows = [dict(r, name=r["name"][:70]) for r in res["top_kernels"]]
    print(format_table(rows, [(unit, "name", ""), ("category", "category", ""),
                              ("calls/step", "calls_per_step", ".1f"),
                              ("us/step", "total_us_per_step", ".0f"),
                              ("us/call", "mean_us_per_call", ".1f"),
                              ("of busy", "share_of_busy", ".3f")]))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="agiformer-31m")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq-len", type=int, default=None, help="default: the preset's context")
    ap.add_argument("--context", type=int, default=None, help="build the preset with this context")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--compile-mode", default="default",
                    help="torch.compile mode (reduce-overhead: CUDA graphs)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps, then as many profiled")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps after the first")
    ap.add_argument("--precision", default="auto",
                    help="auto (bf16 on CUDA, fp32 on CPU) | bf16 | fp32")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--top", type=int, default=25, help="kernels listed by total time")
    ap.add_argument("--out", required=True)
    ap.add_argument("--trace", default=None, help="Chrome trace of the profiled steps (.json[.gz])")
    args = ap.parse_args(argv)
    args.argv = argv
    if args.steps < 1 or args.warmup < 0:
        ap.error("need --steps >= 1 and --warmup >= 0")
    res = run(args)
    write_json(res, args.out)
    print_report(res)
    return res


if __name__ == "__main__":
    main()
