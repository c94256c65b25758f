"""``bytelm`` entry point: subcommands, dotted overrides, and one-line errors with exit code 2."""
import argparse
import codecs
import errno
import logging
import os
import sys

from bytelm.errors import UserError
from bytelm.interrupts import Terminated, termination_as_interrupt


class _Parser(argparse.ArgumentParser):
    """argparse that raises UserError instead of printing usage and exiting."""

    def error(self, message):
        raise UserError(message)


def split_overrides(extra: list[str]) -> dict[str, str]:
    """``['--train.steps=5', '--optim.lr', '1e-3']`` -> {'train.steps': '5', 'optim.lr': '1e-3'}."""
    out: dict[str, str] = {}
    i = 0
    while i < len(extra):
        tok = extra[i]
        if not tok.startswith("--") or "." not in tok.split("=")[0]:
            raise UserError(f"unrecognized argument {tok!r} (options look like --train.steps=100)")
        if "=" in tok:
            k, v = tok[2:].split("=", 1)
        else:
            if i + 1 >= len(extra):
                raise UserError(f"option {tok} needs a value")
            k, v = tok[2:], extra[i + 1]
            i += 1
        out[k] = v
        i += 1
    return out


def _version() -> str:
    """``bytelm X (torch Y, Python Z)``, without importing torch (seconds) just to say it."""
    import importlib.metadata
    import platform

    from bytelm import __version__
    try:
        torch = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch = "not installed"
    return f"bytelm {__version__} (torch {torch}, Python {platform.python_version()})"


def build_parser() -> argparse.ArgumentParser:
    """One subcommand per module of ``bytelm.cli`` that defines ``add_parser(sub)``."""
    import importlib
    import pkgutil

    import bytelm.cli as pkg
    p = _Parser(prog="bytelm", description="Tokenizer-free byte-level language models.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"bytelm.cli.{info.name}")
        if hasattr(mod, "add_parser"):
            mod.add_parser(sub)
    return p


# OS errors of the machine or of a path the user gave, never of bytelm's logic: one line
_ENV_ERRNOS = frozenset(getattr(errno, n) for n in (
    "ENOSPC", "EDQUOT", "EROFS", "EFBIG", "EACCES", "EPERM", "EIO", "ENAMETOOLONG", "EMFILE",
    "ENFILE", "ENOTDIR", "EISDIR", "ELOOP", "EXDEV") if hasattr(errno, n))


def _os_error_line(e: OSError) -> str:
    where = "".join(f" ({os.fsdecode(f)})" for f in (e.filename, e.filename2) if f is not None)
    return f"{e.strerror or e}{where}"


def _tolerant_stdout() -> None:
    """Output never fails on its encoding: on a UTF-8 stdout, the surrogate escapes of argv and
    file names that are not UTF-8 are written back as the bytes they came from; on a terminal
    with another encoding, characters it cannot show are printed as '?'."""
    out = sys.stdout
    if out is not sys.__stdout__ or getattr(out, "errors", None) != "strict" \
            or not hasattr(out, "reconfigure"):
        return  # a caller's own stream (main() called in-process) is left as it is
    try:
        utf8 = codecs.lookup(out.encoding or "ascii").name == "utf-8"
        out.reconfigure(errors="surrogateescape" if utf8 else "replace")
    except (LookupError, ValueError, OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _tolerant_stdout()
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                            format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
        if getattr(args, "passthrough", False):
            # everything after the subcommand belongs to another program (bytelm lm-eval)
            args.rest, extra = argv[argv.index(args.command) + 1:], []
        if extra and not getattr(args, "accepts_overrides", False):
            raise UserError(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = split_overrides(extra) if extra else {}
        with termination_as_interrupt():
            return args.func(args) or 0
    except UserError as e:
        print(f"bytelm: error: {e}", file=sys.stderr)
        return 2
    except Terminated as e:
        print(f"bytelm: stopped by {e}", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print("bytelm: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("bytelm: error: out of memory (lower the batch size, context or model size)",
              file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (e.g. `| head`); not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        # disk full, read-only, file too large, permissions (writes the code below did not
        # turn into a UserError themselves): one line naming the path
        if e.errno not in _ENV_ERRNOS:
            raise
        print(f"bytelm: error: {_os_error_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - last line of defence: one line, unless debugging
        from bytelm.train.loop import NonFiniteLossError
        if isinstance(e, NonFiniteLossError):
            print(f"bytelm: error: {e}", file=sys.stderr)
            return 3
        if _out_of_memory(e):
            first = (str(e).splitlines() or [""])[0][:200]
            print(f"bytelm: error: out of memory (lower the batch size, context or model size): "
                  f"{first}", file=sys.stderr)
            return 2
        raise


def _out_of_memory(e: BaseException) -> bool:
    """torch reports a failed allocation as OutOfMemoryError (CUDA) or a RuntimeError (CPU)."""
    msg = str(e)
    return (type(e).__name__ == "OutOfMemoryError"
            or (isinstance(e, RuntimeError) and ("can't allocate memory" in msg
                                                 or "not enough memory" in msg)))


if __name__ == "__main__":
    raise SystemExit(main())
