"""What an input file is: its format and compression, from its name AND its first bytes.

A name and a content that disagree (``data.txt`` holding gzip data, ``x.gz`` holding plain
text, a ``.parquet`` that is not parquet) are refused with one line, so a compressed or binary
file is never ingested as if it were text. ``--format raw`` is the one way to take any file's
bytes as they are.

Formats: ``text`` (any other name; one document per file), ``jsonl`` (``.jsonl``, ``.ndjson``,
``.json``: one JSON object per line), ``parquet``, ``arrow`` (Arrow IPC file or stream, as
written by ``datasets.save_to_disk``), ``raw`` (``.bin``: bytes taken as they are). Compression
(``.gz``, ``.zst``/``.zstd``, ``.xz``, ``.bz2``) wraps ``text`` or ``jsonl``.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from bytelm.errors import UserError

FORMATS = ("auto", "text", "jsonl", "parquet", "arrow", "raw")
COMPRESSION_SUFFIXES = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd", ".xz": "xz", ".bz2": "bz2"}
FORMAT_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".arrow": "arrow",
    ".bin": "raw",
}
CHUNK = 1 << 20
# how many leading bytes are looked at to recognise a format
HEAD = 64
_MAGIC = (
    ("gzip", re.compile(rb"\x1f\x8b")),
    ("zstd", re.compile(rb"\x28\xb5\x2f\xfd")),
    ("xz", re.compile(rb"\xfd7zXZ\x00")),
    ("bz2", re.compile(rb"BZh[1-9]1AY&SY")),
    ("zip", re.compile(rb"PK\x03\x04")),
    ("7z", re.compile(rb"7z\xbc\xaf\x27\x1c")),
    ("parquet", re.compile(rb"PAR1")),
    ("arrow", re.compile(rb"ARROW1|\xff\xff\xff\xff")),
)
_COMPRESSED = frozenset(COMPRESSION_SUFFIXES.values())
_SUFFIX_OF = {"gzip": ".gz", "zstd": ".zst", "xz": ".xz", "bz2": ".bz2", "parquet": ".parquet", "arrow": ".arrow"}


def sniff(head: bytes) -> str | None:
    """The container format whose magic bytes ``head`` starts with, or None.

    Args:
        head: the first bytes of a file (at least 10 for bz2).
    Returns:
        "gzip", "zstd", "xz", "bz2", "zip", "7z", "parquet", "arrow" or None.
    """
    for kind, pattern in _MAGIC:
        if pattern.match(head):
            return kind
    return None


def split_suffixes(name: str) -> tuple[str, str | None]:
    """(format by name, compression by name) of a file name; format "text" when none is named.

    Args:
        name: a file name (only its suffixes matter), "-" for stdin.
    """
    low = name.lower()
    comp = None
    for suffix, c in COMPRESSION_SUFFIXES.items():
        if low.endswith(suffix):
            comp, low = c, low[: -len(suffix)]
            break
    fmt = next((f for s, f in FORMAT_SUFFIXES.items() if low.endswith(s)), "text")
    return fmt, comp


def detect(key: str, name: str, head: bytes, fmt: str = "auto") -> tuple[str, str | None]:
    """Decide how to read one file from its name and first bytes; refuse any disagreement.

    Args:
        key: the source as shown in messages (its path, or "-").
        name: its file name ("-" for stdin).
        head: its first ``HEAD`` bytes.
        fmt: one of ``FORMATS``; anything but "auto" overrides the format the name implies
            (a compression suffix still applies, except with "raw").
    Returns:
        (format, compression): format in ``FORMATS[1:]``, compression None or one of
        "gzip", "zstd", "xz", "bz2".
    Raises:
        UserError: unknown format, or name and content disagree.
    """
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    if fmt == "raw":
        return "raw", None  # asked for explicitly: the bytes as they are
    by_name, comp = split_suffixes(name)
    fmt = by_name if fmt == "auto" else fmt
    kind = sniff(head)
    if comp is not None:
        if kind != comp:
            what = f"{kind} data" if kind else "not compressed"
            raise UserError(f"{key}: named as {comp}-compressed but its content is {what}: rename it")
        if fmt in ("parquet", "arrow"):
            raise UserError(f"{key}: a compressed {fmt} file cannot be streamed: decompress it first")
        return fmt, comp
    if kind in _COMPRESSED:
        where = "stdin is" if key == "-" else f"{key}: content is"
        hint = "decompress it first" if key == "-" else f"rename it to end in {_SUFFIX_OF[kind]}"
        raise UserError(f"{where} {kind}-compressed but its name says {fmt}: {hint}")
    if kind in ("zip", "7z"):
        raise UserError(f"{key}: is a {kind} archive: extract it and prepare the files inside")
    if fmt in ("parquet", "arrow") and kind != fmt:
        raise UserError(f"{key}: named as {fmt} but its content is not {fmt} data")
    if fmt not in ("parquet", "arrow") and kind in ("parquet", "arrow"):
        raise UserError(f"{key}: content is {kind} data but its name says {fmt}: rename it to end in {_SUFFIX_OF[kind]}")
    return fmt, None


def check_decompressed(key: str, head: bytes) -> None:
    """Refuse a decompressed stream that is itself a compressed or container file.

    Raises:
        UserError: when head starts with known magic bytes (compressed twice, tar of gzip...).
    """
    kind = sniff(head)
    if kind is not None:
        raise UserError(f"{key}: decompressed content is {kind} data, not text: decompress or convert it first")


def _zstd_chunks(f: BinaryIO, key: str) -> Iterator[bytes]:
    """Decompress every zstd frame of f in turn; a file that ends inside a frame is an error."""
    try:
        import zstandard
    except ImportError:
        raise UserError(f"{key}: reading .zst needs the zstandard package: pip install 'bytelm[data]'") from None
    dctx = zstandard.ZstdDecompressor()
    obj, fed = dctx.decompressobj(), False
    try:
        while raw := f.read(CHUNK):
            while raw:
                out = obj.decompress(raw)
                fed = True
                if out:
                    yield out
                if not obj.eof:
                    break
                # the frame ended: what follows starts the next frame
                raw, obj, fed = obj.unused_data, dctx.decompressobj(), False
    except zstandard.ZstdError as e:
        raise UserError(f"{key}: corrupt zstd data: {e}") from None
    if fed:
        raise UserError(f"{key}: truncated zstd data (the file ends inside a frame)")


def decompressed_chunks(f: BinaryIO, compression: str | None, key: str) -> Iterator[bytes]:
    """The bytes of f, decompressed, in chunks of up to ``CHUNK`` bytes.

    Args:
        f: a binary file object positioned at the start.
        compression: None, "gzip", "zstd", "xz" or "bz2"; multi-member/multi-frame files are
            read whole.
        key: the source as shown in messages.
    Raises:
        UserError: corrupt or truncated compressed data.
    """
    if compression == "zstd":
        yield from _zstd_chunks(f, key)
        return
    opener: Callable[[BinaryIO], BinaryIO] | None = {
        "gzip": lambda x: gzip.GzipFile(fileobj=x, mode="rb"),
        "xz": lzma.LZMAFile,
        "bz2": bz2.BZ2File,
        None: None,
    }[compression]
    stream = f if opener is None else opener(f)
    try:
        while chunk := stream.read(CHUNK):
            yield chunk
    except EOFError:
        raise UserError(f"{key}: truncated {compression} data (the file ends inside a compressed stream)") from None
    except (OSError, lzma.LZMAError, zlib.error, ValueError) as e:
        if compression is None:
            raise UserError(f"cannot read {key}: {getattr(e, 'strerror', None) or e}") from None
        raise UserError(f"{key}: corrupt {compression} data: {e}") from None
