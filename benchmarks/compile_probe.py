"""Which part of a model fails under torch.compile, and what compiling the rest gains.

    python benchmarks/compile_probe.py --preset bsfin-35m --out OUT/compile_probe.json

Tries, each in a fresh model with the same weights: eager; the whole model compiled (the
training loop's default); and "regions": every submodule listed by --regions compiled on its
own while the rest (e.g. the patcher's boundary search) stays eager. For each: status (the
error's last traceback lines on failure), first-step time (compile included) and the median
of the following forward+backward steps under bf16 autocast. Writes the JSON after each try.
"""
import argparse
import json
import time
import traceback
from pathlib import Path

import torch


def step_times(model, x, n: int) -> tuple[float, float]:
    """(first step seconds, median of the next n steps) of forward+backward under autocast."""
    times = []
    for _ in range(n + 1):
        t0 = time.perf_counter()
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.device.type == "cuda"):
            out = model(x[:, :-1])
            loss = torch.nn.functional.cross_entropy(out.logits.flatten(0, 1), x[:, 1:].flatten())
        loss.backward()
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    rest = sorted(times[1:])
    return times[0], rest[len(rest) // 2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="bsfin-35m")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--regions", default="encoder,layers,decoder",
                    help="comma-separated submodules (ModuleList items compiled one by one)")
    ap.add_argument("--tries", default="eager,whole,regions")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    from bytelm.registry import create_model, preset_config
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = preset_config(args.preset)
    torch.manual_seed(0)
    base = create_model(cfg).to(dev)
    state = {k: v.clone() for k, v in base.state_dict().items()}
    ctx = cfg.context
    x = torch.randint(0, 256, (args.batch, ctx + 1), device=dev)
    result = {"preset": args.preset, "device": dev, "torch": torch.__version__,
              "batch": args.batch, "seq_len": ctx, "tries": {}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in args.tries.split(","):
        torch._dynamo.reset()
        model = create_model(cfg).to(dev)
        model.load_state_dict(state)
        model.train()
        try:
            if name == "whole":  # what the training loop does
                run = torch.compile(model)
            elif name == "regions":
                for attr in args.regions.split(","):
                    mod = getattr(model, attr)
                    if isinstance(mod, torch.nn.ModuleList):
                        for i in range(len(mod)):
                            mod[i] = torch.compile(mod[i])
                    else:
                        setattr(model, attr, torch.compile(mod))
                run = model
            else:
                run = model
            first, med = step_times(run, x, args.steps)
            rec = {"status": "ok", "first_step_s": first, "median_step_s": med,
                   "bytes_per_s": args.batch * ctx / med}
        except Exception as e:  # noqa: BLE001 - the point is to record any failure
            rec = {"status": f"error: {type(e).__name__}",
                   "traceback_tail": traceback.format_exc().splitlines()[-60:]}
        result["tries"][name] = rec
        print(name, {k: v for k, v in rec.items() if k != "traceback_tail"}, flush=True)
        out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
