"""Where a single-byte decoding step's time goes (eager ``model.step``), for any family.

Written for BSFIN's GPU decode regression (57.8 ms per byte on the H100 after the one-step
prefill, against 9.0 before; generate/bench_generate_bsfin_prefill_h100.json): it prefills a random
prompt in one step like ``bytelm bench generate``, then

1. times every one of --bytes single-byte steps on the host clock, synchronised after each
   (so a step's own launches and host syncs are inside it), and records whether the step
   closed a patch (BSFIN: the patch count grew), so slow steps can be told apart;
2. runs --profile more steps under torch.profiler: GPU busy time per step, the top kernels,
   and the top host ops by self (exclusive) CPU time, which is where a host-bound step goes.

    python benchmarks/profile_decode.py --preset bsfin-35m --context 1024 --prompt 900 \
        --bytes 64 --profile 16 --out benchmarks/results/generate/profile_decode_bsfin_h100.json

``--decode compiled`` profiles AGIFORMER's compiled fixed-shape decoder instead (``static_decoder``;
CUDA graphs on CUDA), whose compilation falls in the first --warmup steps (untimed), e.g. for
the gap between 1K and 16K contexts:

    python benchmarks/profile_decode.py --preset agiformer-31m --context 16384 --prompt 16000 \
        --decode compiled --out benchmarks/results/generate/profile_decode_agiformer_16k_h100.json

Runs on CPU too (``--device cpu``); there the "kernels" are aten ops by self host time.
"""
import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bytelm.bench.generate import decode_fns  # noqa: E402
from bytelm.bench.report import environment, precision_dtype, write_json  # noqa: E402
from bytelm.bench.timing import as_device, synchronize  # noqa: E402
from bytelm.registry import create_model  # noqa: E402
from profile_train import (NAME_CHARS, _is_cuda_event, git_commit, kernel_events,  # noqa: E402
                           profile_steps, summarise)


def _patches(state) -> int | None:
    """Closed patches so far (BSFIN: summed over rows), None for families without patches."""
    rows = getattr(state, "rows", None)
    return sum(len(r["ends"]) for r in rows) if rows is not None else None


def host_ops(events, n_steps: int, top: int) -> list[dict]:
    """The top host (CPU) ops by self time per step: where a host-bound step spends it."""
    agg: dict[str, list[float]] = {}
    for e in events:
        if _is_cuda_event(e):
            continue
        agg.setdefault(e.name, []).append(e.self_cpu_time_total)
    ranked = sorted(agg.items(), key=lambda kv: -sum(kv[1]))[:top]
    return [{"name": n[:NAME_CHARS], "calls_per_step": len(v) / n_steps,
             "self_us_per_step": sum(v) / n_steps} for n, v in ranked]


def run(args) -> dict:
    device = as_device(None if args.device == "auto" else args.device)
    dtype = precision_dtype(args.precision, device)
    cuda = device.type == "cuda"
    torch.manual_seed(0)
    model = create_model(args.preset, **({"context": args.context} if args.context else {}))
    model = model.to(device).eval()
    need = args.prompt + (args.warmup or 0) + 64 + args.bytes + args.profile + 1
    # the cache in the autocast dtype, as `bytelm bench generate` keeps it (until 2026-12-07 this
    # script kept it in fp32, so its compiled rows also timed a conversion of the whole cache
    # per layer and step: generate/profile_decode_compiled_*_h100.json)
    kv = torch.bfloat16 if dtype == torch.bfloat16 else None
    begin, advance, min_warmup, _ = decode_fns(model, args.batch, device, args.decode, kv_dtype=kv,
                                               need=need)
    if args.warmup is None:  # every phase graph of the compiled decoder built before timing
        args.warmup = min_warmup
    cap = model.state_capacity(model.init_state(args.batch, device))
    need = args.prompt + args.warmup + args.bytes + args.profile + 1  # + the profiler's warm-up
    if cap is not None and need > cap:
        raise SystemExit(f"error: prompt {args.prompt} + {args.warmup} warm-up + {args.bytes} timed "
                         f"+ {args.profile + 1} "
                         f"profiled bytes = {need} exceed the {cap}-byte cache; lower --prompt")
    amp = (torch.autocast(device_type=device.type, dtype=torch.bfloat16)
           if dtype == torch.bfloat16 else torch.autocast(device_type=device.type, enabled=False))
    gen = torch.Generator(device="cpu").manual_seed(args.prompt)
    prompt = torch.randint(0, 256, (args.batch, args.prompt), generator=gen).to(device)
    held: dict = {}
    with torch.inference_mode(), amp:
        synchronize(device)
        t0 = time.perf_counter()
        logits, state = begin(prompt)
        synchronize(device)
        prefill_ms = (time.perf_counter() - t0) * 1e3
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        for _ in range(args.warmup):
            logits, state = advance(nxt, state)
            nxt = logits[:, -1].argmax(-1, keepdim=True)
        steps = []
        for _ in range(args.bytes):
            before = _patches(state)
            synchronize(device)
            t0 = time.perf_counter()
            logits, state = advance(nxt, state)
            nxt = logits[:, -1].argmax(-1, keepdim=True)
            synchronize(device)
            ms = (time.perf_counter() - t0) * 1e3
            after = _patches(state)
            steps.append({"ms": ms, "closed": None if after is None else after - before})
        held["state"], held["nxt"] = state, nxt

        def one():
            lg, held["state"] = advance(held["nxt"], held["state"])
            held["nxt"] = lg[:, -1].argmax(-1, keepdim=True)

        events, walls = profile_steps(one, args.profile, device, args.trace)
    kernels = kernel_events(events, cuda)
    prof_ms = statistics.median(walls)
    stats = summarise(kernels, args.profile, prof_ms, args.top)
    times = [s["ms"] for s in steps]
    closing = [s["ms"] for s in steps if s["closed"]]
    plain = [s["ms"] for s in steps if s["closed"] == 0]
    half = len(times) // 2
    env = environment(device)
    res = {
        "command": shlex.join(["python", "benchmarks/profile_decode.py",
                               *(sys.argv[1:] if args.argv is None else args.argv)]),
        "git_commit": git_commit(), "env": env, "device_name": env["device_name"],
        "preset": args.preset, "family": model.config.family, "batch": args.batch,
        "prompt_bytes": args.prompt, "decode": args.decode, "warmup_steps": args.warmup,
        "precision": str(dtype).removeprefix("torch."),
        "prefill_ms": prefill_ms,
        "step_ms_median": statistics.median(times),
        "step_ms_median_first_half": statistics.median(times[:half]) if half else None,
        "step_ms_median_second_half": statistics.median(times[half:]) if half else None,
        "step_ms_min": min(times), "step_ms_max": max(times),
        "step_ms_median_closing_patch": statistics.median(closing) if closing else None,
        "step_ms_median_no_patch": statistics.median(plain) if plain else None,
        "steps_closing_patch": len(closing), "steps": steps,
        "profiled_steps": args.profile, "profiled_wall_ms_per_step": prof_ms,
        "busy_ms_per_step": stats["busy_ms_per_step"],
        "idle_fraction": 1 - stats["busy_ms_per_step"] / prof_ms if cuda else None,
        "kernels_per_step": stats["kernels_per_step"],
        "top_kernels": stats["top_kernels"], "categories": stats["categories"],
        "top_host_ops": host_ops(events, args.profile, args.top),
    }
    patch_note = (f"; closing a patch {res['step_ms_median_closing_patch'] or 0:.2f}, not "
                  f"{res['step_ms_median_no_patch'] or 0:.2f}" if plain or closing else "")
    res["summary"] = (
        f"{args.preset} ({args.decode}) batch {args.batch} after {args.prompt} bytes on "
        f"{env['device_name']}: step median {res['step_ms_median']:.2f} ms (first half "
        f"{res['step_ms_median_first_half'] or 0:.2f}, second "
        f"{res['step_ms_median_second_half'] or 0:.2f}{patch_note}), prefill {prefill_ms:.1f} ms; "
        f"profiled {prof_ms:.2f} ms/step, {stats['kernels_per_step']:.0f} kernels, busy "
        f"{stats['busy_ms_per_step']:.2f} ms")
    return res


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="bsfin-35m")
    ap.add_argument("--context", type=int, default=None, help="build the preset with this context")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--prompt", type=int, default=900, help="prompt bytes, prefilled in one step")
    ap.add_argument("--bytes", type=int, default=64, help="single-byte steps timed one by one")
    ap.add_argument("--profile", type=int, default=16, help="steps then run under torch.profiler")
    ap.add_argument("--decode", default="eager", choices=["eager", "compiled"],
                    help="compiled: AGIFORMER's compiled fixed-shape decoder")
    ap.add_argument("--warmup", type=int, default=None,
                    help="untimed single-byte steps after the prefill (default: eager 0, "
                         "compiled 4 x the patch size, so every phase's graph is built)")
    ap.add_argument("--decode-attention", default="sdpa", choices=["sdpa", "matmul"],
                    help="how fixed-shape caches are read (StaticKVCache.attention)")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--trace", default=None)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    args.argv = argv
    from bytelm.nn.static_cache import StaticKVCache
    StaticKVCache.attention = args.decode_attention
    res = run(args)
    res["decode_attention"] = args.decode_attention
    write_json(res, args.out)
    print(res["summary"])
    for r in res["top_host_ops"][:12]:
        print(f"  host {r['self_us_per_step']:9.0f} us/step {r['calls_per_step']:6.1f}x  {r['name'][:80]}")
    for r in res["top_kernels"][:8]:
        print(f"  kern {r['total_us_per_step']:9.0f} us/step {r['calls_per_step']:6.1f}x  {r['name'][:80]}")
    return res


if __name__ == "__main__":
    main()
