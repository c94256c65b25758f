"""EnhancedSGD (Q-learning LR/momentum controller) vs AdamW vs plain SGD + momentum, measured.

Same model, data, steps, batch, seed, warmup + cosine schedule and gradient clipping for every
optimizer; only the optimizer (and its peak LR) differs. Plain SGD is EnhancedSGD without its
controller (heavy-ball momentum + decoupled weight decay, equal to torch.optim.SGD when the decay
is 0), so the SGD vs EnhancedSGD difference is the controller alone. A second pair starts both
SGDs at a deliberately low LR (lr / 8): the case where a controller that can raise the LR should
help. A second seed of plain SGD gives a rough seed-to-seed spread.

The training loop is Trainer.train_step in miniature (forward, backward, pre-clip grad norm from
clip_grad_norm_, step, then ``optimizer.observe(loss, grad_norm)``), so it runs before the trainer
integration lands; ``bytelm train --optim.name=enhanced_sgd`` runs the same thing afterwards.

    python benchmarks/optimizers.py --threads 1          # CPU, transformer-tiny, ~5 min
    python benchmarks/optimizers.py --steps 5000 --q-every 50 --preset transformer-mini --device cuda

Writes benchmarks/results/optimizers/optimizers.json (curves, final test bpb, every controller decision)
and benchmarks/results/optimizers/optimizers.png, and prints a verdict.
"""
import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from bytelm.data import RandomWindowSampler, open_split, prepare  # noqa: E402
from bytelm.eval.bpb import evaluate_bpb  # noqa: E402
from bytelm.nn.loss import byte_cross_entropy  # noqa: E402
from bytelm.optim import EnhancedSGD, QController  # noqa: E402
from bytelm.registry import create_model, preset_config  # noqa: E402
from bytelm.train.schedule import lr_factor  # noqa: E402

DATA = Path("/work/shared/data/tr/text")


def make_optimizer(name: str, model, lr: float, args):
    groups = model.param_groups(args.weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999))
    ctrl = None
    if name.startswith("enhanced_sgd"):
        ctrl = QController(every=args.q_every, seed=args.seed)
    # the controller may move the LR within [lr / 10, lr * 10] of its starting peak
    return EnhancedSGD(groups, lr=lr, momentum=0.9, weight_decay=args.weight_decay,
                       lr_min=lr / 10, lr_max=lr * 10, controller=ctrl)


def train_one(name: str, lr: float, seed: int, args, train, val, test, device) -> dict:
    cfg = preset_config(args.preset)
    seq = args.seq_len or cfg.context
    torch.manual_seed(seed)
    model = create_model(cfg).to(device)
    opt = make_optimizer(name, model, lr, args)
    sampler = RandomWindowSampler(train, seq, args.batch_size, seed=seed)
    curve, train_losses = [], []
    t0 = time.perf_counter()
    model.train()
    for step in range(args.steps):
        sched = lr * lr_factor(step, args.steps, args.warmup, "cosine", 0.1)
        for g in opt.param_groups:
            g["lr"] = sched
        batch = sampler.next_batch().to(device)
        out = model(batch[:, :-1])
        loss = byte_cross_entropy(out.logits, batch[:, 1:])
        (loss + out.aux_loss).backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if hasattr(opt, "observe"):
            opt.observe(loss=loss.detach(), grad_norm=gnorm)
        train_losses.append(loss.detach())
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            model.eval()
            v = evaluate_bpb(model, val, seq_len=seq, batch_size=32,
                             max_bytes=args.eval_bytes or None)
            model.train()
            tl = torch.stack(train_losses[-args.eval_every:]).mean().item() / math.log(2)
            lr_now = opt.last_lr if isinstance(opt, EnhancedSGD) else sched
            curve.append({"step": step + 1, "val_bpb": v["bpb"], "train_bpb": tl, "lr": lr_now})
            if not math.isfinite(tl):
                break
    train_s = time.perf_counter() - t0
    model.eval()
    final = evaluate_bpb(model, test, seq_len=seq, batch_size=32)
    res = {"name": name, "lr": lr, "seed": seed, "curve": curve, "test_bpb": final["bpb"],
           "test_bytes": final["n_bytes"], "final_val_bpb": curve[-1]["val_bpb"], "train_s": train_s}
    if isinstance(opt, EnhancedSGD) and opt.controller is not None:
        res["decisions"] = [{k: v for k, v in d.items()} for d in opt.controller.decisions()]
        acts = [(d["lr_factor"], d["horizon_factor"]) for d in res["decisions"]]
        res["keep_fraction"] = sum(a == (1.0, 1.0) for a in acts) / max(1, len(acts))
        res["final_lr_scale"] = opt.controller.lr_scale
        res["final_momentum"] = opt.controller.momentum
    print(f"  {name:<22} lr {lr:<8.3g} seed {seed}: test {final['bpb']:.4f} bpb "
          f"(val {curve[-1]['val_bpb']:.4f}) in {train_s:.0f}s", flush=True)
    return res


def plot(results: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    for r in results:
        xs = [c["step"] for c in r["curve"]]
        a.plot(xs, [c["val_bpb"] for c in r["curve"]], label=f"{r['label']} ({r['test_bpb']:.3f})")
        if "decisions" in r:
            b.plot([d["step"] for d in r["decisions"]], [d["lr"] for d in r["decisions"]],
                   marker=".", label=f"{r['label']}: controller peak lr")
            b.plot(xs, [c["lr"] for c in r["curve"]], ls="--", label=f"{r['label']}: lr used")
    a.set_xlabel("step")
    a.set_ylabel("val bpb")
    a.set_title("validation bpb (test bpb in legend)")
    a.legend(fontsize=8)
    b.set_yscale("log")
    b.set_xlabel("step")
    b.set_ylabel("learning rate")
    b.set_title("EnhancedSGD controller")
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def verdict(by: dict) -> list[str]:
    lines = []
    spread = abs(by["sgd"]["test_bpb"] - by["sgd_seed2"]["test_bpb"]) if "sgd_seed2" in by else 0.0
    noise = max(spread, 0.01)
    best = min(by.values(), key=lambda r: r["test_bpb"])
    lines.append(f"best: {best['label']} at {best['test_bpb']:.4f} test bpb; seed-to-seed spread "
                 f"of plain SGD {spread:.4f} bpb (differences below {noise:.3f} are treated as noise)")
    for ctrl, base in (("enhanced_sgd", "sgd"), ("enhanced_sgd_low", "sgd_low")):
        if ctrl in by and base in by:
            d = by[ctrl]["test_bpb"] - by[base]["test_bpb"]
            what = ("better than" if d < -noise else "worse than" if d > noise
                    else "indistinguishable from")
            lines.append(f"{by[ctrl]['label']} is {what} {by[base]['label']} ({d:+.4f} bpb), final "
                         f"lr scale {by[ctrl]['final_lr_scale']:.3g}, momentum "
                         f"{by[ctrl]['final_momentum']:.3f}, {len(by[ctrl]['decisions'])} decisions, "
                         f"{by[ctrl]['keep_fraction']:.0%} 'keep'")
    if "adamw" in by and "enhanced_sgd" in by:
        d = by["enhanced_sgd"]["test_bpb"] - by["adamw"]["test_bpb"]
        lines.append(f"EnhancedSGD vs AdamW: {d:+.4f} bpb "
                     + ("(AdamW wins)" if d > noise else "(EnhancedSGD wins)" if d < -noise
                        else "(tie)"))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="prepared corpus (default: prepare --source)")
    ap.add_argument("--source", default=str(DATA), help="text folder/file to prepare")
    ap.add_argument("--work", default="/tmp/bytelm_bench_optim", help="scratch folder")
    ap.add_argument("--preset", default="transformer-tiny")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--grad-clip", type=float, default=0.5)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--adamw-lr", type=float, default=1e-2,
                    help="best of 1e-3/3e-3/1e-2 in a 300-step sweep")
    ap.add_argument("--sgd-lr", type=float, default=0.3,
                    help="peak LR of SGD and EnhancedSGD (best of 0.1/0.3/1 in a 300-step sweep)")
    ap.add_argument("--low-factor", type=float, default=8.0,
                    help="the low-LR pair starts at sgd-lr / low-factor (0: skip the pair)")
    ap.add_argument("--q-every", type=int, default=25, help="controller window K")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--eval-bytes", type=int, default=0, help="val bytes per eval (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-seed2", action="store_true", help="skip the second SGD seed")
    ap.add_argument("--only", default="", help="comma-separated run names (for sweeps)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(HERE / "results" / "optimizers" / "optimizers.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = Path(args.data) if args.data else Path(args.work) / "data"
    if not (data / "meta.json").is_file():
        prepare([args.source], data)
    train, val, test = (open_split(data, s, min_len=2) for s in ("train", "val", "test"))
    runs = [("adamw", args.adamw_lr, args.seed, "AdamW"),
            ("sgd", args.sgd_lr, args.seed, "SGD+momentum"),
            ("enhanced_sgd", args.sgd_lr, args.seed, "EnhancedSGD")]
    if args.low_factor:
        low = args.sgd_lr / args.low_factor
        runs += [("sgd_low", low, args.seed, f"SGD+momentum lr/{args.low_factor:g}"),
                 ("enhanced_sgd_low", low, args.seed, f"EnhancedSGD lr/{args.low_factor:g}")]
    if not args.no_seed2:
        runs.append(("sgd_seed2", args.sgd_lr, args.seed + 1, "SGD+momentum seed 2"))
    if args.only:
        keep = set(args.only.split(","))
        runs = [r for r in runs if r[0] in keep]
    print(f"{args.preset}, {args.steps} steps x {args.batch_size} windows, data {data}", flush=True)
    t0 = time.perf_counter()
    results = []
    for key, lr, seed, label in runs:
        r = train_one(key.replace("_seed2", ""), lr, seed, args, train, val, test, device)
        r["key"], r["label"] = key, label
        results.append(r)
    by = {r["key"]: r for r in results}
    lines = verdict(by) if {"sgd", "enhanced_sgd"} <= set(by) else []
    print("\nverdict:")
    for ln in lines:
        print("  " + ln)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = "python benchmarks/optimizers.py " + " ".join(sys.argv[1:])
    out.write_text(json.dumps({
        "command": cmd.strip(), "args": vars(args), "data": str(data),
        "device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "machine": platform.machine(), "cpus": os.cpu_count(),
        "wall_s": time.perf_counter() - t0, "verdict": lines, "runs": results}, indent=1))
    plot(results, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
