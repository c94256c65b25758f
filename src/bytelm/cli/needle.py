"""``bytelm needle CKPT``: needle-in-a-haystack recall by depth x length, as JSON and a heat map.

rank = number of distractor keys whose answer log-probability is above the true key's (0 best,
chance = distractors / 2). Every length also scores a no-needle control (the same prompt
construction without the needle sentence): the key's rank there is the model's prior on the key,
and ``logprob_gain`` = log p(key | prompt) - log p(key | control) in nats. Recall shows as a rank
below the control rank and a positive gain; rank alone can be low from the prior.

JSON (``<out>/needle.json``)::

    {"checkpoint", "model": {"family", "context", "n_params", "memory_rule"},
     "needle", "question", "answer", "key", "distractors": [...], "haystack", "haystack_offset",
     "long_mode", "lengths": [...], "depths": [...],
     "cells": [{"length", "depth", "actual_depth", "needle_offset", "needle_in_window",
                "mode": "full" | "truncated" | "recurrent", "bytes_seen", "exact", "completion",
                "rank", "logprob", "logprob_margin", "logprob_gain"}],
     "summary": {"exact_acc", "mean_rank", "chance_rank", "control_rank", "control_exact_acc",
                 "mean_logprob_gain",
                 "by_length": [{"length", "mode", "exact_acc", "mean_rank", "control_rank",
                                "control_logprob", "control_logprob_margin", "control_exact",
                                "control_completion", "mean_logprob_gain"}]}}

(logprob, logprob_margin and gains in nats; summary.control_rank is the mean over lengths.)
"""
from pathlib import Path

from bytelm.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("needle", help="needle in a haystack: recall of a hidden key by depth x length",
                       description="Hides a key sentence at depths 0..100% of real text and asks "
                       "for it at the end; scores greedy completion and the key's log-probability "
                       "rank among distractor keys, against a no-needle control of each length "
                       "(the model's prior on the key).")
    p.add_argument("ckpt", help="checkpoint dir or run dir (uses ckpt/best)")
    p.add_argument("--lang", default="en", choices=["en", "tr"],
                   help="needle language: en 'The secret key is 1453.', tr 'Gizli şifre 1453.'")
    p.add_argument("--haystack", default=None,
                   help="text file (or folder of .txt files) for the haystack (default: "
                   "en/text/enwiki_test.txt or tr/text/news.txt of the shared data)")
    p.add_argument("--needle", default=None, help="custom needle sentence; {key} is the key")
    p.add_argument("--question", default=None, help="custom question, ending where the answer starts")
    p.add_argument("--answer", default=None, help="custom answer (default ' {key}')")
    p.add_argument("--key", default=None, help="the key (default 1453); distractors keep its form")
    p.add_argument("--lengths", default=None,
                   help="comma-separated prompt lengths in bytes (default 1024, doubling to the "
                   "context less the answer, then 2x and 4x the context)")
    p.add_argument("--depths", default=None,
                   help="comma-separated depths in [0, 1] (default 0, 0.1, ..., 1)")
    p.add_argument("--distractors", type=int, default=20, help="distractor keys (default 20)")
    p.add_argument("--long", default="auto", choices=["auto", "recurrent", "truncate"],
                   help="prompts beyond the context: auto = recurrent for models with an "
                   "unbounded state (AGIFORMER), else the last context bytes")
    p.add_argument("--seed", type=int, default=0,
                   help="distractors and haystack start (0: the file's start)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=None, help="output folder (default needle-<lang>)")
    p.set_defaults(func=run)


def _list(text: str | None, kind, name: str):
    if text is None:
        return None
    try:
        vals = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--{name} expects comma-separated numbers, got {text!r}") from None
    if not vals:
        raise UserError(f"--{name} is empty")
    return vals


def run(args) -> int:
    from bytelm.io import dump_json
    from bytelm.data.shared import shared_data_dir
    from bytelm.eval.needle import (DEFAULT_HAYSTACKS, default_lengths, needle_spec, plot_needle,
                                    run_needle)
    from bytelm.train.checkpoint import load_model, resolve_checkpoint
    from bytelm.train.distributed import pick_device
    depths = _list(args.depths, float, "depths") or [i / 10 for i in range(11)]
    if any(not 0 <= d <= 1 for d in depths):
        raise UserError("--depths must lie in [0, 1]")
    if args.distractors < 1:
        raise UserError("--distractors must be >= 1")
    out = Path(args.out or f"needle-{args.lang}")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    spec = needle_spec(args.lang, args.needle, args.question, args.answer, args.key)
    haystack = Path(args.haystack) if args.haystack else shared_data_dir() / DEFAULT_HAYSTACKS[args.lang]
    if not haystack.exists():
        raise UserError(f"haystack not found: {haystack}")
    ckpt = resolve_checkpoint(args.ckpt)
    model = load_model(ckpt, device=pick_device(args.device))
    reserve = len(spec.answer.encode()) - 1
    lengths = _list(args.lengths, int, "lengths") or default_lengths(model.config.context, reserve)
    res = run_needle(model, spec, haystack, lengths, depths, n_distractors=args.distractors,
                     seed=args.seed, long_mode=args.long)
    res = {"checkpoint": str(ckpt), **res}
    out.mkdir(parents=True, exist_ok=True)
    dump_json(res, out / "needle.json")
    plot_needle(res, out / "needle.png")
    s = res["summary"]
    print(f"needle {spec.needle!r} in {haystack.name}, answer {spec.answer!r}; "
          f"model {res['model']['family']} context {res['model']['context']}")
    n_d = len(res["distractors"])
    print(f"rank = distractors above the key (of {n_d}; chance {s['chance_rank']:g}, 0 best); "
          "control = the same prompt without the needle (the model's prior on the key); "
          "gain = log p(key) - log p(key | control), nats")
    print(f"| length | mode | exact | mean rank: distractors above key (chance "
          f"{s['chance_rank']:g}, 0 best) | control rank (no needle) | mean logprob gain (nats) |"
          "\n|---:|---|---:|---:|---:|---:|")
    for b in s["by_length"]:
        print(f"| {b['length']} | {b['mode']} | {b['exact_acc']:.2f} | {b['mean_rank']:.2f} | "
              f"{b['control_rank']:.2f} | {b['mean_logprob_gain']:+.3f} |")
    if any(c["mode"] == "truncated" for c in res["cells"]):
        print("truncated: the model saw only the last context bytes of longer prompts")
    print(f"overall exact {s['exact_acc']:.2f}, mean rank {s['mean_rank']:.2f} "
          f"(no-needle control {s['control_rank']:.2f}), mean logprob gain "
          f"{s['mean_logprob_gain']:+.3f} nats; "
          f"wrote {out / 'needle.json'} and {out / 'needle.png'}")
    return 0
