"""``bytelm plot``: learning curves (train and val bpb vs step and vs bytes) of one or more runs."""
from bytelm.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("plot", help="learning curves of runs from their metrics.jsonl",
                       description="Train and val bits per byte vs step and vs bytes seen, one "
                                   "colour per run; curriculum stage starts as dashed lines.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (train.out_dir)")
    p.add_argument("--out", default="curves.png", help="PNG to write (default: curves.png)")
    p.set_defaults(func=run)


def run(args) -> int:
    from bytelm.eval.plots import plot_learning_curves
    if len(set(args.runs)) != len(args.runs):
        raise UserError("a run directory is given twice")
    out = plot_learning_curves(args.runs, args.out)
    print(f"wrote {out}")
    return 0
