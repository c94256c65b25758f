"""Reading inputs of any supported format as documents of UTF-8 bytes, in constant memory.

:func:`resolve_inputs` turns files, folders and "-" (stdin) into a sorted list of
:class:`Input`; :func:`iter_documents` yields the documents of one input; :func:`iter_stream`
joins them with the document separator into the byte stream that ``prepare`` splits.

A document is a whole text file, one JSON line's field, or one table row's column. Text and
JSON lines must look like text: a NUL byte anywhere, or more than 3% control bytes (other
than tab, newline, CR, FF, VT, ESC) in the first 64 KiB, refuses the file (``.bin`` files and
``--format raw`` take any bytes); text that is not UTF-8 is kept with a warning. UTF-16/UTF-32 text with a byte-order mark is
converted to UTF-8, with a warning; without one it is refused. Formats are decided by :mod:`bytelm.data.formats`.
"""

from __future__ import annotations

import codecs
import fnmatch
import itertools
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bytelm.data.formats import HEAD, check_decompressed, decompressed_chunks, detect
from bytelm.errors import UserError

log = logging.getLogger(__name__)

STDIN = "-"
SNIFF = 1 << 16
# a byte order mark -> the codec that reads the text after it (UTF-32 first: its LE BOM starts like UTF-16's)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CONTROL = frozenset(set(range(32)) - {9, 10, 11, 12, 13, 27}) | {127}
_MAX_CONTROL = 0.03
DATASET_STATE = "state.json"
DATASET_DICT = "dataset_dict.json"


@dataclass(frozen=True)
class Input:
    """One input: its display key (absolute path string, or "-") and where to read it.

    A ``datasets.save_to_disk`` folder is one input whose ``arrow_files`` are read in order.
    """

    key: str
    path: Path | None  # None for stdin
    arrow_files: tuple[Path, ...] = ()

    @property
    def name(self) -> str:
        """The file or folder name ("-" for stdin) that split rules and formats look at."""
        return self.path.name if self.path is not None else STDIN


# --- finding inputs ----------------------------------------------------------------------------

def _dataset_files(folder: Path) -> tuple[Path, ...]:
    """The arrow files of a ``datasets.save_to_disk`` folder, in the order its state.json lists."""
    try:
        state = json.loads((folder / DATASET_STATE).read_text(encoding="utf-8"))
        names = [d["filename"] for d in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{folder}: unreadable datasets {DATASET_STATE}: {e}") from None
    files = tuple(folder / n for n in names)
    missing = [f.name for f in files if not f.is_file()]
    if missing or not files:
        raise UserError(f"{folder}: datasets folder lists missing arrow files: {', '.join(missing) or 'none'}")
    return files


def _dataset_inputs(folder: Path) -> list[Input] | None:
    """Inputs of a datasets folder (one per split of a DatasetDict), or None if it is not one."""
    if (folder / DATASET_DICT).is_file():
        try:
            splits = json.loads((folder / DATASET_DICT).read_text(encoding="utf-8"))["splits"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UserError(f"{folder}: unreadable {DATASET_DICT}: {e}") from None
        return [x for s in splits for x in (_dataset_inputs(folder / s) or [])]
    if (folder / DATASET_STATE).is_file() and (folder / "dataset_info.json").is_file():
        return [Input(folder.absolute().as_posix(), folder.absolute(), _dataset_files(folder))]
    return None


def resolve_inputs(sources: list[str], pattern: str, out_dir: Path) -> list[Input]:
    """Resolve files, folders and "-" into a sorted, de-duplicated list of inputs.

    Args:
        sources: paths of files or folders, or "-" for stdin. Folders are walked recursively
            for files matching ``pattern`` (hidden files and folders and out_dir skipped); a
            ``datasets.save_to_disk`` folder (or DatasetDict, one input per split) found this
            way is one input.
        pattern: fnmatch pattern for file names inside folders.
        out_dir: the output folder, never read as input.
    Returns:
        Inputs sorted by key.
    Raises:
        UserError: no sources, a missing source, a folder without matching files.
    """
    if not sources:
        raise UserError("no sources given")
    out_real = out_dir.resolve()
    found: dict[str, Input] = {}
    seen_real: set[Path] = set()

    def add(inp: Input) -> None:
        real = inp.path.resolve()
        if real in seen_real:
            log.warning("source %s given more than once; using it once", inp.path)
            return
        seen_real.add(real)
        found[inp.key] = inp

    for src in sources:
        if src == STDIN:
            if STDIN in found:
                raise UserError("stdin ('-') given more than once")
            found[STDIN] = Input(STDIN, None)
            continue
        path = Path(src).expanduser()
        if path.is_file():
            add(Input(path.absolute().as_posix(), path.absolute()))
        elif path.is_dir():
            matched: list[Input] = []
            for dirpath, dirnames, filenames in os.walk(path):
                datasets = _dataset_inputs(Path(dirpath))
                if datasets is not None:
                    matched += datasets
                    dirnames[:] = []
                    continue
                # Hidden folders (.git, our own temp dirs) and the output folder are never input.
                dirnames[:] = [
                    d
                    for d in dirnames
                    if not d.startswith(".") and (Path(dirpath) / d).resolve() != out_real
                ]
                for f in filenames:
                    if not f.startswith(".") and fnmatch.fnmatch(f, pattern):
                        p = (Path(dirpath) / f).absolute()
                        matched.append(Input(p.as_posix(), p))
            if not matched:
                raise UserError(f"no files matching {pattern!r} under {src}")
            for inp in matched:
                add(inp)
        elif path.exists():
            raise UserError(f"source is neither a file nor a folder: {src}")
        else:
            raise UserError(f"source not found: {src}")
    return [found[k] for k in sorted(found)]


# --- checking text -----------------------------------------------------------------------------

def _bom_codec(head: bytes) -> str | None:
    return next((codec for bom, codec in _BOMS if head.startswith(bom)), None)


def _non_text_reason(head: bytes) -> str | None:
    """Why the first bytes of a stream are not text (None when they look like text)."""
    nul = head.find(b"\0")
    if nul != -1:
        odd = head[1::2].count(0) / max(1, len(head) // 2)
        even = head[0::2].count(0) / max(1, (len(head) + 1) // 2)
        if max(odd, even) > 0.3 and min(odd, even) < 0.05:
            return "looks like UTF-16 text without a byte-order mark: convert it to UTF-8 (iconv -t UTF-8)"
        return f"has a NUL byte at offset {nul}"
    # random or compressed bytes hold ~10% control bytes, text in any encoding almost none
    share = sum(head.count(c) for c in _CONTROL) / max(1, len(head))
    if share > _MAX_CONTROL:
        return f"{share:.0%} of its first {len(head):,} bytes are control bytes"
    return None


def _valid_utf8(head: bytes) -> bool:
    """Whether head is UTF-8, allowing a character cut off at its end."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.reason == "unexpected end of data" and e.start >= len(head) - 3
    return True


def _refuse_binary(key: str, reason: str) -> UserError:
    return UserError(f"{key}: not text ({reason}); name it *.bin or pass --format raw to take its bytes as they are")


def _checked_text(key: str, chunks: Iterator[bytes], allow_utf16: bool) -> Iterator[bytes]:
    """Chunks of a stream that must be text: refused if binary, UTF-16/32 converted to UTF-8."""
    buf: list[bytes] = []
    size = 0
    for chunk in chunks:
        buf.append(chunk)
        size += len(chunk)
        if size >= SNIFF:
            break
    head = b"".join(buf)
    codec = _bom_codec(head)
    if codec is not None:
        if not allow_utf16:
            raise UserError(f"{key}: is {codec.upper()} text; JSON lines must be UTF-8")
        log.warning("%s is %s text: converted to UTF-8 (the byte-order mark dropped)", key, codec.upper())
        yield from _transcode(key, codec, head, chunks)
        return
    reason = _non_text_reason(head[:SNIFF])
    if reason is not None:
        raise _refuse_binary(key, reason)
    if not _valid_utf8(head[:SNIFF]):
        log.warning("%s is not valid UTF-8 (another 8-bit encoding?): its bytes are taken as they are", key)
    offset = 0
    for c in itertools.chain((head,), chunks):
        nul = c.find(b"\0")
        if nul != -1:
            raise _refuse_binary(key, f"has a NUL byte at offset {offset + nul}")
        offset += len(c)
        yield c


def _transcode(key: str, codec: str, head: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Decode UTF-16/32 chunks (BOM first) into UTF-8 chunks."""
    dec = codecs.getincrementaldecoder(codec)("strict")
    try:
        for c in (head, *chunks):
            text = dec.decode(c)
            if text:
                yield text.encode("utf-8")
        tail = dec.decode(b"", final=True)
    except UnicodeError as e:
        raise UserError(f"{key}: invalid {codec.upper()} text: {e.reason} at byte {e.start}") from None
    if tail:
        yield tail.encode("utf-8")


# --- documents ---------------------------------------------------------------------------------

def _field_text(where: str, record, field: str) -> bytes:
    """The UTF-8 bytes of ``record[field]`` (a dotted field walks nested objects)."""
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if field in record:
        value = record[field]
    else:
        value = record
        for part in field.split("."):
            if not isinstance(value, dict) or part not in value:
                keys = ", ".join(list(record)[:10]) or "none"
                raise UserError(f"{where}: no field {field!r} (fields: {keys}); choose one with --text-field")
            value = value[part]
    if not isinstance(value, str):
        kind = "null" if value is None else type(value).__name__
        raise UserError(f"{where}: field {field!r} is {kind}, not a string")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise UserError(f"{where}: field {field!r} holds an invalid character ({e.reason})") from None


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Split a chunked stream at b"\\n" (the newline itself dropped)."""
    pending: list[bytes] = []
    for chunk in chunks:
        start = 0
        while (nl := chunk.find(b"\n", start)) != -1:
            pending.append(chunk[start:nl])
            yield b"".join(pending)
            pending.clear()
            start = nl + 1
        if start < len(chunk):
            pending.append(chunk[start:])
    if pending:
        yield b"".join(pending)


def _jsonl_documents(key: str, chunks: Iterator[bytes], field: str) -> Iterator[bytes]:
    for lineno, line in enumerate(_lines(chunks), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            if lineno == 1 and line.lstrip().startswith(b"["):
                raise UserError(f"{key}:1: a JSON array, not JSON lines: convert it (jq -c '.[]')") from None
            msg = e.msg if isinstance(e, json.JSONDecodeError) else str(e)
            col = f" (column {e.colno})" if isinstance(e, json.JSONDecodeError) else ""
            raise UserError(f"{key}:{lineno}: bad JSON: {msg}{col}") from None
        yield _field_text(f"{key}:{lineno}", record, field)


def _pyarrow(key: str):
    try:
        import pyarrow
        import pyarrow.ipc  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise UserError(f"{key}: reading parquet/arrow needs pyarrow: pip install 'bytelm[data]'") from None
    return pyarrow


def _column(key: str, names: list[str], field: str) -> str:
    """The table column that holds ``field`` (its first dotted part when no column has the full name)."""
    col = field if field in names else field.split(".")[0]
    if col not in names:
        raise UserError(f"{key}: no column {field!r} (columns: {', '.join(names[:10]) or 'none'}); choose one with --text-field")
    return col


def _table_documents(key: str, batches: Iterable, col: str, field: str, start_row: int = 0) -> Iterator[bytes]:
    """Documents from record batches: column ``col`` of each row (``field`` walks a struct)."""
    row = start_row
    for batch in batches:
        for value in batch.column(batch.schema.get_field_index(col)).to_pylist():
            record = {col: value}
            yield _field_text(f"{key}: row {row}", record, field)
            row += 1


def _parquet_documents(inp: Input, field: str, on_read: Callable[[int], None]) -> Iterator[bytes]:
    pa = _pyarrow(inp.key)
    try:
        pf = pa.parquet.ParquetFile(inp.path)
    except (pa.ArrowException, OSError) as e:
        raise UserError(f"cannot read {inp.key} as parquet: {e}") from None
    col = _column(inp.key, pf.schema_arrow.names, field)
    share = inp.path.stat().st_size // max(1, pf.num_row_groups)
    row = 0
    for i in range(pf.num_row_groups):
        # one row group at a time keeps memory bounded by the largest row group
        try:
            table = pf.read_row_group(i, columns=[col])
        except (pa.ArrowException, OSError) as e:
            raise UserError(f"cannot read {inp.key} row group {i}: {e}") from None
        yield from _table_documents(inp.key, table.to_batches(), col, field, row)
        row += table.num_rows
        del table
        on_read(share)


def _arrow_documents(inp: Input, field: str, on_read: Callable[[int], None]) -> Iterator[bytes]:
    pa = _pyarrow(inp.key)
    row = 0
    for path in inp.arrow_files or (inp.path,):
        where = inp.key if not inp.arrow_files else f"{inp.key}/{path.name}"
        try:
            with pa.OSFile(str(path)) as f:
                if f.read(6) == b"ARROW1":
                    f.seek(0)
                    reader = pa.ipc.open_file(f)
                    batches: Iterable = (reader.get_batch(i) for i in range(reader.num_record_batches))
                else:
                    f.seek(0)
                    reader = pa.ipc.open_stream(f)
                    batches = reader
                col = _column(where, reader.schema.names, field)
                for batch in batches:
                    yield from _table_documents(where, (batch,), col, field, row)
                    row += batch.num_rows
        except (pa.ArrowException, OSError) as e:
            raise UserError(f"cannot read {where} as arrow: {e}") from None
        on_read(path.stat().st_size)


class _Reader:
    """A binary file object that reports how many bytes were read, with its head put back."""

    def __init__(self, f: BinaryIO, on_read: Callable[[int], None]):
        self.f, self.on_read, self.head = f, on_read, b""

    def read(self, n: int = -1) -> bytes:
        if self.head:
            out, self.head = (self.head, b"") if n < 0 or n >= len(self.head) else (self.head[:n], self.head[n:])
            return out
        data = self.f.read(n)
        self.on_read(len(data))
        return data

    def peek_head(self) -> bytes:
        """Read the first HEAD bytes and keep them to be read again."""
        buf = b""
        while len(buf) < HEAD and (got := self.f.read(HEAD - len(buf))):
            buf += got
        self.on_read(len(buf))
        self.head = buf
        return buf


@dataclass(frozen=True)
class Opened:
    """How one input is read: its format, compression, and whether its stream is its own bytes."""

    format: str
    compression: str | None
    verbatim: bool  # the joined stream is byte for byte the file itself (plain UTF-8 text or raw)


def iter_documents(
    inp: Input,
    *,
    fmt: str = "auto",
    text_field: str = "text",
    on_read: Callable[[int], None] | None = None,
    opened: list[Opened] | None = None,
) -> Iterator[Iterator[bytes]]:
    """The documents of one input, each as an iterator of UTF-8 byte chunks.

    A text or raw file is one document (read in 1 MiB chunks); a JSON line, parquet or arrow
    row is one document of one chunk. Consume each document before asking for the next.

    Args:
        inp: the input (from :func:`resolve_inputs`).
        fmt: "auto" (by name and magic bytes) or a format of ``formats.FORMATS``.
        text_field: the JSON field or table column of the text; a dotted name walks nested objects.
        on_read: called with the number of input bytes consumed, for progress bars.
        opened: if given, an :class:`Opened` is appended once the format is known.
    Raises:
        UserError: unreadable, mislabelled or binary input, bad JSON, missing field (with the
            file and line or row).
    """
    on_read = on_read or (lambda n: None)
    if inp.arrow_files:
        if opened is not None:
            opened.append(Opened("arrow", None, False))
        yield from (iter((d,)) for d in _arrow_documents(inp, text_field, on_read))
        return
    if inp.path is None:
        raw: BinaryIO = sys.stdin.buffer
    else:
        try:
            raw = open(inp.path, "rb")
        except OSError as e:
            raise UserError(f"cannot read {inp.key}: {e.strerror or e}") from None
    try:
        reader = _Reader(raw, on_read)
        try:
            head = reader.peek_head()
        except OSError as e:
            raise UserError(f"cannot read {inp.key}: {e.strerror or e}") from None
        form, comp = detect(inp.key, inp.name, head, fmt) if head else ("text", None)
        verbatim = (inp.path is not None and comp is None and form in ("text", "raw")
                    and (form == "raw" or _bom_codec(head) is None))
        if opened is not None:
            opened.append(Opened(form, comp, verbatim))
        if form in ("parquet", "arrow"):
            if inp.path is None:
                raise UserError(f"stdin cannot be read as {form}: give the file")
            documents = _parquet_documents if form == "parquet" else _arrow_documents
            yield from (iter((d,)) for d in documents(inp, text_field, on_read))
            return
        chunks = decompressed_chunks(reader, comp, inp.key)
        if comp is not None:
            chunks = _check_first(inp.key, chunks)
        if form == "raw":
            yield chunks
        elif form == "text":
            yield _checked_text(inp.key, chunks, allow_utf16=True)
        else:
            yield from (iter((d,)) for d in _jsonl_documents(inp.key, _checked_text(inp.key, chunks, False), text_field))
    finally:
        if raw is not sys.stdin.buffer:
            raw.close()


def _check_first(key: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Pass chunks through, refusing a decompressed stream that starts with container magic."""
    first = True
    for c in chunks:
        if first and c:
            check_decompressed(key, c[:HEAD])
            first = False
        yield c


class SepJoin:
    """Decides what separator bytes go between documents in a stream.

    Before each document but the first, the fewest bytes are written that make the text before
    end with ``sep``: nothing if it already does, the rest of ``sep`` if it ends with a start
    of it (``b"\\n\\n"`` after a final newline adds one newline), else all of ``sep``. So
    with the default ``b"\\n"`` files that end in a newline are joined as they are.
    """

    def __init__(self, sep: bytes):
        self.sep = sep
        self.tail = b""
        self.started = False

    def before_document(self) -> bytes:
        """The bytes to write before the next document (a tail of sep, maybe empty)."""
        if not self.started:
            return b""
        k = next(k for k in range(len(self.sep), -1, -1) if self.tail.endswith(self.sep[:k]))
        return self.sep[k:]

    def wrote(self, chunk: bytes) -> None:
        """Record that chunk was written."""
        if chunk:
            self.started = True
            self.tail = (self.tail + chunk)[-len(self.sep):] if self.sep else b""

    def reset(self) -> None:
        """Forget what was written: the next document gets no separator before it."""
        self.tail, self.started = b"", False


def iter_stream(inp: Input, doc_sep: bytes, **kwargs) -> Iterator[bytes]:
    """The byte stream of one input: its documents joined by ``doc_sep`` (see :class:`SepJoin`).

    Args:
        inp: the input.
        doc_sep: the document separator.
        **kwargs: passed to :func:`iter_documents`.
    Returns:
        Chunks of the stream; a raw input is its bytes as they are.
    """
    join = SepJoin(doc_sep)
    for doc in iter_documents(inp, **kwargs):
        first = True
        for chunk in doc:
            if first and chunk:
                sep = join.before_document()
                if sep:
                    yield sep
                    join.wrote(sep)
                first = False
            join.wrote(chunk)
            yield chunk
