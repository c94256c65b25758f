"""Tests for corpus preparation (bytelm.data.splits)."""

from __future__ import annotations

import hashlib
import io
import logging
import random
import types
from pathlib import Path

import pytest

from bytelm.data import splits
from bytelm.data.splits import fraction_cuts, load_meta, prepare, split_enwik8, split_from_name
from bytelm.errors import UserError


def _lines(seed: int, n_lines: int) -> bytes:
    """Deterministic text of short lines of varied length."""
    rnd = random.Random(seed)
    words = ["alpha", "beta", "gamma", "ğüşçö", "δέλτα", "x"]
    return b"".join(
        (" ".join(rnd.choice(words) for _ in range(rnd.randint(0, 8))) + "\n").encode() for _ in range(n_lines)
    )


def _read(out: Path, split: str) -> bytes:
    return (out / f"{split}.bin").read_bytes()


def _no_leftovers(parent: Path) -> bool:
    return not [p for p in parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("enwiki_train_00.txt", "train"),
        ("train.txt", "train"),
        ("train00.txt", "train"),
        ("enwiki_valid.txt", "val"),
        ("val.txt", "val"),
        ("foo_val.txt", "val"),
        ("foo-validation.txt", "val"),
        ("enwiki_test.txt", "test"),
        ("dir/test", "test"),
        ("interval.txt", None),
        ("latest.txt", None),
        ("constraints.txt", None),
        ("valley.txt", None),
        ("en.txt", None),
    ],
)
def test_split_from_name(name, expected):
    assert split_from_name(name) == expected


def test_split_from_name_ambiguous():
    with pytest.raises(UserError, match="several splits"):
        split_from_name("train_test.txt")


def test_split_from_name_on_enwiki_files(shared_data):
    names = sorted(p.name for p in (shared_data / "en" / "text").iterdir())
    got = {n: split_from_name(n) for n in names}
    # the corpus grew from 3 to 9 training parts (enwiki_train_00..08); each split is named once
    assert got.pop("enwiki_test.txt") == "test" and got.pop("enwiki_valid.txt") == "val"
    assert len(got) >= 3 and set(got.values()) == {"train"}
    assert all(n.startswith("enwiki_train_") for n in got)


def test_prepare_by_name(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    parts = {"b_train.txt": b"train text\n" * 5, "a_train.txt": b"more\n", "x_valid.txt": b"v\n", "test.txt": b"t\n"}
    for name, data in parts.items():
        (src / name).write_bytes(data)
    meta = prepare([str(src)], tmp_path / "out")
    out = tmp_path / "out"
    assert _read(out, "train") == parts["a_train.txt"] + parts["b_train.txt"]  # sorted order
    assert _read(out, "val") == parts["x_valid.txt"]
    assert _read(out, "test") == parts["test.txt"]
    assert all(s["rule"] == "name" for s in meta["sources"])
    assert meta == load_meta(out)


def test_fraction_split_at_line_boundaries_in_sorted_order(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / ".git").mkdir()
    files = {"b.txt": _lines(1, 400), "a.txt": _lines(2, 300), "sub/c.txt": _lines(3, 500)}
    for name, data in files.items():  # created out of order on purpose
        (src / name).write_bytes(data)
    (src / ".hidden.txt").write_bytes(b"secret\n")
    (src / ".git" / "config").write_bytes(b"junk\n")
    (src / "notes.md").write_bytes(b"not text\n")

    out = tmp_path / "out"
    meta = prepare([str(src)], out, pattern="*.txt")

    order = ["a.txt", "b.txt", "sub/c.txt"]
    assert [s["path"] for s in meta["sources"]] == [(src / n).absolute().as_posix() for n in order]
    expected = {"train": b"", "val": b"", "test": b""}
    for name, entry in zip(order, meta["sources"]):
        data = files[name]
        n = len(data)
        assert entry["bytes"] == n and entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["rule"] == "fraction"
        (t0, a), (a2, b), (b2, end) = entry["splits"]["train"], entry["splits"]["val"], entry["splits"]["test"]
        assert (t0, a2, b2, end) == (0, a, b, n)
        for cut, frac in ((a, 0.90), (b, 0.95)):
            pos = int(n * frac)
            assert data[cut - 1 : cut] == b"\n"  # right after a newline...
            assert b"\n" not in data[pos : cut - 1]  # ...the first one at or after the position
        for s, (x, y) in entry["splits"].items():
            expected[s] += data[x:y]
    for s in ("train", "val", "test"):
        blob = _read(out, s)
        assert blob == expected[s]
        assert meta["splits"][s]["bytes"] == len(blob)
        assert meta["splits"][s]["sha256"] == hashlib.sha256(blob).hexdigest()
    assert "90%/5%/5%" in meta["split_rule_description"]


def test_fraction_rule_ignores_names(tmp_path):
    f = tmp_path / "enwiki_valid.txt"
    f.write_bytes(_lines(4, 200))
    meta = prepare([str(f)], tmp_path / "out", split_rule="fraction")
    assert set(meta["sources"][0]["splits"]) == {"train", "val", "test"}


def test_multibyte_without_newline_is_never_cut_inside_a_character(tmp_path):
    chars = "ğüşçö€😀ab"
    for extra in range(25):  # shift the cut positions across every offset inside the characters
        data = ("x" * extra + chars * 40).encode()
        a, b = fraction_cuts(data)
        for part in (data[:a], data[a:b], data[b:]):
            part.decode("utf-8")  # strict: raises if a character was split
        assert abs(a - int(len(data) * 0.9)) <= 3 and abs(b - int(len(data) * 0.95)) <= 3
    f = tmp_path / "u.txt"
    f.write_bytes((chars * 300).encode())
    out = tmp_path / "out"
    prepare([str(f)], out)
    for s in ("train", "val", "test"):
        _read(out, s).decode("utf-8")


def test_split_enwik8_synthetic(caplog):
    data = bytes(random.Random(0).randrange(256) for _ in range(1000))
    md5 = hashlib.md5(data).hexdigest()
    with caplog.at_level(logging.WARNING):
        train, val, test = split_enwik8(data, 900, 50, 50, md5=md5)
    assert (train, val, test) == (data[:900], data[900:950], data[950:])
    assert not caplog.records
    with caplog.at_level(logging.WARNING):
        parts = split_enwik8(data, 900, 50, 50)  # the real md5 cannot match: warn, still split
    assert parts == (train, val, test)
    assert any("md5" in r.getMessage() for r in caplog.records)
    with pytest.raises(UserError, match="exactly 1,000 bytes"):
        split_enwik8(data[:999], 900, 50, 50, md5=md5)


def test_file_named_enwik8_must_have_the_standard_size(tmp_path):
    f = tmp_path / "enwik8"
    f.write_bytes(b"abc\n" * 100)
    with pytest.raises(UserError, match="100,000,000"):
        prepare([str(f)], tmp_path / "out")
    g = tmp_path / "other.txt"
    g.write_bytes(b"abc\n" * 100)
    with pytest.raises(UserError, match="100,000,000"):
        prepare([str(g)], tmp_path / "out", split_rule="enwik8")
    assert not (tmp_path / "out").exists()


def test_stdin_source(tmp_path, monkeypatch):
    text = _lines(5, 300)
    monkeypatch.setattr("sys.stdin", types.SimpleNamespace(buffer=io.BytesIO(text)))
    out = tmp_path / "out"
    meta = prepare(["-"], out)
    assert meta["sources"][0]["path"] == "-"
    assert meta["sources"][0]["sha256"] == hashlib.sha256(text).hexdigest()
    assert _read(out, "train") + _read(out, "val") + _read(out, "test") == text


@pytest.mark.parametrize(
    "files, kwargs, message",
    [
        ({}, {"sources": ["missing.txt"]}, "not found"),
        ({"empty.txt": b""}, {}, "empty"),
        ({"a_train.txt": b"abc\n", "a_test.txt": b"t\n"}, {}, "val split is empty"),
        ({"train.txt": b"a", "val.txt": b"v\n", "test.txt": b"t\n"}, {}, "train split is empty"),
        ({"a.txt": b"abc\n" * 50}, {"split_rule": "bogus"}, "unknown split rule"),
        ({"a.txt": b"abc\n" * 50}, {"val_frac": 0.6, "test_frac": 0.5}, "fractions"),
        ({"a.txt": b"abc\n" * 50}, {"pattern": "*.md"}, "no files matching"),
    ],
)
def test_user_errors(tmp_path, files, kwargs, message):
    src = tmp_path / "src"
    src.mkdir()
    for name, data in files.items():
        (src / name).write_bytes(data)
    kwargs = dict(kwargs)
    sources = [str(src / s) for s in kwargs.pop("sources", [])] or [str(src)]
    with pytest.raises(UserError, match=message):
        prepare(sources, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()
    assert _no_leftovers(tmp_path)


def test_out_dir_with_foreign_content_is_refused(tmp_path):
    f = tmp_path / "a.txt"
    f.write_bytes(_lines(6, 100))
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="refusing"):
        prepare([str(f)], out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_prepared_out_dir_is_replaced(tmp_path):
    f = tmp_path / "a.txt"
    f.write_bytes(_lines(7, 100))
    out = tmp_path / "out"
    prepare([str(f)], out)
    f.write_bytes(_lines(8, 200))
    meta = prepare([str(f)], out)
    assert load_meta(out) == meta
    assert meta["sources"][0]["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
    assert _no_leftovers(tmp_path)


@pytest.mark.parametrize("existing", [False, True])
def test_interrupted_prepare_leaves_no_half_written_out_dir(tmp_path, monkeypatch, existing):
    f = tmp_path / "a.txt"
    f.write_bytes(_lines(9, 100))
    out = tmp_path / "out"
    before = prepare([str(f)], out) if existing else None

    def boom(folder, meta):
        assert (folder / "train.bin").stat().st_size > 0  # the splits were already written
        raise KeyboardInterrupt

    monkeypatch.setattr(splits, "_write_meta", boom)
    f.write_bytes(_lines(10, 100))
    with pytest.raises(KeyboardInterrupt):
        prepare([str(f)], out)
    if existing:
        assert load_meta(out) == before  # the old corpus is untouched
    else:
        assert not out.exists()
    assert _no_leftovers(tmp_path)


def test_load_meta_missing(tmp_path):
    with pytest.raises(UserError, match="not a prepared corpus"):
        load_meta(tmp_path / "nope")


def test_prepare_real_turkish_text(tmp_path, shared_data):
    folder = shared_data / "tr" / "text"
    out = tmp_path / "tr"
    meta = prepare([str(folder)], out)  # no split names: every file 90/5/5
    names = [Path(s["path"]).name for s in meta["sources"]]
    assert names == sorted(p.name for p in folder.glob("*.txt"))
    total = 0
    for entry in meta["sources"]:
        assert entry["rule"] == "fraction" and set(entry["splits"]) == {"train", "val", "test"}
        data = Path(entry["path"]).read_bytes()
        total += len(data)
        a, b = entry["splits"]["val"]
        for cut in (a, b):  # at a line end, or at least on a character boundary
            assert data[cut - 1 : cut] == b"\n" or (data[:cut].decode() and data[cut:].decode())
    assert sum(meta["splits"][s]["bytes"] for s in ("train", "val", "test")) == total
    assert 0.85 < meta["splits"]["train"]["bytes"] / total < 0.95


def test_prepare_real_small(tmp_path, shared_data):
    meta = prepare([str(shared_data / "small")], tmp_path / "small")
    by_name = {Path(s["path"]).name: s for s in meta["sources"]}
    assert list(by_name) == ["en.txt", "mixed.bin", "tr.txt"]
    # pinned in shared/data/README.md
    assert by_name["en.txt"]["sha256"] == "8afb19c4bf397381a9e83e326e26a0a62f4e59cc6bc4f771ad12e82e48729fb9"
    assert by_name["mixed.bin"]["sha256"] == "abbad4b319e65b9b09a9aabed2495ba95bf648da39f5eda76fcc9ed56306e3c8"
    assert sum(s["bytes"] for s in meta["sources"]) == 60_115 + 16_384 + 62_927
    assert sum(meta["splits"][s]["bytes"] for s in ("train", "val", "test")) == 60_115 + 16_384 + 62_927


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid


def test_stale_temp_folders_of_a_killed_prepare_are_cleaned(tmp_path):
    import os
    import time

    f = tmp_path / "a.txt"
    f.write_bytes(_lines(11, 100))
    dead, alive = _dead_pid(), os.getpid()
    stale = [tmp_path / f".out.tmp-{dead}-0123456789ab", tmp_path / ".out.tmp-ba9876543210"]
    kept = [tmp_path / f".out.tmp-{alive}-0123456789ab", tmp_path / ".other.tmp-1-0123456789ab",
            tmp_path / ".out.tmp-aaaaaaaaaaaa"]
    for p in stale + kept:
        p.mkdir()
        (p / "train.bin").write_bytes(b"x" * 1000)
    old = time.time() - 2 * splits._LEGACY_STALE_S  # a PID-less folder of an older bytelm, hours old
    os.utime(stale[1], (old, old))
    prepare([str(f)], tmp_path / "out")
    assert [p.exists() for p in stale] == [False, False]
    assert all(p.exists() for p in kept)  # a live process's, another corpus's, a recent PID-less one


def test_corpus_of_a_prepare_killed_between_its_renames_is_restored(tmp_path):
    f = tmp_path / "a.txt"
    f.write_bytes(_lines(12, 100))
    before = prepare([str(f)], tmp_path / "out")
    aside = tmp_path / f".out.old-{_dead_pid()}-0123456789ab"
    (tmp_path / "out").rename(aside)  # the state after the first of _install's two renames
    f.write_bytes(_lines(13, 100))
    with pytest.raises(UserError, match="not found"):
        prepare([str(tmp_path / "missing.txt")], tmp_path / "out")
    assert load_meta(tmp_path / "out") == before and not aside.exists()
