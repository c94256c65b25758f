"""``bytelm patch``: show where a patcher puts patch boundaries in a file, with length statistics."""
import statistics
import sys
from pathlib import Path

from bytelm.errors import UserError

# CLI flag -> config field; a flag the chosen patcher lacks is a UserError
_OPTIONS = {"window": "window", "threshold": "threshold", "min_size": "min_size",
            "max_size": "max_size", "patch_size": "patch_size", "overflow": "overflow",
            "utf8": "utf8", "model": "path"}
# alternating foreground colours for a terminal
_COLOURS = ("\x1b[36m", "\x1b[33m")
_RESET = "\x1b[0m"


def add_parser(sub) -> None:
    p = sub.add_parser("patch", help="show the patch boundaries a patcher (or a model's chunker) "
                                     "finds in a file")
    p.add_argument("file", help="file to patch ('-' reads stdin)")
    p.add_argument("--patcher", default="babylon",
                   help="babylon (default), entropy-model, space or fixed")
    p.add_argument("--window", type=int, default=None, help="babylon: entropy window in bytes (16)")
    p.add_argument("--threshold", type=float, default=None,
                   help="babylon: entropy rise in bits (0.2); entropy-model: next-byte entropy in bits (2)")
    p.add_argument("--min-size", type=int, default=None, help="shortest patch in bytes")
    p.add_argument("--max-size", type=int, default=None, help="longest patch in bytes (0: none)")
    p.add_argument("--overflow", default=None, choices=["reserve", "extend", "cut"],
                   help="when a character straddles --max-size: end up to 3 bytes early (reserve, "
                        "default), up to 3 bytes late (extend), or split it (cut)")
    p.add_argument("--utf8", action="store_true", default=None,
                   help="never split a UTF-8 character (default for all but fixed)")
    p.add_argument("--no-utf8", dest="utf8", action="store_false", help="allow splitting characters")
    p.add_argument("--patch-size", type=int, default=None, help="fixed: stride in bytes (4)")
    p.add_argument("--model", default=None, help="entropy-model: checkpoint of the byte LM")
    p.add_argument("--target-size", type=float, default=None,
                   help="entropy-model: pick the threshold for this mean patch size on the file itself")
    p.add_argument("--run", default=None, metavar="CKPT",
                   help="show the chunk boundaries of a trained model (run folder or checkpoint) "
                        "that has them (hnet: its learned router or rule) instead of a patcher")
    p.add_argument("--png", default=None, metavar="FILE.png",
                   help="also draw the text with its patches or chunks into a PNG")
    p.add_argument("--max-bytes", type=int, default=2000, help="patch only the first N bytes")
    p.add_argument("--color", default="auto", choices=["auto", "always", "never"],
                   help="alternate colours between patches (auto: when stdout is a terminal) "
                        "instead of '|' separators")
    p.set_defaults(func=run)


def _read(file: str, max_bytes: int) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read(max_bytes)
    f = Path(file)
    if f.is_dir():
        raise UserError(f"{file} is a folder, not a file")
    if not f.is_file():
        raise UserError(f"file not found: {file}")
    try:
        with f.open("rb") as fh:
            return fh.read(max_bytes)
    except OSError as e:
        raise UserError(f"cannot read {file}: {e.strerror or e}") from None


def _build(args):
    from dataclasses import fields

    from bytelm.patching import EntropyModelPatcher, patcher_class
    cls = patcher_class(args.patcher)
    known = {f.name for f in fields(cls.config_class)}
    kw = {}
    for flag, field in _OPTIONS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if field not in known:
            raise UserError(f"--{flag.replace('_', '-')} does not apply to patcher {args.patcher!r}")
        kw[field] = value
    if args.target_size is not None and cls is not EntropyModelPatcher:
        raise UserError(f"--target-size does not apply to patcher {args.patcher!r}")
    if args.target_size is not None and args.threshold is not None:
        raise UserError("give --threshold or --target-size, not both")
    if cls is EntropyModelPatcher and "path" not in kw:
        raise UserError("the entropy-model patcher needs --model CHECKPOINT")
    return cls(**kw)


def run(args) -> int:
    if args.max_bytes < 1:
        raise UserError(f"--max-bytes must be >= 1, got {args.max_bytes}")
    from bytelm.patching import fit_threshold
    data = _read(args.file, args.max_bytes)
    if not data:
        raise UserError(f"nothing to patch: {args.file} is empty")
    if args.run is not None:
        patches, what = _model_chunks(args, data)
    else:
        patcher = _build(args)
        if args.target_size is not None:
            patcher.config.threshold = fit_threshold(patcher, data, args.target_size)
        patches = patcher.split(data)
        options = ", ".join(f"{k}={v}" for k, v in patcher.config.to_dict().items())
        what = f"patcher {patcher.name} ({options})"
    colour = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    texts = [p.decode("utf-8", errors="backslashreplace") for p in patches]
    if colour:
        shown = "".join(_COLOURS[i % 2] + t for i, t in enumerate(texts)) + _RESET
    else:
        shown = "|".join(texts)
    enc = sys.stdout.encoding or "utf-8"
    shown = shown.encode(enc, errors="backslashreplace").decode(enc)
    print(shown, end="" if shown.endswith("\n") else "\n")
    lengths = [len(p) for p in patches]
    print(f"\n{what}")
    print(f"{len(data)} bytes, {len(patches)} patches: mean length {len(data) / len(patches):.2f}, "
          f"median {statistics.median(lengths):g}, longest {max(lengths)}")
    if args.png:
        from bytelm.eval.plots import plot_chunks
        print(f"wrote {plot_chunks(patches, args.png, title=what)}")
    return 0


def _model_chunks(args, data: bytes) -> tuple[list[bytes], str]:
    """The text cut where the model starts a chunk, in windows of its context."""
    import torch

    import bytelm
    given = [f for f in ("patcher", "target_size", *_OPTIONS) if f != "patcher" and getattr(args, f) is not None]
    if given:
        raise UserError(f"--{given[0].replace('_', '-')} is a patcher option; --run shows the model's own chunks")
    model = bytelm.load(args.run)
    x = torch.frombuffer(bytearray(data), dtype=torch.uint8).long()
    T = model.config.context
    with torch.no_grad():
        ends = [model.patch_ends(x[i:i + T][None]) for i in range(0, len(x), T)]
    if ends[0] is None:
        raise UserError(f"{args.run} holds a {model.config.family} model, which has no patch or "
                        "chunk boundaries (use --patcher for the rule-based patchers)")
    # a window's last byte closes its patch: the next window starts afresh
    for e in ends:
        e[0, -1] = True
    ends = torch.cat([e[0] for e in ends])
    cuts = [0] + (ends.nonzero().flatten() + 1).tolist()
    patches = [data[a:b] for a, b in zip(cuts, cuts[1:])]
    c = model.config
    how = f", chunker {c.chunker}, target length {c.chunk_len}" if c.family == "hnet" else ""
    return patches, f"model {args.run} ({c.family}{how})"
