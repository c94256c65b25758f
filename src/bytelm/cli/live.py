"""``bytelm live``: continual learning of a checkpoint on a byte stream (file or stdin)."""
import math
from pathlib import Path

from bytelm.errors import UserError

# option -> LiveConfig field; options left unset keep the live checkpoint's (or default) value
_CONFIG_OPTIONS = ("context", "batch_size", "lr", "optimizer", "weight_decay", "grad_clip",
                   "capacity", "half_life", "min_scale", "prune_every", "sketch", "replay",
                   "replay_capacity", "ckpt_every", "log_every", "seed")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "live", help="continual learning on a byte stream",
        description="Adapt a checkpoint (run dir, ckpt/last, ckpt/best, or a live checkpoint) to a "
                    "stream of bytes, scaling each chunk's gradient by how recently and often its "
                    "context was seen. Checkpoints go to OUT/ckpt/last (atomic); Ctrl-C or the end "
                    "of the stream writes a final one.")
    p.add_argument("ckpt", help="checkpoint to start from")
    p.add_argument("--stream", required=True, help="file to learn, or - for stdin")
    p.add_argument("--out", default=None,
                   help="run folder for checkpoints (default: the live checkpoint's own folder, "
                        "else runs/live)")
    p.add_argument("--context", type=int, default=None,
                   help="input bytes per chunk (default: min(256, model context))")
    p.add_argument("--batch-size", type=int, default=None, help="stream chunks per update (4)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (1e-4)")
    p.add_argument("--optimizer", choices=["adamw", "sgd", "enhanced_sgd"], default=None)
    p.add_argument("--weight-decay", type=float, default=None, help="(0)")
    p.add_argument("--grad-clip", type=float, default=None, help="(1.0; 0 disables)")
    p.add_argument("--capacity", type=int, default=None, help="contexts kept in memory (4096)")
    p.add_argument("--half-life", type=float, default=None,
                   help="chunks for an unseen context's importance to halve (2000)")
    p.add_argument("--min-scale", type=float, default=None, help="gradient scale floor (0.1)")
    p.add_argument("--prune-every", type=int, default=None, help="chunks between prunings (500)")
    p.add_argument("--no-importance", dest="importance", action="store_false", default=None,
                   help="gradient scale 1 for every chunk (plain fine-tuning)")
    p.add_argument("--sketch", action="store_true", default=None,
                   help="key contexts by a MinHash band so near-duplicates collide")
    p.add_argument("--replay", type=float, default=None,
                   help="replayed chunks per new chunk, e.g. 0.25 (default 0: off)")
    p.add_argument("--replay-capacity", type=int, default=None, help="replay reservoir size (1024)")
    p.add_argument("--replay-from", default=None, metavar="DATA",
                   help="seed the replay reservoir from a prepared corpus (train split) or file")
    p.add_argument("--ckpt-every", type=int, default=None, help="updates between checkpoints (200)")
    p.add_argument("--log-every", type=int, default=None, help="updates between log lines (50)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--resume", action="store_true",
                   help="continue the stream after the bytes the live checkpoint already learned")
    p.add_argument("--dry-run", action="store_true",
                   help="report chunks, novel/repeated contexts and grad scales; change nothing")
    p.add_argument("--eval-data", default=None, metavar="DATA",
                   help="original-domain corpus dir or file: bpb before and after (forgetting)")
    p.add_argument("--eval-split", default="val", choices=["train", "val", "test"])
    p.add_argument("--eval-bytes", type=int, default=262144,
                   help="score the first N bytes of the eval data (0: all)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", default=None, help="also write the summary to this file")
    p.set_defaults(func=run)


def _out_dir(args, ckpt: Path, live: dict | None) -> Path | None:
    from bytelm.train.checkpoint import CONFIG
    if args.dry_run:
        return None
    if args.out is not None:
        out = Path(args.out)
    elif live is not None and ckpt.parent.name == "ckpt" and ckpt.name in ("last", "last.old"):
        out = ckpt.parent.parent
    else:
        out = Path("runs/live")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    last = out / "ckpt" / "last"
    for cand in (last, last.with_name("last.old")):
        if (cand / CONFIG).is_file() and cand.resolve() != ckpt.resolve():
            raise UserError(f"{out} already holds a live checkpoint; pass {out} as CKPT to "
                            "continue it, or choose another --out")
    return out


def run(args) -> int:
    from bytelm.live import LiveLearner, bpb_on, forgetting_report, open_stream, read_live_state
    from bytelm.train.checkpoint import resolve_checkpoint
    from bytelm.train.distributed import pick_device
    if args.eval_bytes < 0:
        raise UserError("--eval-bytes must be >= 0")
    if args.json and Path(args.json).is_dir():
        raise UserError(f"--json {args.json} is a folder; give a file name")
    for name in ("lr", "weight_decay", "grad_clip", "half_life", "min_scale", "replay"):
        v = getattr(args, name)
        if v is not None and not math.isfinite(v):
            raise UserError(f"--{name.replace('_', '-')} must be a finite number")
    ckpt = resolve_checkpoint(args.ckpt)
    live = read_live_state(ckpt)
    if args.resume and live is None:
        raise UserError(f"--resume needs a live checkpoint; {ckpt} was not written by bytelm live")
    if args.stream != "-" and not Path(args.stream).exists():
        raise UserError(f"--stream {args.stream}: file not found")
    if args.eval_data is not None and not Path(args.eval_data).exists():
        raise UserError(f"--eval-data {args.eval_data}: not found")
    out = _out_dir(args, ckpt, live)
    overrides = {k: getattr(args, k) for k in (*_CONFIG_OPTIONS, "importance")
                 if getattr(args, k) is not None}
    learner = LiveLearner.from_checkpoint(ckpt, overrides, out_dir=out,
                                          device=pick_device(args.device))
    if args.replay_from is not None:
        if not Path(args.replay_from).exists():
            raise UserError(f"--replay-from {args.replay_from}: not found")
        n = learner.prefill_replay(args.replay_from)
        print(f"replay: seeded with {n} chunks of {args.replay_from}")
    skip = 0
    if args.resume:
        skip = learner.bytes_consumed
        if learner.stream_name and learner.stream_name != args.stream:
            print(f"warning: the checkpoint learned {learner.stream_name!r}; skipping its "
                  f"{skip:,} bytes of {args.stream!r}")
    model, seq = learner.model, learner.model.config.context
    max_eval = args.eval_bytes or None
    before = {}
    if args.eval_data is not None:
        before["original"] = bpb_on(model, args.eval_data, seq, max_eval, split=args.eval_split)
        print(f"before: {before['original']:.4f} bpb on {args.eval_data} ({args.eval_split})")
    f = open_stream(args.stream)
    try:
        summary = learner.learn_stream(f, skip=skip, dry_run=args.dry_run, name=args.stream)
    finally:
        if args.stream != "-":
            f.close()
    if before:
        after = {"original": bpb_on(model, args.eval_data, seq, max_eval, split=args.eval_split)}
        summary["forgetting"] = forgetting_report(before, after)["original"]
    _print(summary, skip)
    if out is not None:
        from bytelm.io import dump_json
        dump_json(summary, out / "live_summary.json")
    if args.json:
        from bytelm.io import dump_json
        dump_json(summary, Path(args.json))
    return 130 if summary["interrupted"] else 0


def _print(s: dict, skip: int) -> None:
    head = "dry run (nothing learned)" if s["dry_run"] else "learned"
    if skip:
        head += f" after skipping {skip:,} bytes"
    bpb = f"{s['stream_bpb']:.4f}" if s["stream_bpb"] is not None else "n/a"
    print(f"{head}: {s['chunks']:,} chunks ({s['bytes']:,} bytes) of {s['context']} bytes, "
          f"{s['novel']:,} novel, {s['repeated']:,} repeated; mean grad scale "
          f"{s['mean_grad_scale']:.3f}; stream {bpb} bpb (before each update)")
    if not s["dry_run"]:
        print(f"updates {s['updates']:,}, replayed chunks {s['replayed']:,}, skipped non-finite "
              f"{s['skipped_nonfinite']}; memory {s['memory_size']:,} contexts "
              f"({s['evicted']:,} evicted, {s['pruned']:,} pruned)")
    if "forgetting" in s:
        fg = s["forgetting"]
        print(f"original domain: {fg['before']:.4f} -> {fg['after']:.4f} bpb "
              f"({fg['delta']:+.4f})")
    if s["interrupted"]:
        print("interrupted: the final checkpoint holds everything learned so far"
              if not s["dry_run"] else "interrupted")
    if s["checkpoint"]:
        print(f"checkpoint: {s['checkpoint']}")
