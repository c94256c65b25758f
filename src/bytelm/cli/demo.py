"""``bytelm demo``: the quick start — train a small model on the default corpus for a few
minutes, evaluate it on the test split, print a sample."""
import shutil
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="train a small model on the default corpus, evaluate, generate")
    p.add_argument("--preset", default="transformer-mini")
    p.add_argument("--minutes", type=float, default=2.5, help="training time budget")
    p.add_argument("--out", default="runs/demo", help="run directory (replaced if it holds a demo)")
    p.add_argument("--eval-bytes", type=int, default=262144,
                   help="bytes of the test split scored (0: all of it)")
    p.add_argument("--prompt", default="def ",
                   help="prompt for the sample (taken as bytes: text that is not valid UTF-8 "
                        "reaches the model as the bytes it is)")
    p.set_defaults(func=run, accepts_overrides=True)


def run(args) -> int:
    import math

    from bytelm.cli._common import arg_bytes
    from bytelm.options import build_run_config
    from bytelm.data import default_corpus_dir, open_split
    from bytelm.errors import UserError
    from bytelm.eval.bpb import evaluate_bpb
    from bytelm.generate import Utf8Stream, generate_bytes
    from bytelm.train.checkpoint import load_model
    from bytelm.train.loop import train
    if not math.isfinite(args.minutes) or args.minutes <= 0:
        raise UserError("--minutes must be a finite number > 0")
    if args.eval_bytes < 0:
        raise UserError("--eval-bytes must be >= 0 (0: the whole test split)")
    prompt = arg_bytes(args.prompt)
    if not prompt:
        raise UserError("--prompt is empty")
    out = Path(args.out)
    overrides = {"train.time_budget_min": args.minutes, "train.steps": 100_000,
                 "train.out_dir": str(out), "train.batch_size": 16, "train.eval_every": 0,
                 "train.eval_bytes": 131072, "optim.lr": 3e-3, "optim.warmup_steps": 50,
                 "optim.weight_decay": 0.1, **args.overrides}
    cfg = build_run_config(args.preset, overrides)  # a bad preset or option: before any output
    if out.exists():
        if not (out / "run_config.json").is_file():
            raise UserError(f"{out} exists and is not a bytelm run; choose another --out")
        shutil.rmtree(out)
    print("[1/3] training on the default corpus (Python standard library sources)")
    summary = train(cfg)
    print(f"      {summary['steps']} steps, {summary['bytes_per_s']:,.0f} bytes/s, "
          f"val {summary['val_bpb']:.3f} bits/byte")
    print("[2/3] evaluating on the test split")
    model = load_model(out / "ckpt" / "last")
    split = open_split(default_corpus_dir(cfg.data.default_corpus_bytes), "test", min_len=2)
    res = evaluate_bpb(model, split, seq_len=cfg.seq_len, batch_size=8,
                       max_bytes=args.eval_bytes or None)
    print(f"      test: {res['bpb']:.3f} bits/byte over {res['n_bytes']:,} bytes")
    try:
        shown = repr(prompt.decode("utf-8"))
    except UnicodeDecodeError:
        shown = repr(prompt)  # b'\xff...'
    print(f"[3/3] sample (prompt {shown}, temperature 0.7):")
    text = generate_bytes(model, prompt, max_bytes=300, temperature=0.7, seed=0)
    s = Utf8Stream()
    print(s.push(prompt + text) + s.flush())
    print(f"\nrun directory: {out}  (try: bytelm generate {out} --prompt 'import ')")
    return 0
