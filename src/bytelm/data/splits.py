"""Corpus preparation: turn text files into ``train.bin``/``val.bin``/``test.bin`` plus ``meta.json``.

A prepared corpus is a folder holding the three splits as raw bytes (one uint8 per byte, no
header) and a ``meta.json`` that says where every byte came from, so a run can be traced back
to the exact input files (sha256 of each source and of each output).

Split rules (``split_rule``):

- ``"auto"``: a file whose *name* names a split goes whole into that split (see
  :func:`split_from_name`); a file named exactly ``enwik8`` gets the standard enwik8 split
  (:func:`split_enwik8`); every other file is cut 90/5/5 by bytes at line boundaries
  (:func:`fraction_cuts`).
- ``"fraction"``: every file is cut 90/5/5, whatever its name.
- ``"enwik8"``: every file gets the standard enwik8 split (so it must be 100,000,000 bytes).

Files are processed, and their parts appended to the splits, in sorted order of their
absolute path string (stdin, ``"-"``, sorts as ``"-"``). Any input format of
:mod:`bytelm.data.sources` (text, JSON lines, parquet, arrow, compressed) is first turned into
its byte stream (documents joined by ``doc_sep``, see ``sources.SepJoin``), which the rules
split; the parts of two inputs in a split are separated the same way (raw inputs excepted:
nothing is inserted next to them). Everything streams through 1 MiB
chunks, so memory stays constant whatever the input size.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from bytelm.data.formats import CHUNK
from bytelm.data.sources import Input, SepJoin, iter_stream, resolve_inputs
from bytelm.errors import UserError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
META_NAME = "meta.json"
META_FORMAT = "bytelm-corpus/1"
SPLIT_RULES = ("auto", "fraction", "enwik8")

ENWIK8_MD5 = "a1fa5ffddb56f4953e226637dabbb36a"
ENWIK8_NAME = "enwik8"

# Tokens (runs of letters in the lowercased file name) that assign a whole file to a split.
_NAME_TOKENS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
# A fractional cut moves forward to the next newline only if one is this close; a longer search
# would let one huge line swallow most of the following (small) split.
_MAX_SLACK = 1 << 20
DEFAULT_DOC_SEP = b"\n"
# temp folders: .NAME.tmp-PID-HEX (being written) and .NAME.old-PID-HEX (the replaced corpus)
_TEMP_RE = re.compile(r"(tmp|old)-(?:(\d+)-)?[0-9a-f]{12}")
# a temp folder without a PID (written by an older bytelm) is stale after this long
_LEGACY_STALE_S = 3600


def split_from_name(name: str) -> str | None:
    """Which split a file's name assigns it to, matching whole tokens (``interval.txt`` is no val).

    Args:
        name: a file name or path; only the last component is looked at.
    Returns:
        "train", "val", "test", or None when the name names no split.
    Raises:
        UserError: when the name names two different splits (e.g. ``train_test.txt``).
    """
    base = re.split(r"[\\/]", name)[-1]
    tokens = re.findall(r"[a-z]+", base.lower())
    found = {_NAME_TOKENS[t] for t in tokens if t in _NAME_TOKENS}
    if len(found) > 1:
        raise UserError(
            f"file name {base!r} names several splits ({', '.join(sorted(found))}): "
            "rename it or use split_rule 'fraction'"
        )
    return found.pop() if found else None


def split_enwik8(
    data: bytes,
    n_train: int = 90_000_000,
    n_val: int = 5_000_000,
    n_test: int = 5_000_000,
    md5: str | None = ENWIK8_MD5,
) -> tuple[bytes, bytes, bytes]:
    """Standard enwik8 split: the first n_train bytes, the next n_val, the last n_test.

    Args:
        data: the whole file; must be exactly n_train + n_val + n_test bytes.
        n_train, n_val, n_test: split sizes in bytes.
        md5: expected md5 hex digest; a mismatch only logs a warning. None skips the check.
    Returns:
        (train, val, test) byte strings.
    Raises:
        UserError: when len(data) is not n_train + n_val + n_test.
    """
    a, b = _enwik8_cuts(len(data), lambda: hashlib.md5(data).hexdigest(), n_train, n_val, n_test, md5)
    return data[:a], data[a:b], data[b:]


def _enwik8_cuts(
    n: int, md5_of: Callable[[], str], n_train: int, n_val: int, n_test: int, md5: str | None
) -> tuple[int, int]:
    """Check size n (UserError) and md5 (warning) of an enwik8-style file; return its two cut offsets."""
    total = n_train + n_val + n_test
    if n != total:
        raise UserError(f"enwik8 must be exactly {total:,} bytes, got {n:,}")
    if md5 is not None:
        got = md5_of()
        if got != md5:
            log.warning("enwik8 md5 is %s, expected %s: not the standard file", got, md5)
    return n_train, n_train + n_val


def _char_boundary(data: bytes, pos: int) -> int:
    """Move pos back to the start of the UTF-8 character it falls in (at most 3 bytes)."""
    p = pos
    for _ in range(3):
        if 0 < p < len(data) and (data[p] & 0xC0) == 0x80:
            p -= 1
        else:
            break
    if 0 < p < len(data) and (data[p] & 0xC0) == 0x80:
        return pos  # not UTF-8 here (4+ continuation bytes): there is no character to keep whole
    return p


def _line_cut(data: bytes, pos: int, slack: int) -> int:
    """Cut just after the first newline in [pos, pos + slack), else at pos on a character boundary."""
    n = len(data)
    if pos <= 0:
        return 0
    if pos >= n:
        return n
    nl = data.find(b"\n", pos, min(n, pos + slack))
    if nl != -1:
        return nl + 1
    return _char_boundary(data, pos)


def fraction_cuts(data: bytes, val_frac: float = 0.05, test_frac: float = 0.05) -> tuple[int, int]:
    """Where to cut one file into train/val/test by bytes, at line boundaries.

    Each cut goes just after the first ``\\n`` at or after its fractional position, provided one
    lies within half the nominal size of the following part (at most 1 MiB); otherwise it goes
    exactly at the position, moved back to the start of a UTF-8 character if it fell inside one.

    Args:
        data: the file's bytes (N of them), or any object with ``len``, ``find`` and integer
            indexing like bytes (prepare passes a view that reads windows of a file).
        val_frac, test_frac: nominal fractions of val and test.
    Returns:
        (a, b) with 0 <= a <= b <= N: train = data[:a], val = data[a:b], test = data[b:].
    """
    n = len(data)
    # The epsilon keeps float error (1 - 0.05 - 0.05 = 0.8999...) from moving a cut one byte early.
    p1 = int(n * (1.0 - val_frac - test_frac) + 1e-6)
    p2 = int(n * (1.0 - test_frac) + 1e-6)
    a = _line_cut(data, p1, min(_MAX_SLACK, max(1, (p2 - p1) // 2)))
    b = _line_cut(data, p2, min(_MAX_SLACK, max(1, (n - p2) // 2)))
    return a, max(a, b)


def _describe_rule(split_rule: str, val_frac: float, test_frac: float) -> str:
    """The split rule in words, for meta.json."""
    tr = 1.0 - val_frac - test_frac
    frac = (
        f"cut by bytes {tr:.0%}/{val_frac:.0%}/{test_frac:.0%} (train/val/test) just after the "
        "first newline at or after each cut position (exactly at the position, on a UTF-8 "
        "character boundary, if no newline is near)"
    )
    enwik = "the standard enwik8 split: first 90,000,000 bytes train, next 5,000,000 val, last 5,000,000 test"
    if split_rule == "fraction":
        return f"every file is {frac}; parts concatenated in sorted path order"
    if split_rule == "enwik8":
        return f"every file gets {enwik}"
    return (
        "a file whose name has a token train/training, val/valid/validation or test/testing goes "
        f"whole to that split; a file named enwik8 gets {enwik}; every other file is {frac}; "
        "parts concatenated in sorted path order"
    )


class _SplitWriter:
    """Appends parts of inputs to the three split files, hashing as it goes; between the parts
    of two inputs in a split it writes the document separator (see :class:`SepJoin`)."""

    def __init__(self, folder: Path, doc_sep: bytes):
        self.folder = folder
        self.files: dict[str, BinaryIO] = {s: open(folder / f"{s}.bin", "wb") for s in SPLITS}
        self.hashes = {s: hashlib.sha256() for s in SPLITS}
        self.sizes = {s: 0 for s in SPLITS}
        self.separators = {s: 0 for s in SPLITS}
        self.joins = {s: SepJoin(doc_sep) for s in SPLITS}

    def _write(self, split: str, chunk: bytes) -> None:
        self.files[split].write(chunk)
        self.hashes[split].update(chunk)
        self.sizes[split] += len(chunk)
        self.joins[split].wrote(chunk)

    def write_part(self, split: str, chunks: Iterable[bytes], text: bool = True) -> None:
        """Append one input's part to split; a raw (not text) part gets no separator on either side."""
        join = self.joins[split]
        if not text:
            join.reset()
        sep = join.before_document()
        if sep:
            self._write(split, sep)
            self.separators[split] += 1
        for chunk in chunks:
            self._write(split, chunk)
        if not text:
            join.reset()

    def close(self) -> None:
        for f in self.files.values():
            if not f.closed:
                f.flush()
                os.fsync(f.fileno())
                f.close()

    def abort(self) -> None:
        for f in self.files.values():
            f.close()


class _FileView:
    """The bytes of an open file as far as :func:`fraction_cuts` reads them (``len``, ``find`` in
    a window, one byte by index), without reading the file whole."""

    def __init__(self, f: BinaryIO, n: int):
        self.f, self.n = f, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        self.f.seek(i)
        return self.f.read(1)[0]

    def find(self, sub: bytes, start: int, end: int) -> int:
        self.f.seek(start)
        i = self.f.read(max(0, end - start)).find(sub)
        return -1 if i < 0 else start + i


def _read_range(f: BinaryIO, a: int, b: int) -> Iterable[bytes]:
    """Bytes [a, b) of f in chunks."""
    f.seek(a)
    while a < b:
        chunk = f.read(min(CHUNK, b - a))
        if not chunk:
            raise UserError(f"{getattr(f, 'name', 'input')} changed while it was being prepared")
        a += len(chunk)
        yield chunk


def _split_one(
    inp: Input, data, md5_of: Callable[[], str], split_rule: str, val_frac: float, test_frac: float
) -> tuple[str, dict[str, tuple[int, int]]]:
    """Decide how one input is split: (rule used, {split: (start, end) byte range in its stream}).

    ``data`` is the stream (bytes or a :class:`_FileView`), ``md5_of`` its md5 hex digest.
    """
    n = len(data)
    name = inp.name
    if split_rule == "enwik8" or (split_rule == "auto" and name == ENWIK8_NAME):
        a, b = _enwik8_cuts(n, md5_of, 90_000_000, 5_000_000, 5_000_000, ENWIK8_MD5)
        return "enwik8", {"train": (0, a), "val": (a, b), "test": (b, n)}
    if split_rule == "auto":
        named = split_from_name(name) if inp.path is not None else None
        if named is not None:
            return "name", {named: (0, n)}
    a, b = fraction_cuts(data, val_frac, test_frac)
    ranges = {"train": (0, a), "val": (a, b), "test": (b, n)}
    return "fraction", {s: r for s, r in ranges.items() if r[1] > r[0]}


def _check_out_dir(out_dir: Path) -> None:
    """Refuse to replace anything but a previously prepared corpus (or an empty folder)."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise UserError(f"output path exists and is not a folder: {out_dir}")
    if (out_dir / META_NAME).is_file():
        return
    if any(out_dir.iterdir()):
        raise UserError(
            f"output folder {out_dir} has other content and no {META_NAME}; refusing to overwrite it"
        )


def _write_meta(folder: Path, meta: dict) -> None:
    """Write meta.json (pretty, stable key order) and fsync it."""
    text = json.dumps(meta, indent=2, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a source path that is not UTF-8 (surrogate escapes): \u-escaped
        text = json.dumps(meta, indent=2, ensure_ascii=True)
    with open(folder / META_NAME, "w", encoding="utf-8") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())


def _temp_name(out_dir: Path, kind: str) -> Path:
    """A temp folder beside out_dir that names this process, so a later run knows when it is stale."""
    return out_dir.parent / f".{out_dir.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _clean_stale(out_dir: Path) -> None:
    """Remove the temp folders of a killed prepare of out_dir (its process is gone).

    A stale ``.old-`` folder is the previous corpus of a prepare killed between its two renames:
    when out_dir is missing it is put back instead of removed.
    """
    if not out_dir.parent.is_dir():
        return
    prefix = f".{out_dir.name}."
    for p in sorted(out_dir.parent.iterdir()):
        m = _TEMP_RE.fullmatch(p.name[len(prefix):]) if p.name.startswith(prefix) else None
        if m is None or not p.is_dir():
            continue
        if m[2] is not None:
            if _pid_alive(int(m[2])):
                continue
        elif time.time() - p.stat().st_mtime < _LEGACY_STALE_S:
            continue
        if m[1] == "old" and not out_dir.exists():
            os.replace(p, out_dir)
            log.warning("restored %s from %s, left by a killed prepare", out_dir, p.name)
        else:
            shutil.rmtree(p, ignore_errors=True)
            log.info("removed %s, left by a killed prepare", p)


# a write that the machine refused (full, read-only, too large, not allowed), not bad input
_WRITE_ERRNOS = frozenset(getattr(errno, n) for n in ("ENOSPC", "EDQUOT", "EROFS", "EFBIG",
                                                      "EACCES", "EPERM", "EIO")
                          if hasattr(errno, n))


def _os_error(e: OSError, out_dir: Path) -> UserError:
    """One line for an OS error while building out_dir (its temp folder has been removed)."""
    where = f" ({e.filename})" if e.filename else ""
    return UserError(f"cannot prepare {out_dir}: {e.strerror or e}{where}; nothing was "
                     "changed there")


def _install(tmp: Path, out_dir: Path) -> None:
    """Move the finished temp folder to out_dir, replacing an old prepared corpus there."""
    _check_out_dir(out_dir)
    old = None
    if out_dir.exists():
        # Keep the old corpus aside until the new one is in place, so a crash never leaves neither.
        old = _temp_name(out_dir, "old")
        os.replace(out_dir, old)
    try:
        os.replace(tmp, out_dir)
    except BaseException:
        if old is not None:
            os.replace(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _stream_to_file(
    inp: Input, spool: Path, doc_sep: bytes, fmt: str, text_field: str, want_md5: bool, on_read
) -> tuple[dict, Path]:
    """Run one input's byte stream through its checks, hashing it; write it to spool unless the
    stream is the input file itself. Returns (its meta entry so far, the file holding the stream)."""
    opened: list = []
    sha, md5 = hashlib.sha256(), (hashlib.md5() if want_md5 else None)
    n, out = 0, None
    try:
        for chunk in iter_stream(inp, doc_sep, fmt=fmt, text_field=text_field, on_read=on_read, opened=opened):
            if not opened[0].verbatim:
                out = out or open(spool, "wb")
                out.write(chunk)
            sha.update(chunk)
            if md5 is not None:
                md5.update(chunk)
            n += len(chunk)
    finally:
        if out is not None:
            out.close()
    form = opened[0] if opened else None
    if n == 0:
        detail = "" if form is None or form.verbatim else f" (no text in it as {form.format})"
        raise UserError(f"source is empty: {inp.key}{detail}")
    entry: dict = {"path": inp.key, "format": form.format}
    if form.compression is not None:
        entry["compression"] = form.compression
    entry.update(bytes=n, sha256=sha.hexdigest())
    if not form.verbatim and inp.path is not None and inp.path.is_file():
        entry.update(file_bytes=inp.path.stat().st_size, file_sha256=_file_sha256(inp.path))
    if inp.arrow_files:
        entry["files"] = [p.name for p in inp.arrow_files]
    if md5 is not None:
        entry["_md5"] = md5.hexdigest()
    return entry, (spool if out is not None else inp.path)


def format_sep(sep: bytes) -> str:
    """A document separator written the way ``--doc-sep`` takes it (``\\n``, ``\\x1e``...)."""
    named = {b"\n": "\\n", b"\t": "\\t", b"\r": "\\r", b"\\": "\\\\"}
    return "".join(named.get(bytes([c]), chr(c) if 32 <= c < 127 else f"\\x{c:02x}") for c in sep)


def parse_sep(text: str) -> bytes:
    """The bytes of a ``--doc-sep`` value: UTF-8 text with the escapes \\n \\t \\r \\0 \\\\ \\xHH.

    Raises:
        UserError: an unknown escape.
    """
    out, i = bytearray(), 0
    escapes = {"n": b"\n", "t": b"\t", "r": b"\r", "0": b"\0", "\\": b"\\"}
    while i < len(text):
        c = text[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
        elif text[i + 1 : i + 2] in escapes:
            out += escapes[text[i + 1]]
            i += 2
        elif re.fullmatch(r"x[0-9a-fA-F]{2}", text[i + 1 : i + 4]):
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        else:
            raise UserError(f"bad escape in document separator {text!r}: use \\n \\t \\r \\0 \\\\ or \\xHH")
    return bytes(out)


def prepare(
    sources: list[str],
    out_dir: str | Path,
    *,
    split_rule: str = "auto",
    pattern: str = "*",
    val_frac: float = 0.05,
    test_frac: float = 0.05,
    extra_meta: dict | None = None,
    doc_sep: bytes = DEFAULT_DOC_SEP,
    fmt: str = "auto",
    text_field: str = "text",
    progress: bool = False,
) -> dict:
    """Build a prepared corpus (train/val/test .bin + meta.json) in out_dir, atomically.

    Args:
        sources: files of any supported format, folders (files matching ``pattern`` by name,
            recursively, hidden files and folders skipped; ``datasets`` folders whole) or "-"
            for stdin.
        out_dir: output folder; created, or replaced if it holds a previously prepared corpus.
            Temp folders left beside it by a killed prepare are removed first.
        split_rule: "auto", "fraction" or "enwik8" (see the module docstring).
        pattern: fnmatch pattern for file names inside folders.
        val_frac, test_frac: fractions for files cut by bytes.
        extra_meta: JSON-able dict stored under meta["extra"] (e.g. provenance of a cached corpus).
        doc_sep: what separates two documents (JSON lines, rows, files, the parts of two files
            in a split): the fewest bytes that make the text before end with it are written
            (``sources.SepJoin``); b"" joins them as they are.
        fmt: "auto" (by file name and magic bytes) or one format for every input: "text",
            "jsonl", "parquet", "arrow", "raw" (bytes as they are, no checks).
        text_field: the JSON field / table column holding the text (dotted for nested objects).
        progress: show a tqdm bar over the input bytes (only when stderr is a terminal).
    Returns:
        The meta dict written to meta.json.
    Raises:
        UserError: unknown rule, bad fractions, missing/empty/unreadable/binary/mislabelled
            source, bad JSON line or missing field, empty split, foreign out_dir.
    """
    if split_rule not in SPLIT_RULES:
        raise UserError(f"unknown split rule {split_rule!r} (choose from {', '.join(SPLIT_RULES)})")
    if not (0.0 <= val_frac < 1.0 and 0.0 <= test_frac < 1.0 and val_frac + test_frac < 1.0):
        raise UserError(f"bad split fractions val={val_frac} test={test_frac}: need 0 <= each and sum < 1")
    out_dir = Path(out_dir).expanduser().absolute()
    _clean_stale(out_dir)
    _check_out_dir(out_dir)  # fail before doing any work
    srcs = resolve_inputs(list(sources), pattern, out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)

    from tqdm import tqdm

    sizes = [sum(p.stat().st_size for p in s.arrow_files) if s.arrow_files else s.path.stat().st_size
             for s in srcs if s.path is not None]
    bar = tqdm(total=sum(sizes) if len(sizes) == len(srcs) else None, unit="B", unit_scale=True,
               desc="prepare", disable=None if progress else True, leave=False)
    # A plain mkdir (not mkdtemp, which forces mode 0700) so the corpus gets the usual umask.
    tmp = _temp_name(out_dir, "tmp")
    try:
        tmp.mkdir()
    except OSError as e:
        bar.close()
        raise _os_error(e, out_dir) from None
    writer = None
    spool = tmp / ".stream"
    try:
        writer = _SplitWriter(tmp, doc_sep)
        entries = []
        for src in srcs:
            want_md5 = split_rule == "enwik8" or (split_rule == "auto" and src.name == ENWIK8_NAME)
            entry, stream = _stream_to_file(src, spool, doc_sep, fmt, text_field, want_md5, bar.update)
            md5 = entry.pop("_md5", None)
            with open(stream, "rb") as f:
                view = _FileView(f, entry["bytes"])
                rule, ranges = _split_one(src, view, lambda: md5, split_rule, val_frac, test_frac)
                for split, (a, b) in ranges.items():
                    writer.write_part(split, _read_range(f, a, b), text=entry["format"] != "raw")
            entry.update(rule=rule, splits={s: list(r) for s, r in ranges.items()})
            entries.append(entry)
            spool.unlink(missing_ok=True)
            log.debug("%s: %d bytes, %s -> %s", src.key, entry["bytes"], rule, ranges)
        writer.close()
        bar.close()
        for s in SPLITS:
            if writer.sizes[s] == 0:
                raise UserError(
                    f"{s} split is empty: no source was assigned to it (name files *_train/*_valid/"
                    "*_test, or use split_rule 'fraction')"
                )
        if writer.sizes["train"] < 2:
            raise UserError(f"train split is empty or too short: {writer.sizes['train']} byte(s), need at least 2")
        meta = {
            "format": META_FORMAT,
            "split_rule": split_rule,
            "split_rule_description": _describe_rule(split_rule, val_frac, test_frac),
            "val_frac": val_frac,
            "test_frac": test_frac,
            "pattern": pattern,
            "doc_sep": format_sep(doc_sep),
            "splits": {
                s: {"file": f"{s}.bin", "bytes": writer.sizes[s], "sha256": writer.hashes[s].hexdigest(),
                    "separators": writer.separators[s]}
                for s in SPLITS
            },
            "sources": entries,
        }
        if extra_meta is not None:
            meta["extra"] = extra_meta
        _write_meta(tmp, meta)
        _install(tmp, out_dir)
    except BaseException as e:
        bar.close()
        if writer is not None:
            writer.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and e.errno in _WRITE_ERRNOS:
            raise _os_error(e, out_dir) from None
        raise
    # the CLI prints the summary; logging it too showed it twice
    log.debug(
        "prepared %s: %s from %d source(s)",
        out_dir,
        ", ".join(f"{s} {writer.sizes[s]:,} B" for s in SPLITS),
        len(srcs),
    )
    return meta


def load_meta(data_dir: str | Path) -> dict:
    """Read the meta.json of a prepared corpus.

    Args:
        data_dir: folder written by :func:`prepare`.
    Returns:
        The meta dict.
    Raises:
        UserError: when the folder or its meta.json is missing or unreadable.
    """
    path = Path(data_dir).expanduser() / META_NAME
    if not path.is_file():
        raise UserError(f"{data_dir} is not a prepared corpus (no {META_NAME}): run `bytelm prepare`")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path}: {e}") from e
