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
absolute path string (stdin, ``"-"``, sorts as ``"-"``).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

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
STDIN = "-"


@dataclass(frozen=True)
class _Source:
    """One input: its display path (absolute path string, or "-") and how to read it."""

    key: str
    path: Path | None  # None for stdin

    def read(self) -> bytes:
        if self.path is None:
            return sys.stdin.buffer.read()
        try:
            return self.path.read_bytes()
        except OSError as e:
            raise UserError(f"cannot read {self.key}: {e.strerror or e}") from e


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
    a, b = _enwik8_cuts(data, n_train, n_val, n_test, md5)
    return data[:a], data[a:b], data[b:]


def _enwik8_cuts(data: bytes, n_train: int, n_val: int, n_test: int, md5: str | None) -> tuple[int, int]:
    """Check size (UserError) and md5 (warning) of an enwik8-style file; return its two cut offsets."""
    total = n_train + n_val + n_test
    if len(data) != total:
        raise UserError(f"enwik8 must be exactly {total:,} bytes, got {len(data):,}")
    if md5 is not None:
        got = hashlib.md5(data).hexdigest()
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
        data: the file's bytes (N of them).
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


def _expand_sources(sources: list[str], pattern: str, out_dir: Path) -> list[_Source]:
    """Resolve files, folders and "-" into a sorted, de-duplicated list of inputs."""
    if not sources:
        raise UserError("no sources given")
    out_real = out_dir.resolve()
    found: dict[str, _Source] = {}
    seen_real: set[Path] = set()

    def add(path: Path) -> None:
        real = path.resolve()
        if real in seen_real:
            log.warning("source %s given more than once; using it once", path)
            return
        seen_real.add(real)
        key = path.absolute().as_posix()
        found[key] = _Source(key, path.absolute())

    for src in sources:
        if src == STDIN:
            if STDIN in found:
                raise UserError("stdin ('-') given more than once")
            found[STDIN] = _Source(STDIN, None)
            continue
        path = Path(src).expanduser()
        if path.is_file():
            add(path)
        elif path.is_dir():
            matched = []
            for dirpath, dirnames, filenames in os.walk(path):
                # Hidden folders (.git, our own temp dirs) and the output folder are never input.
                dirnames[:] = [
                    d
                    for d in dirnames
                    if not d.startswith(".") and (Path(dirpath) / d).resolve() != out_real
                ]
                for f in filenames:
                    if not f.startswith(".") and fnmatch.fnmatch(f, pattern):
                        matched.append(Path(dirpath) / f)
            if not matched:
                raise UserError(f"no files matching {pattern!r} under {src}")
            for p in matched:
                add(p)
        elif path.exists():
            raise UserError(f"source is neither a file nor a folder: {src}")
        else:
            raise UserError(f"source not found: {src}")
    return [found[k] for k in sorted(found)]


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
    """Appends bytes to the three split files, hashing as it goes."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.files: dict[str, BinaryIO] = {s: open(folder / f"{s}.bin", "wb") for s in SPLITS}
        self.hashes = {s: hashlib.sha256() for s in SPLITS}
        self.sizes = {s: 0 for s in SPLITS}

    def write(self, split: str, chunk: bytes) -> tuple[int, int]:
        """Append chunk to split; returns its [start, end) offsets in the split file."""
        start = self.sizes[split]
        self.files[split].write(chunk)
        self.hashes[split].update(chunk)
        self.sizes[split] += len(chunk)
        return start, self.sizes[split]

    def close(self) -> None:
        for f in self.files.values():
            if not f.closed:
                f.flush()
                os.fsync(f.fileno())
                f.close()

    def abort(self) -> None:
        for f in self.files.values():
            f.close()


def _split_one(
    src: _Source, data: bytes, split_rule: str, val_frac: float, test_frac: float
) -> tuple[str, dict[str, tuple[int, int]]]:
    """Decide how one source is split: (rule used, {split: (start, end) byte range in the source})."""
    n = len(data)
    name = src.path.name if src.path is not None else STDIN
    if split_rule == "enwik8" or (split_rule == "auto" and name == ENWIK8_NAME):
        a, b = _enwik8_cuts(data, 90_000_000, 5_000_000, 5_000_000, ENWIK8_MD5)
        return "enwik8", {"train": (0, a), "val": (a, b), "test": (b, n)}
    if split_rule == "auto":
        named = split_from_name(name) if src.path is not None else None
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
    with open(folder / META_NAME, "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def _install(tmp: Path, out_dir: Path) -> None:
    """Move the finished temp folder to out_dir, replacing an old prepared corpus there."""
    _check_out_dir(out_dir)
    old = None
    if out_dir.exists():
        # Keep the old corpus aside until the new one is in place, so a crash never leaves neither.
        old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:12]}"
        os.replace(out_dir, old)
    try:
        os.replace(tmp, out_dir)
    except BaseException:
        if old is not None:
            os.replace(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def prepare(
    sources: list[str],
    out_dir: str | Path,
    *,
    split_rule: str = "auto",
    pattern: str = "*",
    val_frac: float = 0.05,
    test_frac: float = 0.05,
    extra_meta: dict | None = None,
) -> dict:
    """Build a prepared corpus (train/val/test .bin + meta.json) in out_dir, atomically.

    Args:
        sources: text files, folders (files matching ``pattern`` by name, recursively, hidden
            files and folders skipped) or "-" for stdin.
        out_dir: output folder; created, or replaced if it holds a previously prepared corpus.
        split_rule: "auto", "fraction" or "enwik8" (see the module docstring).
        pattern: fnmatch pattern for file names inside folders.
        val_frac, test_frac: fractions for files cut by bytes.
        extra_meta: JSON-able dict stored under meta["extra"] (e.g. provenance of a cached corpus).
    Returns:
        The meta dict written to meta.json.
    Raises:
        UserError: unknown rule, bad fractions, missing/empty source, empty split, foreign out_dir.
    """
    if split_rule not in SPLIT_RULES:
        raise UserError(f"unknown split rule {split_rule!r} (choose from {', '.join(SPLIT_RULES)})")
    if not (0.0 <= val_frac < 1.0 and 0.0 <= test_frac < 1.0 and val_frac + test_frac < 1.0):
        raise UserError(f"bad split fractions val={val_frac} test={test_frac}: need 0 <= each and sum < 1")
    out_dir = Path(out_dir).expanduser().absolute()
    _check_out_dir(out_dir)  # fail before doing any work
    srcs = _expand_sources(list(sources), pattern, out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)

    # A plain mkdir (not mkdtemp, which forces mode 0700) so the corpus gets the usual umask.
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    writer = None
    try:
        writer = _SplitWriter(tmp)
        entries = []
        for src in srcs:
            data = src.read()
            if not data:
                raise UserError(f"source is empty: {src.key}")
            rule, ranges = _split_one(src, data, split_rule, val_frac, test_frac)
            for split, (a, b) in ranges.items():
                writer.write(split, data[a:b])
            entries.append(
                {
                    "path": src.key,
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "rule": rule,
                    "splits": {s: list(r) for s, r in ranges.items()},
                }
            )
            log.debug("%s: %d bytes, %s -> %s", src.key, len(data), rule, ranges)
        writer.close()
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
            "splits": {
                s: {"file": f"{s}.bin", "bytes": writer.sizes[s], "sha256": writer.hashes[s].hexdigest()}
                for s in SPLITS
            },
            "sources": entries,
        }
        if extra_meta is not None:
            meta["extra"] = extra_meta
        _write_meta(tmp, meta)
        _install(tmp, out_dir)
    except BaseException:
        if writer is not None:
            writer.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info(
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
