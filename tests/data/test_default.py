"""Tests for the default stdlib corpus (bytelm.data.default)."""

from __future__ import annotations

import hashlib
import platform
import sysconfig
from pathlib import Path

import pytest

from bytelm.data import default as default_mod
from bytelm.data import cache_root, default_corpus_dir, load_meta, open_split, stdlib_files
from bytelm.errors import UserError

CAP = 300_000
EXCLUDED = {"site-packages", "dist-packages", "test", "tests", "idlelib", "lib2to3"}


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("BYTELM_CACHE", str(tmp_path))
    return tmp_path


def test_cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv("BYTELM_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    monkeypatch.delenv("BYTELM_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_root() == tmp_path / ".cache" / "bytelm"


def test_stdlib_files_selection():
    root = Path(sysconfig.get_paths()["stdlib"])
    files = stdlib_files(CAP)
    rel = [p.relative_to(root).as_posix() for p in files]
    assert files and rel == sorted(rel)
    assert all(r.endswith(".py") and not EXCLUDED & set(r.split("/")[:-1]) for r in rel)
    sizes = [p.stat().st_size for p in files]
    assert 0 not in sizes and sum(sizes) <= CAP
    everything = stdlib_files(10**12)
    assert everything[: len(files)] == files  # a prefix of the sorted list...
    assert sum(sizes) + everything[len(files)].stat().st_size > CAP  # ...that stops at the cap


def test_default_corpus(cache, monkeypatch):
    folder = default_corpus_dir(max_bytes=CAP)
    assert folder == cache / "default-corpus"
    meta = load_meta(folder)
    extra = meta["extra"]
    assert extra["python_version"] == platform.python_version() and extra["max_bytes"] == CAP
    assert meta["split_rule"] == "fraction"
    assert [Path(s["path"]) for s in meta["sources"]] == stdlib_files(CAP)
    for split in ("train", "val", "test"):
        blob = (folder / f"{split}.bin").read_bytes()
        assert blob and hashlib.sha256(blob).hexdigest() == meta["splits"][split]["sha256"]
    assert len(open_split(folder, "train")) > 0.85 * sum(s["bytes"] for s in meta["sources"])

    # prepared once: a second call with the same cap must not prepare again
    def fail(*args, **kwargs):
        raise AssertionError("default corpus was rebuilt")

    monkeypatch.setattr(default_mod, "prepare", fail)
    assert default_corpus_dir(max_bytes=CAP) == folder
    monkeypatch.undo()
    monkeypatch.setenv("BYTELM_CACHE", str(cache))

    # another cap: rebuilt in place
    default_corpus_dir(max_bytes=CAP // 2)
    assert load_meta(folder)["extra"]["max_bytes"] == CAP // 2


def test_default_corpus_cap_too_small(cache):
    with pytest.raises(UserError, match="cap"):
        default_corpus_dir(max_bytes=10)
