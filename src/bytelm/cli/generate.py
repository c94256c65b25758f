"""``bytelm generate``: sample bytes from a checkpoint (one-shot, streaming or interactive)."""
import math
import sys
from pathlib import Path

from bytelm.cli._common import arg_bytes, stdin_lines, unescape
from bytelm.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("generate", help="generate text from a checkpoint",
                       description="Prompts are bytes: --prompt text, stdin and --interactive "
                                   "lines that are not valid UTF-8 reach the model as the bytes "
                                   "they are. Output is printed as UTF-8, invalid bytes as "
                                   "U+FFFD (--prompts-file JSON likewise).")
    p.add_argument("ckpt", help="checkpoint dir or run dir")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--prompt", default=None,
                     help="prompt text, taken as bytes (any bytes, UTF-8 or not; '-' reads stdin)")
    src.add_argument("--prompt-file", default=None, help="read the prompt from a file (raw bytes)")
    src.add_argument("--prompts-file", default=None,
                     help="many prompts, generated in one batch: one per line, or a .jsonl file "
                          "of strings or {\"prompt\": ...} objects; prints JSON lines "
                          "{\"prompt\", \"output\"}")
    p.add_argument("--max-bytes", type=int, default=256)
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    p.add_argument("--top-k", type=int, default=0, help="0 = no top-k filter")
    p.add_argument("--top-p", type=float, default=1.0, help="1 = no nucleus filter")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--mode", default="standard", choices=["standard", "entropy"],
                   help="entropy: greedy below --entropy-low bits, top-k up to --entropy-high, "
                        "full sampling above")
    p.add_argument("--entropy-low", type=float, default=0.3)
    p.add_argument("--entropy-high", type=float, default=1.2)
    p.add_argument("--stop", action="append", default=[], metavar="STRING",
                   help="end the output after STRING (escapes like \\n allowed; repeatable)")
    p.add_argument("--stream", action="store_true", help="print bytes as they are generated")
    p.add_argument("--interactive", action="store_true",
                   help="read prompts line by line from stdin (each line's bytes as they are)")
    p.add_argument("--decode", default="auto", choices=["auto", "eager", "static", "compiled"],
                   help="auto (default): compiled fixed-shape decoding (CUDA graphs) on a GPU, "
                        "the model's own step on CPU; every mode gives the same bytes")
    p.add_argument("--compile", action="store_true", help="the same as --decode compiled")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                   help="auto (default): bf16 autocast on CUDA (the caches in bf16, as `bytelm "
                        "bench generate` measures), fp32 on CPU")
    p.set_defaults(func=run)


def check_sampling(args) -> None:
    """UserError for sampling options out of range (generate and chat)."""
    if args.max_bytes < 1:
        raise UserError("--max-bytes must be >= 1")
    if not math.isfinite(args.temperature) or args.temperature < 0:
        raise UserError("--temperature must be a finite number >= 0")
    if args.top_k < 0 or args.top_k > 256:
        raise UserError("--top-k must be in [0, 256]")
    if not 0 < args.top_p <= 1:
        raise UserError("--top-p must be in (0, 1]")
    if not 0 <= args.entropy_low <= args.entropy_high <= 8:
        raise UserError("need 0 <= --entropy-low <= --entropy-high <= 8 (bits)")


def _prompt(args) -> bytes:
    if args.prompt_file:
        f = Path(args.prompt_file)
        if f.is_dir():
            raise UserError(f"prompt file is a folder: {args.prompt_file}")
        if not f.is_file():
            raise UserError(f"prompt file not found: {args.prompt_file}")
        try:
            return f.read_bytes()
        except OSError as e:
            raise UserError(f"cannot read prompt file {args.prompt_file}: {e.strerror or e}") from None
    if args.prompt == "-":
        return sys.stdin.buffer.read()
    if args.prompt is None:
        raise UserError("give --prompt TEXT, --prompt-file FILE, --prompt - (stdin) or --interactive")
    return arg_bytes(args.prompt)


def _emit(model, prompt: bytes, args) -> None:
    from bytelm.generate import Utf8Stream, iter_generate
    out = Utf8Stream()
    kw = dict(max_bytes=args.max_bytes, temperature=args.temperature, top_k=args.top_k,
              top_p=args.top_p, seed=args.seed, mode=args.mode, entropy_low=args.entropy_low,
              entropy_high=args.entropy_high, decode=_decode(args))
    stops = [s for s in (unescape(s) for s in args.stop) if s]
    made = bytearray()
    for b in iter_generate(model, prompt, **kw):
        made.append(b)
        if args.stream:
            sys.stdout.write(out.push(bytes([b])))
            sys.stdout.flush()
        if any(made.endswith(s) for s in stops):
            break
    if not args.stream:
        sys.stdout.write(out.push(bytes(made)))
    sys.stdout.write(out.flush() + "\n")
    sys.stdout.flush()


def _decode(args) -> str:
    return "compiled" if args.compile else args.decode


def _emit_many(model, args) -> None:
    """--prompts-file: every prompt in one batch, one JSON line per prompt, in file order."""
    import json

    from bytelm.generate import generate_many
    from bytelm.generate.prompts import read_prompts_file
    prompts = read_prompts_file(args.prompts_file)
    outs = generate_many(model, prompts, max_bytes=args.max_bytes, temperature=args.temperature,
                         top_k=args.top_k, top_p=args.top_p, seed=args.seed, mode=args.mode,
                         entropy_low=args.entropy_low, entropy_high=args.entropy_high,
                         decode=_decode(args))
    for p, o in zip(prompts, outs):
        print(json.dumps({"prompt": p.decode("utf-8", "replace"),
                          "output": o.decode("utf-8", "replace")}, ensure_ascii=False))


def run(args) -> int:
    from bytelm.train.distributed import pick_device
    from bytelm.generate import check_compilable
    from bytelm.precision import autocast_ctx
    from bytelm.train.checkpoint import load_model
    check_sampling(args)
    if args.prompts_file and (args.interactive or args.stream):
        raise UserError("--prompts-file prints whole results: leave out --interactive and --stream")
    device = pick_device(args.device)
    model = load_model(args.ckpt, device=device)
    if _decode(args) in ("static", "compiled"):  # before the first prompt is read
        check_compilable(model, "--compile" if args.compile else f"--decode {args.decode}")
    with autocast_ctx(device, args.precision):  # decoders made inside keep caches in its dtype
        return _run(model, args)


def _run(model, args) -> int:
    if args.prompts_file:
        _emit_many(model, args)
        return 0
    if not args.interactive:
        _emit(model, _prompt(args), args)
        return 0
    print(f"interactive: context {model.config.context} bytes; empty line or Ctrl-D quits",
          file=sys.stderr)
    args.stream = True
    for line in stdin_lines():
        if not line:
            break
        try:
            _emit(model, line, args)
        except UserError as e:  # a bad prompt in a session should not end it
            print(f"bytelm: error: {e}", file=sys.stderr)
    return 0
