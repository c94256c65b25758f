"""``bytelm chat``: an interactive REPL with history; bytes stream as they are produced and
Ctrl-C stops the current reply without leaving the session. Input lines are taken as bytes
(any bytes, UTF-8 or not); replies are printed as UTF-8 with invalid bytes shown as U+FFFD."""
import sys

from bytelm.cli._common import stdin_lines, unescape
from bytelm.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("chat", help="interactive session with history (any model family)",
                       description="Reads lines from stdin and streams each reply. Lines are "
                                   "taken as the bytes they are (text that is not valid UTF-8 "
                                   "included); replies print invalid UTF-8 as U+FFFD.")
    p.add_argument("ckpt", help="checkpoint dir or run dir")
    p.add_argument("--max-bytes", type=int, default=400, help="longest reply")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--mode", default="entropy", choices=["standard", "entropy"])
    p.add_argument("--entropy-low", type=float, default=0.3)
    p.add_argument("--entropy-high", type=float, default=1.2)
    p.add_argument("--stop", default="\\n", help="reply ends at this string (escapes allowed)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--compile", action="store_true",
                   help="compiled fixed-shape decoding (see bytelm generate --decode)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args) -> int:
    from bytelm.generate import Utf8Stream, check_compilable, iter_generate
    from bytelm.train.checkpoint import load_model
    from bytelm.train.distributed import pick_device
    from bytelm.cli.generate import check_sampling
    check_sampling(args)  # the same ranges as generate, before the model loads
    model = load_model(args.ckpt, device=pick_device(args.device))
    if args.compile:  # before the first prompt is read
        check_compilable(model, "--compile")
    ctx = model.config.context
    stop = unescape(args.stop) or None
    history = b""
    print(f"chat: context {ctx} bytes; empty line or Ctrl-D quits, Ctrl-C stops a reply",
          file=sys.stderr)
    for line in stdin_lines():
        if not line:
            break
        # keep the newest bytes that fit, leaving room for the reply inside the context
        history = (history + line + b"\n")[-max(1, ctx - 1):]
        out, reply = Utf8Stream(), bytearray()
        try:
            for b in iter_generate(model, history, max_bytes=args.max_bytes,
                                   temperature=args.temperature, top_k=args.top_k,
                                   top_p=args.top_p, seed=args.seed, stop=stop, mode=args.mode,
                                   entropy_low=args.entropy_low, entropy_high=args.entropy_high,
                                   compile=args.compile):
                reply.append(b)
                sys.stdout.write(out.push(bytes([b])))
                sys.stdout.flush()
        except KeyboardInterrupt:
            sys.stdout.write(" [stopped]")
        sys.stdout.write(out.flush() + ("" if reply.endswith(b"\n") else "\n"))
        sys.stdout.flush()
        history = (history + bytes(reply) + (b"" if reply.endswith(b"\n") else b"\n"))[-(ctx - 1):]
    return 0
