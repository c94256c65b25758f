"""``bytelm bench {train,generate,mixer,speedrun}``: throughput, generation speed, mixer cost,
and time to a target validation bpb (speedrun, ``bytelm.bench.speedrun``: real training runs).

Each mode prints a table and, with ``--out FILE``, writes JSON: {"mode", "command",
"settings", "env", "ceilings", "rows", "complete"}; the file is rewritten after every row, so a
run stopped early leaves its finished rows ("complete": false). Defaults depend on the device:
GPU defaults are the issue #8 sizes; CPU defaults are tiny, so every mode finishes in seconds
(and runs in CI).
"""
import math

from bytelm.errors import UserError

# (GPU default, CPU default) of every option left unset on the command line
_DEFAULTS = {
    "train": {"preset": (["agiformer-31m", "transformer-30m"],
                         ["agiformer-tiny", "transformer-tiny"]),
              "batch": (64, 4), "steps": (20, 3), "warmup": (5, 1)},
    "generate": {"contexts": ([1024, 16384], [64, 512]), "new_bytes": (256, 32),
                 "batch": ([1, 64], [1, 4]), "prefill_reps": (3, 1), "decode_reps": (4, 2)},
    "mixer": {"T": ([1024, 4096, 16384, 65536], [256, 1024]), "B": (4, 2), "H": (8, 4),
              "D": (64, 32), "warmup": (5, 1), "reps": (20, 3), "naive_max_t": (1024, 256),
              "max_case_s": (120.0, 10.0)},
}


def _gen_presets(on_gpu: bool) -> list[str]:
    """Default presets of bench generate: one per registered family, its ~30M one on a GPU
    (a name ending in -3Xm) and its -tiny one on CPU."""
    import re

    from bytelm.registry import list_presets
    pattern = r"-3\dm$" if on_gpu else r"-tiny$"
    return [p for p in list_presets() if re.search(pattern, p)]


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="time training steps, generation, or one sequence mixer",
                       description="Benchmarks on random bytes (speedrun: on a corpus); prints a "
                                   "table, --out writes JSON.")
    modes = p.add_subparsers(dest="bench_mode", required=True,
                             metavar="{train,generate,mixer,speedrun}")

    t = modes.add_parser("train", help="optimizer-step throughput and MFU of presets")
    t.add_argument("--preset", nargs="+", default=None,
                   help="presets (default GPU: agiformer-31m transformer-30m; CPU: *-tiny)")
    t.add_argument("--batch", type=int, default=None, help="sequences per step (GPU 64, CPU 4)")
    t.add_argument("--bytes-per-step", type=int, default=None,
                   help="bytes per step at every length: batch = this // seq-len (overrides "
                        "--batch), so lengths are compared at equal work")
    t.add_argument("--context", type=int, default=None,
                   help="build the presets with this context (to time lengths beyond their own)")
    t.add_argument("--seq-len", type=int, nargs="+", default=None,
                   help="sequence lengths (default: each preset's context)")
    t.add_argument("--compile", nargs="?", const="on", default="off", choices=["off", "on", "both"],
                   help="torch.compile the model (bare --compile = on; both = eager and compiled)")
    t.add_argument("--compile-mode", default="default",
                   choices=["default", "reduce-overhead", "max-autotune",
                            "max-autotune-no-cudagraphs"],
                   help="torch.compile mode of the compiled rows (reduce-overhead: CUDA graphs)")
    t.add_argument("--compile-scope", default="model", choices=["model", "blocks"],
                   help="compile the whole model as one graph, or each repeated block in place "
                        "(regional compilation: much shorter compile)")
    t.add_argument("--steps", type=int, default=None, help="timed steps (GPU 20, CPU 3)")
    t.add_argument("--warmup", type=int, default=None,
                   help="untimed steps after the first (GPU 5, CPU 1)")
    t.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                   help="auto: bf16 autocast on CUDA, fp32 on CPU")

    g = modes.add_parser("generate", help="time to first byte and greedy decode rate")
    g.add_argument("--preset", nargs="+", default=None,
                   help="presets (default: one per family, GPU: its ~30M preset, *-3?m; "
                        "CPU: *-tiny)")
    g.add_argument("--ckpt", nargs="+", default=None, help="checkpoint or run folders")
    g.add_argument("--contexts", type=int, nargs="+", default=None,
                   help="prompt lengths in bytes (GPU 1024 16384, CPU 64 512)")
    g.add_argument("--context", type=int, default=None,
                   help="build the presets with this context (a KV cache that holds longer "
                        "prompts); checkpoints keep theirs")
    g.add_argument("--new-bytes", type=int, default=None,
                   help="decoded bytes timed (GPU 256, CPU 32)")
    g.add_argument("--batch", type=int, nargs="+", default=None,
                   help="batch sizes (GPU 1 64, CPU 1 4)")
    g.add_argument("--prefill-reps", type=int, default=None,
                   help="timed prefills after the first (GPU 3, CPU 1)")
    g.add_argument("--decode-reps", type=int, default=None,
                   help="segments the new bytes are timed in; the median one is reported "
                        "(GPU 4, CPU 2)")
    g.add_argument("--decode-warmup", type=int, default=8, help="untimed decode steps first")
    g.add_argument("--decode", default="auto",
                   choices=["auto", "eager", "static", "compiled", "both"],
                   help="auto (default): the fastest exact decoder of each family (compiled "
                        "fixed-shape decoding, CUDA graphs, on a GPU; eager on CPU); eager: the "
                        "model's own step; static: the fixed-shape decoder uncompiled; "
                        "compiled: it under torch.compile (warm-up raised to its graphs, timed "
                        "apart); both: an eager and a compiled row")
    g.add_argument("--greedy-blocks", default="on", choices=["on", "off", "both"],
                   help="on (default): a decoder with greedy blocks (the Transformer's) is timed "
                        "in them, as generation runs at temperature 0; off: one byte per call; "
                        "both: a row each")
    g.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                   help="auto: bf16 autocast on CUDA, fp32 on CPU")

    m = modes.add_parser("mixer", help="forward + backward time of one sequence-mixing op")
    m.add_argument("--T", type=int, nargs="+", default=None,
                   help="sequence lengths (GPU 1024 4096 16384 65536, CPU 256 1024)")
    m.add_argument("--B", type=int, default=None, help="batch (GPU 4, CPU 2)")
    m.add_argument("--H", type=int, default=None, help="heads (GPU 8, CPU 4)")
    m.add_argument("--D", type=int, default=None, help="head width (GPU 64, CPU 32)")
    m.add_argument("--ops", nargs="+", default=["sdpa", "swa", "linear", "hebbian"],
                   choices=["sdpa", "swa", "linear", "hebbian"])
    m.add_argument("--impls", nargs="+", default=["naive", "chunk", "triton"],
                   choices=["naive", "chunk", "triton"],
                   help="implementations of swa, linear and hebbian")
    m.add_argument("--window", type=int, default=512, help="keys per query of swa")
    m.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp32"],
                   help="auto: bf16 on CUDA, fp32 on CPU")
    m.add_argument("--warmup", type=int, default=None,
                   help="untimed calls after the first (GPU 5, CPU 1)")
    m.add_argument("--reps", type=int, default=None, help="timed calls (GPU 20, CPU 3)")
    m.add_argument("--naive-max-t", type=int, default=None,
                   help="largest T the naive references run at (GPU 1024, CPU 256)")
    m.add_argument("--max-case-s", type=float, default=None,
                   help="skip a case estimated to take longer, seconds (GPU 120, CPU 10)")

    s = modes.add_parser("speedrun", help="train presets until validation bpb reaches targets",
                         description="Trains every preset x optimizer with `bytelm train`'s "
                                     "trainer until validation bpb reaches the lowest target or "
                                     "the time cap; reports seconds (validations excluded), "
                                     "steps and bytes to each target.")
    s.add_argument("--data", required=True, help="prepared corpus (bytelm prepare)")
    s.add_argument("--runs", required=True, metavar="P1,P2",
                   help="presets, comma-separated (bytelm info lists them), each run with every "
                        "--optims; PRESET:OPTIM runs that preset with that optimizer only")
    s.add_argument("--optims", default="adamw", metavar="O1,O2",
                   help="optimizers (optim.name), comma-separated (default adamw)")
    s.add_argument("--targets", default="1.60,1.50", metavar="BPB,BPB",
                   help="validation bits/byte to reach (default 1.60,1.50); a run stops at the "
                        "lowest")
    s.add_argument("--cap-min", type=float, default=10.0,
                   help="time cap per run in minutes, the whole run (= train.time_budget_min: "
                        "the schedule spans it); default 10")
    s.add_argument("--eval-every", type=int, default=250, help="steps between validations")
    s.add_argument("--eval-bytes", type=int, default=1_000_000,
                   help="validate on the first this many bytes of the val split (every run the "
                        "same); 0: all of it")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="set_",
                   help="a dotted config override for every run (--set train.batch_size=64); "
                        "repeatable")
    s.add_argument("--work", default=None,
                   help="folder of the run directories (default runs/speedrun/<date-time>)")
    s.add_argument("--checkpoints", action="store_true",
                   help="write ckpt/last and ckpt/best at every validation, as bytelm train does "
                        "(default: metrics and summary only)")

    for sp in (t, g, m, s):
        sp.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
        sp.add_argument("--out", default=None, help="write the results as JSON to this file")
    p.set_defaults(func=run)


def _fill_defaults(args, mode: str, on_gpu: bool) -> None:
    for name, (gpu, cpu) in _DEFAULTS[mode].items():
        if getattr(args, name) is None:
            setattr(args, name, gpu if on_gpu else cpu)
    if mode == "generate" and not args.preset and not args.ckpt:
        args.preset = _gen_presets(on_gpu)


def _check(args, mode: str) -> None:
    """Every count must be positive (warm-ups may be 0): one-line UserError otherwise."""
    at_least = {"train": {"batch": 1, "seq_len": 1, "steps": 1, "warmup": 0, "bytes_per_step": 1,
                          "context": 1},
                "generate": {"contexts": 1, "context": 1, "new_bytes": 1, "batch": 1,
                             "prefill_reps": 1,
                             "decode_reps": 1, "decode_warmup": 0},
                "mixer": {"T": 1, "B": 1, "H": 1, "D": 1, "window": 1, "warmup": 0, "reps": 1,
                          "naive_max_t": 0}}[mode]
    for name, low in at_least.items():
        val = getattr(args, name)
        for v in (val if isinstance(val, list) else [val]) if val is not None else []:
            if v < low:
                flag = "--" + name.replace("_", "-")
                raise UserError(f"{flag} must be >= {low}, got {v}")
    if mode == "mixer" and not (math.isfinite(args.max_case_s) and args.max_case_s > 0):
        raise UserError(f"--max-case-s must be a positive number, got {args.max_case_s}")


def _command(args, mode: str) -> str:
    """The equivalent command line, every default spelled out."""
    parts = ["bytelm", "bench", mode]
    skip = {"func", "bench_mode", "command", "verbose", "overrides", "out"}
    for name, val in vars(args).items():
        if name in skip or val is None:
            continue
        vals = val if isinstance(val, list) else [val]
        parts += ["--" + name.replace("_", "-"), *map(str, vals)]
    return " ".join(parts)


def _settings(args) -> dict:
    skip = {"func", "bench_mode", "command", "verbose", "overrides"}
    return {k: v for k, v in vars(args).items() if k not in skip}


_TRAIN_COLS = [("preset", "preset", ""), ("batch", "batch", ""), ("seq", "seq_len", ""),
               ("compile", "compile", ""), ("step ms", "step_ms", ".2f"),
               ("bytes/s", "bytes_per_s", ",.0f"), ("MFU", "mfu", ".3f"),
               ("MFU(meas)", "mfu_vs_measured", ".3f"), ("peak GiB", "peak_memory_gib", ".2f"),
               ("rss GiB", "host_peak_rss_gib", ".2f"), ("1st step s", "first_step_s", ".2f"),
               ("status", "status", "")]
_GEN_COLS = [("model", "model", ""), ("decode", "decode", ""), ("block", "greedy_block", ""),
             ("batch", "batch", ""),
             ("context", "context", ""),
             ("TTFB ms", "ttfb_ms", ".1f"), ("ms/byte", "decode_ms_per_byte", ".3f"),
             ("bytes/s/stream", "bytes_per_s_per_stream", ",.0f"),
             ("bytes/s", "bytes_per_s", ",.0f"),
             ("peak GiB", "peak_memory_gib", ".2f"), ("rss GiB", "host_peak_rss_gib", ".2f"),
             ("status", "status", "")]
_MIX_COLS = [("T", "T", ""), ("op", "op", ""), ("impl", "impl", ""),
             ("1st ms", "first_call_ms", ".2f"), ("median ms", "median_ms", ".3f"),
             ("TFLOP/s", "tflops", ".3g"), ("peak GiB", "peak_memory_gib", ".2f"),
             ("status", "status", "")]


def run(args) -> int:
    from bytelm.bench import ceilings as ceil_mod
    from bytelm.bench.report import environment, format_table, precision_dtype, write_json
    from bytelm.train.distributed import pick_device
    mode = args.bench_mode
    if mode == "speedrun":
        return run_speedrun(args)
    device = pick_device(args.device)
    _fill_defaults(args, mode, device.type == "cuda")
    _check(args, mode)
    # bad input fails before any timing
    if mode == "train":
        from bytelm.bench.train import check_seq_lens
        check_seq_lens(args.preset, args.seq_len, args.context)
    models = _generation_models(args, device) if mode == "generate" else None
    dtype = precision_dtype(args.dtype if mode == "mixer" else args.precision, device)
    result = {"mode": mode, "command": _command(args, mode), "settings": _settings(args),
              "env": environment(device), "ceilings": ceil_mod.measure(device), "rows": [],
              "complete": False}
    ceilings = result["ceilings"]
    print(f"bench {mode} on {result['env']['device_name']} ({device}); measured ceilings: "
          f"{ceilings['matmul_dtype']} matmul {ceilings['matmul_tflops_measured']:.1f} TFLOP/s, "
          f"copy {ceilings['copy_tb_per_s_measured'] * 1e3:.0f} GB/s", flush=True)

    def on_row(row: dict) -> None:
        # a long GPU run killed at its time limit still leaves every finished row on disk
        result["rows"].append(row)
        if args.out:
            write_json(result, args.out)

    if mode == "train":
        from bytelm.bench.train import bench_train
        modes = {"off": (False,), "on": (True,), "both": (False, True)}[args.compile]
        bench_train(args.preset, args.batch, args.seq_len, modes, args.steps, args.warmup, dtype,
                    device, ceilings, on_row, args.bytes_per_step, args.context,
                    args.compile_mode, args.compile_scope)
        cols = _TRAIN_COLS
    elif mode == "generate":
        from bytelm.bench.generate import bench_generate
        decodes = ("eager", "compiled") if args.decode == "both" else (args.decode,)
        blocks = {"on": (True,), "off": (False,), "both": (True, False)}[args.greedy_blocks]
        bench_generate(models, args.contexts, args.new_bytes, args.batch, dtype, device,
                       args.prefill_reps, args.decode_reps, args.decode_warmup, on_row, decodes,
                       blocks)
        cols = _GEN_COLS
    else:
        from bytelm.bench.mixer import bench_mixer
        bench_mixer(args.T, args.B, args.H, args.D, args.ops, args.impls, args.window, dtype,
                    device, args.warmup, args.reps, args.naive_max_t, args.max_case_s, ceilings,
                    on_row)
        cols = _MIX_COLS
    result["complete"] = True
    print(format_table(result["rows"], cols))
    if args.out:
        print(f"wrote {write_json(result, args.out)}")
    return 0


def _generation_models(args, device):
    """(name, builder) per --preset and --ckpt; unknown presets and bad folders fail here."""
    from bytelm.registry import create_model, preset_config
    from bytelm.train.checkpoint import load_model, resolve_checkpoint
    models = []
    over = {"context": args.context} if args.context else {}
    for name in args.preset or []:
        preset_config(name, **over)
        models.append((name, lambda n=name: create_model(n, **over).to(device)))
    for path in args.ckpt or []:
        resolve_checkpoint(path)
        models.append((str(path), lambda p=path: load_model(p, device=device)))
    return models


def _set_overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, eq, val = item.partition("=")
        if not eq or "." not in key:
            raise UserError(f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. "
                            "train.batch_size=64")
        out[key.strip()] = val
    return out


def _speedrun_command(args) -> str:
    """The equivalent command line, every default spelled out."""
    import shlex
    parts = ["bytelm", "bench", "speedrun", "--data", args.data, "--runs", args.runs,
             "--optims", args.optims, "--targets", args.targets, "--cap-min", f"{args.cap_min:g}",
             "--eval-every", str(args.eval_every), "--eval-bytes", str(args.eval_bytes),
             "--device", args.device, "--work", args.work]
    for item in args.set_:
        parts += ["--set", item]
    if args.checkpoints:
        parts.append("--checkpoints")
    if args.out:
        parts += ["--out", args.out]
    return shlex.join(parts)


def _git_commit() -> str | None:
    """$GIT_COMMIT (device scripts set it), else HEAD of the checkout bytelm is imported from."""
    import os
    import subprocess
    from pathlib import Path
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.strip() else "")


def run_speedrun(args) -> int:
    """``bytelm bench speedrun``: every run checked first, then trained one after another; the
    JSON is rewritten after each, the markdown table printed at the end."""
    import sys
    import time
    from pathlib import Path

    from bytelm.bench import speedrun as sr
    from bytelm.bench.report import environment, write_json
    from bytelm.train.distributed import pick_device
    device = pick_device(args.device)
    targets = sr.parse_targets(args.targets)
    presets = sr.split_list(args.runs, "--runs")
    optims = sr.split_list(args.optims, "--optims")
    if not (math.isfinite(args.cap_min) and args.cap_min > 0):
        raise UserError(f"--cap-min must be a positive number of minutes, got {args.cap_min}")
    if args.eval_every < 1:
        raise UserError(f"--eval-every must be >= 1, got {args.eval_every}")
    if args.eval_bytes < 0:
        raise UserError(f"--eval-bytes must be >= 0, got {args.eval_bytes}")
    if args.out and Path(args.out).is_dir():
        raise UserError(f"--out is a folder, expected a file name: {args.out}")
    if args.work is None:
        args.work = str(Path("runs") / "speedrun" / time.strftime("%Y%m%d-%H%M%S"))
    runs = sr.run_configs(presets, optims, args.data, Path(args.work), args.cap_min,
                          args.eval_every, args.eval_bytes, args.device,
                          _set_overrides(args.set_))
    env = environment(device)
    result = {"mode": "speedrun", "command": _speedrun_command(args), "argv": sys.argv,
              "git_commit": _git_commit(), "date": env["time_utc"], "device": env["device_name"],
              "torch": env["torch"], "env": env,
              "settings": {"presets": presets, "optims": optims, "targets": targets,
                           "cap_min": args.cap_min, "eval_every": args.eval_every,
                           "eval_bytes": args.eval_bytes, "set": _set_overrides(args.set_),
                           "checkpoints": args.checkpoints, "work": args.work},
              "rows": [], "complete": False}
    print(f"bench speedrun on {env['device_name']} ({device}): {len(runs)} runs, targets "
          f"{', '.join(map(sr.target_key, targets))} bpb, cap {args.cap_min:g} min each",
          flush=True)

    def on_row(row: dict) -> None:
        result["rows"].append(row)
        result["table"] = sr.markdown_table(result["rows"], targets)
        if args.out:
            write_json(result, args.out)

    sr.speedrun(runs, targets, on_row, keep_checkpoints=args.checkpoints)
    result["complete"] = True
    result["table"] = sr.markdown_table(result["rows"], targets)
    print(result["table"])
    if args.out:
        print(f"wrote {write_json(result, args.out)}")
    return 0
