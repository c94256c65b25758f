"""``bytelm recall``: train small models from scratch on multi-query associative recall in bytes
and report value accuracy by sequence length and number of key-value pairs (JSON + PNG).

JSON (``<out>/recall.json``)::

    {"task":  {"key_len", "value_len", "alphabet", "filler", "format", "scored", "chance_byte_acc",
              "chance_query_acc"},
     "train": {"steps", "batch_size", "loss", "lr", "seed", "overrides"},
     "eval":  {"n_examples", "seed", "seq_lens", "cells": [[seq_len, n_pairs], ...]},
     "models": [{"spec", "preset", "family", "memory_rule", "context", "n_params", "checkpoint",
                 "final_loss", "train_time_s", "mean_query_acc", "mean_byte_acc",
                 "history": [{"step", "loss", "seq_len", "n_pairs", "time_s"}],
                 "cells": [{"seq_len", "n_pairs", "n_queries", "byte_acc", "query_acc",
                            "value_prob"}]}]}
"""
from pathlib import Path

from bytelm.errors import UserError

# the AGIFORMER preset's size-matched Transformer baseline
BASELINES = {"agiformer-tiny": "transformer-tiny", "agiformer-31m": "transformer-30m",
             "agiformer-129m": "transformer-129m"}


def add_parser(sub) -> None:
    p = sub.add_parser("recall", help="associative recall (MQAR) in bytes: train and score models",
                       description="Trains each model from scratch on k7f=v3a;...|k7f=v3a; "
                       "sequences and scores the query values. Extra --optim.*, --train.*, "
                       "--model.* options apply to every model.")
    p.add_argument("--preset", default="agiformer-tiny",
                   help="AGIFORMER preset: runs it with memory_rule hebbian and delta, plus its "
                   "Transformer baseline (default agiformer-tiny)")
    p.add_argument("--models", default=None,
                   help="explicit comma-separated model specs PRESET[key=value,...] instead of "
                   "--preset, e.g. 'agiformer-tiny,agiformer-tiny[memory_rule=delta]'")
    p.add_argument("--steps", type=int, default=300, help="training steps per model (default 300)")
    p.add_argument("--lengths", default=None,
                   help="comma-separated sequence lengths (default 64, 128, ... up to the context)")
    p.add_argument("--pairs", default=None,
                   help="comma-separated pair counts (default 1, 2, 4, ... that fit)")
    p.add_argument("--key-len", type=int, default=2, help="key characters (default 2)")
    p.add_argument("--value-len", type=int, default=2, help="value characters (default 2)")
    p.add_argument("--examples", type=int, default=64, help="examples per cell (default 64)")
    p.add_argument("--loss", default="values", choices=["all", "values"],
                   help="train on the query values only (default, as Zoology's MQAR) or on every "
                        "byte (the random keys and values then dominate the loss: a 30M "
                        "Transformer stayed at chance after 800 steps on the H100)")
    p.add_argument("--seed", type=int, default=1234, help="seed of the evaluation examples")
    p.add_argument("--out", default="recall-results", help="output folder (default recall-results)")
    p.set_defaults(func=run, accepts_overrides=True)


def _ints(text: str | None, name: str) -> list[int] | None:
    if text is None:
        return None
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--{name} expects comma-separated integers, got {text!r}") from None
    if not vals or min(vals) < 1:
        raise UserError(f"--{name} needs positive integers")
    return vals


def model_specs(preset: str, models: str | None) -> list[str]:
    from bytelm.experiments.recall import split_specs
    if models:
        return split_specs(models)
    if preset not in BASELINES:
        raise UserError(f"--preset {preset} is not an AGIFORMER preset "
                        f"({', '.join(BASELINES)}); use --models for other lists")
    return [preset, f"{preset}[memory_rule=delta]", BASELINES[preset]]


def run(args) -> int:
    from bytelm.io import dump_json
    from bytelm.experiments.recall import RecallTask, plot_recall, run_recall
    if args.steps < 1 or args.examples < 1:
        raise UserError("--steps and --examples must be >= 1")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    specs = model_specs(args.preset, args.models)
    bad = [k for k in args.overrides if k.split(".")[0] not in ("model", "optim", "train")]
    if bad:
        raise UserError(f"recall takes --model.*, --optim.* and --train.* options, not --{bad[0]}")
    # short runs: a warmup of 10% of the steps (at most 200) and a higher peak lr by default
    overrides = {"optim.warmup_steps": min(200, max(1, args.steps // 10)), "optim.lr": "1e-3",
                 "train.progress": "false", **args.overrides}
    task = RecallTask(key_len=args.key_len, value_len=args.value_len)
    res = run_recall(specs, task, out, args.steps, overrides,
                     seq_lens=_ints(args.lengths, "lengths"), pair_counts=_ints(args.pairs, "pairs"),
                     n_examples=args.examples, loss_on=args.loss, seed=args.seed,
                     progress=str(overrides.get("train.progress")).lower() in ("1", "true", "yes"))
    out.mkdir(parents=True, exist_ok=True)
    dump_json(res, out / "recall.json")
    plot_recall(res, out / "recall.png")
    names = [m["spec"] for m in res["models"]]
    t = res["task"]
    print(f"query accuracy (every value byte of a query right; chance {t['chance_query_acc']:.4f}, "
          f"per byte {t['chance_byte_acc']:.3f})")
    print("| length | pairs | " + " | ".join(names) + " |")
    print("|---:|---:|" + "---:|" * len(names))
    for i, (L, n) in enumerate(res["eval"]["cells"]):
        accs = " | ".join(f"{m['cells'][i]['query_acc']:.3f}" for m in res["models"])
        print(f"| {L} | {n} | {accs} |")
    print("| mean | | " + " | ".join(f"{m['mean_query_acc']:.3f}" for m in res["models"]) + " |")
    for m in res["models"]:
        print(f"{m['spec']}: {m['n_params']:,} params, final train loss {m['final_loss']:.3f}, "
              f"{m['train_time_s']:.1f}s")
    print(f"wrote {out / 'recall.json'} and {out / 'recall.png'}")
    return 0
