"""Cutting a byte stream (file, pipe, stdin) into training chunks.

Chunk i holds bytes [i * context, i * context + context + 1): ``context`` input bytes plus the
byte after them, so consecutive chunks share one byte and every byte after the first is a
target exactly once. The last chunk may be shorter (>= 2 bytes). After n chunks of total length
L were learned, the next chunk starts at byte L - n (``bytes_consumed``), which is where a
resumed run skips to.
"""
from typing import BinaryIO, Iterator

from bytelm.errors import UserError


def _read(f: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, fewer only at end of stream (pipes may return short reads)."""
    parts, got = [], 0
    while got < n:
        b = f.read(n - got)
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def iter_chunks(f: BinaryIO, context: int, skip: int = 0) -> Iterator[bytes]:
    """Yields chunks of ``context + 1`` bytes (the last one possibly shorter) from ``f``.

    Args:
        f: a binary file object (any byte values are fine).
        context: input bytes per chunk (>= 1).
        skip: bytes to discard first (a resumed run's ``bytes_consumed``).
    """
    if context < 1:
        raise UserError(f"context must be >= 1, got {context}")
    while skip > 0:
        got = len(_read(f, min(skip, 1 << 20)))
        if got == 0:
            return
        skip -= got
    buf = _read(f, context + 1)
    while len(buf) >= 2:
        yield buf
        if len(buf) < context + 1:
            return
        nxt = _read(f, context)
        if not nxt:
            return
        buf = buf[-1:] + nxt


def open_stream(name: str):
    """A binary file object for ``name`` ("-" is stdin); the caller closes files it opened."""
    import sys
    if name == "-":
        return sys.stdin.buffer
    try:
        return open(name, "rb")
    except IsADirectoryError:
        raise UserError(f"--stream {name} is a folder; give a file or -") from None
    except OSError as e:
        raise UserError(f"cannot read --stream {name}: {e.strerror or e}") from None
