"""``bytelm eval``: bits per byte of a checkpoint over a whole split."""
from pathlib import Path

from bytelm.cli._common import read_json_object
from bytelm.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="bits per byte over a whole split")
    p.add_argument("ckpt", help="checkpoint dir or run dir (uses ckpt/best)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--data", default=None, help="prepared corpus (default: the one it was trained on)")
    p.add_argument("--seq-len", type=int, default=0, help="window length (default: model context)")
    p.add_argument("--stride", type=int, default=0, help="window spacing (default: seq-len)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-bytes", type=int, default=0, help="score only the first N bytes (0: all)")
    p.add_argument("--by-offset", type=int, default=0, metavar="P",
                   help="also report bits per byte by the byte's offset mod P in the window "
                        "(P = AGIFORMER's patch size: offset 0 opens a patch)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", default=None, help="also write the result to this file")
    p.set_defaults(func=run)


def data_dir_of(ckpt: Path) -> str | None:
    """The corpus a training checkpoint was trained on ('' means the default corpus)."""
    f = ckpt / "trainer_state.json"
    if not f.is_file():
        return None
    try:
        path = read_json_object(f, "training state")["run_config"]["data"]["path"]
    except (KeyError, TypeError):
        raise UserError(f"{f} does not record the corpus (damaged?): pass --data DIR") from None
    if not isinstance(path, str):
        raise UserError(f"{f} does not record the corpus (damaged?): pass --data DIR")
    return path


def run(args) -> int:
    from bytelm.train.distributed import pick_device
    from bytelm.data import open_split
    from bytelm.eval.bpb import evaluate_bpb
    from bytelm.train.checkpoint import load_model, resolve_checkpoint
    for name in ("seq_len", "stride", "max_bytes"):
        if getattr(args, name) < 0:
            raise UserError(f"--{name.replace('_', '-')} must be >= 0")
    if args.batch_size < 1:
        raise UserError("--batch-size must be >= 1")
    if args.by_offset < 0:
        raise UserError("--by-offset must be >= 0")
    if args.json and Path(args.json).is_dir():
        raise UserError(f"--json {args.json} is a folder; give a file name")
    device = pick_device(args.device)
    ckpt = resolve_checkpoint(args.ckpt)
    model = load_model(ckpt, device=device)
    data = args.data if args.data is not None else data_dir_of(ckpt)
    if data is None:
        raise UserError("this checkpoint does not record its corpus: pass --data DIR")
    if data == "":
        from bytelm.data import default_corpus_dir
        data = str(default_corpus_dir())
    seq = args.seq_len or model.config.context
    if seq > model.config.context:
        raise UserError(f"--seq-len {seq} exceeds the model context {model.config.context}")
    if args.stride > seq:
        raise UserError(f"--stride {args.stride} exceeds --seq-len {seq}")
    split = open_split(data, args.split, min_len=2)
    res = evaluate_bpb(model, split, seq_len=seq, stride=args.stride, batch_size=args.batch_size,
                       max_bytes=args.max_bytes or None, progress=True, by_offset=args.by_offset)
    res.update({"checkpoint": str(ckpt), "data": str(data), "split": args.split})
    print(f"{args.split}: {res['bpb']:.4f} bits/byte, {res['bits_per_char']:.4f} bits/char "
          f"over {res['n_bytes']:,} bytes (window {seq}, stride {res['stride']})")
    for r in res.get("by_offset", []):
        print(f"  offset {r['offset']} mod {args.by_offset}: {r['bpb']:.4f} bits/byte "
              f"over {r['n_bytes']:,} bytes")
    if args.json:
        from bytelm.io import dump_json
        dump_json(res, Path(args.json))
    return 0
