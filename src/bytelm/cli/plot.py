"""``bytelm plot``: learning curves (train and val bpb vs step and vs bytes) of one or more runs,
or the figure of a ``bytelm kasgarli`` result JSON."""
from bytelm.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("plot", help="learning curves of runs from their metrics.jsonl",
                       description="Train and val bits per byte vs step and vs bytes seen, one "
                                   "colour per run; curriculum stage starts as dashed lines. "
                                   "Given a `bytelm kasgarli` result JSON instead, redraws its "
                                   "figure.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="run directories (train.out_dir), or one kasgarli.json")
    p.add_argument("--out", default="curves.png", help="PNG to write (default: curves.png)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from bytelm.eval.plots import plot_learning_curves
    if len(args.runs) == 1 and Path(args.runs[0]).is_file():
        from bytelm.experiments.kasgarli import plot_kasgarli, read_result
        plot_kasgarli(read_result(args.runs[0]), args.out)
        print(f"wrote {args.out}")
        return 0
    if len(set(args.runs)) != len(args.runs):
        raise UserError("a run directory is given twice")
    out = plot_learning_curves(args.runs, args.out)
    print(f"wrote {out}")
    return 0
