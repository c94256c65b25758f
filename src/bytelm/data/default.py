"""The default corpus: the Python standard library's own ``*.py`` sources, present on every machine.

It needs no download, so ``bytelm`` can train and test anywhere. The files are the ``*.py``
under ``sysconfig.get_paths()["stdlib"]`` (recursively, skipping site-packages, dist-packages,
test, tests, idlelib and lib2to3 folders, hidden and empty files), taken whole in sorted
relative-path order until the next file would pass the cap, and prepared with the normal
90/5/5-per-file rule (``split_rule="fraction"``) into ``$BYTELM_CACHE/default-corpus/``
(``~/.cache/bytelm/default-corpus/`` without the variable).

The stdlib differs between Python versions (and builds), so the corpus does too: meta.json's
``extra`` records the Python version, implementation, stdlib path, cap and a sha256 over the
chosen files, and the corpus is rebuilt whenever the Python or the cap differs. Numbers measured
on it are only comparable between runs whose meta.json matches.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import sys
import sysconfig
from pathlib import Path

from bytelm.data.splits import DEFAULT_DOC_SEP, META_NAME, SPLITS, format_sep, load_meta, prepare
from bytelm.errors import UserError

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 12_000_000
CORPUS_NAME = "default-corpus"
KIND = "python-stdlib"
_EXCLUDED_DIRS = frozenset({"site-packages", "dist-packages", "test", "tests", "idlelib", "lib2to3"})


def cache_root() -> Path:
    """The bytelm cache folder.

    Returns:
        $BYTELM_CACHE if set, else ~/.cache/bytelm.
    """
    env = os.environ.get("BYTELM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "bytelm"


def stdlib_files(max_bytes: int = DEFAULT_MAX_BYTES) -> list[Path]:
    """The stdlib ``*.py`` files of the default corpus, in sorted order, whole, within the cap.

    Args:
        max_bytes: cap on their total size; stops at the first file that would pass it.
    Returns:
        Absolute paths, sorted by path relative to the stdlib folder.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _EXCLUDED_DIRS and not d.startswith(".")]
        for f in filenames:
            if f.endswith(".py") and not f.startswith("."):
                p = Path(dirpath) / f
                found.append((p.relative_to(root).as_posix(), p))
    chosen, total = [], 0
    for _, p in sorted(found):
        size = p.stat().st_size
        if size == 0:
            continue  # empty __init__.py files; prepare rejects empty sources
        if total + size > max_bytes:
            break
        chosen.append(p)
        total += size
    return chosen


def _provenance(files: list[Path], max_bytes: int) -> dict:
    """What identifies this default corpus: Python build, stdlib path, cap and a hash of the files."""
    root = Path(sysconfig.get_paths()["stdlib"])
    h = hashlib.sha256()
    for p in files:
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return {
        "kind": KIND,
        "python_version": platform.python_version(),
        "implementation": sys.implementation.name,
        "stdlib": root.as_posix(),
        "max_bytes": max_bytes,
        "n_files": len(files),
        "sources_sha256": h.hexdigest(),
    }


def _reusable(folder: Path, max_bytes: int) -> bool:
    """True when folder holds a default corpus built by this Python with this cap."""
    if not (folder / META_NAME).is_file() or not all((folder / f"{s}.bin").is_file() for s in SPLITS):
        return False
    try:
        meta = load_meta(folder)
    except UserError:
        return False
    extra = meta.get("extra") or {}
    # corpora from before document separators joined files without one: rebuild them
    return (
        meta.get("doc_sep") == format_sep(DEFAULT_DOC_SEP)
        and extra.get("kind") == KIND
        and extra.get("max_bytes") == max_bytes
        and extra.get("python_version") == platform.python_version()
        and extra.get("implementation") == sys.implementation.name
        and extra.get("stdlib") == Path(sysconfig.get_paths()["stdlib"]).as_posix()
    )


def default_corpus_dir(max_bytes: int = DEFAULT_MAX_BYTES) -> Path:
    """Prepare the stdlib corpus once (or reuse it) and return its folder.

    Args:
        max_bytes: cap on the total size of the chosen stdlib files.
    Returns:
        The prepared corpus folder, ``cache_root() / "default-corpus"``.
    Raises:
        UserError: when the cap is too small to hold any file or to give non-empty splits.
    """
    folder = cache_root() / CORPUS_NAME
    if _reusable(folder, max_bytes):
        log.debug("reusing default corpus in %s", folder)
        return folder
    files = stdlib_files(max_bytes)
    if not files:
        raise UserError(f"default corpus cap of {max_bytes:,} bytes is smaller than any stdlib file")
    log.info("building the default corpus (%d stdlib files) in %s", len(files), folder)
    prepare([str(p) for p in files], folder, split_rule="fraction", extra_meta=_provenance(files, max_bytes))
    return folder
