"""``bytelm overfit``: can a fresh model memorise one fixed batch? A smoke test of model, loss
and optimizer (a model that cannot drive one batch's loss near zero has a bug), which also
counts non-finite losses and gradient norms, e.g. under --precision bf16.

Exit status: 0 when the loss fell below --target, 1 when it did not, 2 on bad input.
"""
import math

from bytelm.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("overfit", help="train a fresh model on one fixed batch until loss < target",
                       description="Extra options --model.KEY=VALUE change the preset.")
    p.add_argument("--preset", default="transformer-tiny", help="model preset")
    p.add_argument("--steps", type=int, default=300, help="most optimizer steps (default 300)")
    p.add_argument("--batch", type=int, default=2, help="rows of the fixed batch (default 2)")
    p.add_argument("--seq-len", type=int, default=128, help="bytes per row (default 128)")
    p.add_argument("--target", type=float, default=0.1, help="loss target in nats/byte (default 0.1)")
    p.add_argument("--lr", type=float, default=1e-3, help="constant AdamW learning rate")
    p.add_argument("--data", default=None, help="prepared corpus to take the batch from "
                                                "(default: the default corpus)")
    p.add_argument("--seed", type=int, default=0, help="model init and batch position")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run, accepts_overrides=True)


def _fixed_batch(args):
    from bytelm.data import RandomWindowSampler, default_corpus_dir, open_split
    data = args.data if args.data is not None else str(default_corpus_dir())
    split = open_split(data, "train", min_len=args.seq_len + 1)
    return RandomWindowSampler(split, args.seq_len, args.batch, seed=args.seed).batch_at(0)


def run(args) -> int:
    import torch

    from bytelm.config import OptimConfig
    from bytelm.options import build_run_config
    from bytelm.optim import build_optimizer
    from bytelm.registry import create_model
    from bytelm.train.distributed import pick_device
    from bytelm.train.step import StepConfig, TrainStep
    bad = [k for k in args.overrides if not k.startswith("model.")]
    if bad:
        raise UserError(f"overfit takes only --model.* options, not --{bad[0]}")
    for name, ok in (("steps", args.steps >= 1), ("batch", args.batch >= 1),
                     ("seq-len", args.seq_len >= 1), ("target", args.target > 0),
                     ("lr", args.lr > 0), ("seed", args.seed >= 0)):
        if not ok:
            raise UserError(f"--{name} must be > 0" if name in ("target", "lr") else
                            f"--{name} must be >= {0 if name == 'seed' else 1}")
    cfg = build_run_config(args.preset, dict(args.overrides))
    if args.seq_len > cfg.model.context:
        raise UserError(f"--seq-len {args.seq_len} exceeds the model context {cfg.model.context}")
    device = pick_device(args.device)
    batch = _fixed_batch(args).to(device)
    torch.manual_seed(args.seed)
    model = create_model(cfg.model).to(device).train()
    # no decay, no schedule: nothing but the model should stand between it and zero loss
    opt = build_optimizer(model, OptimConfig(lr=args.lr, weight_decay=0.0, warmup_steps=0))
    # a non-finite step is skipped, as a gradient scaler would
    step_fn = TrainStep(model, opt, StepConfig(precision=args.precision, grad_clip=1.0,
                                               skip_nonfinite=True))
    print(f"overfit {args.preset} ({model.n_params():,} params) on one {args.batch} x "
          f"{args.seq_len} batch, target {args.target} nats, precision {args.precision}, {device}")
    losses: list[float] = []
    bad_loss = bad_grad = 0
    reached = None
    for step in range(1, args.steps + 1):
        res = step_fn(args.lr, batch)
        lv, gv = res.loss.item(), res.grad_norm.item()
        bad_loss += not math.isfinite(lv)
        bad_grad += not math.isfinite(gv)
        losses.append(lv)
        if lv < args.target:
            reached = step
            break
    _print_curve(losses)
    finite = [v for v in losses if math.isfinite(v)]
    best = min(finite) if finite else float("nan")
    print(f"non-finite: loss {bad_loss}, grad norm {bad_grad} (of {len(losses)} steps)")
    if reached is not None:
        print(f"OK: loss {losses[-1]:.4f} < {args.target} at step {reached}")
        return 0
    print(f"FAILED: loss did not fall below {args.target} in {args.steps} steps (best {best:.4f})")
    return 1


def _print_curve(losses: list[float], points: int = 10) -> None:
    """Loss at about ``points`` evenly spaced steps, first and last included."""
    n = len(losses)
    idx = sorted({round(i * (n - 1) / max(points - 1, 1)) for i in range(points)}) if n > 1 else [0]
    print(f"{'step':>6} {'loss':>9} {'bpb':>8}")
    for i in idx:
        print(f"{i + 1:>6} {losses[i]:>9.4f} {losses[i] / math.log(2):>8.4f}")
