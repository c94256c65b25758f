"""Small helpers shared by the subcommands: turning user input into UserError, never a traceback."""
import codecs
import json
import os
import sys
from pathlib import Path
from typing import Iterator

from bytelm.errors import UserError


def read_json_object(path: Path, what: str) -> dict:
    """The JSON object in ``path``; unreadable, invalid or non-object files are a UserError."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UserError(f"cannot read {what} {path}: {e}") from None
    if not isinstance(d, dict):
        raise UserError(f"cannot read {what} {path}: not a JSON object")
    return d


def arg_bytes(text: str) -> bytes:
    """The exact bytes of a command-line argument (argv that is not valid UTF-8 arrives as
    surrogate escapes; a byte model takes those bytes as they are)."""
    return os.fsencode(text)


def unescape(text: str) -> bytes:
    """A command-line string with backslash escapes (``\\n``, ``\\t``, ``\\x00``) as bytes;
    other bytes, UTF-8 or not, are kept as they are."""
    try:
        return codecs.escape_decode(arg_bytes(text))[0]
    except ValueError as e:
        raise UserError(f"bad escape in {text!r}: {e}") from None


def stdin_lines() -> Iterator[bytes]:
    """Lines of standard input as bytes without their newline (any bytes, UTF-8 or not)."""
    for line in sys.stdin.buffer:
        yield line.rstrip(b"\n")
