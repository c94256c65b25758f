"""Tests for reading every input format (bytelm.data.sources) through ``prepare``: each format
gives the same splits as plain text holding the same documents, and every bad input is refused
with one line naming the file (and line or row)."""

from __future__ import annotations

import bz2
import gzip
import json
import logging
import lzma
import random
import sys
import tracemalloc
from pathlib import Path

import pytest

from bytelm.data import sources
from bytelm.data.splits import prepare
from bytelm.errors import UserError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
zstandard = pytest.importorskip("zstandard")

SPLITS = ("train", "val", "test")


def _docs(seed: int = 0, n: int = 300) -> list[str]:
    """Documents of 1-4 lines; some end in a newline, some do not, some are empty."""
    rnd = random.Random(seed)
    words = ["alpha", "beta", "ğüşçö", "δέλτα", "日本", "x", "😀"]
    docs = []
    for _ in range(n):
        lines = [" ".join(rnd.choice(words) for _ in range(rnd.randint(1, 9))) for _ in range(rnd.randint(1, 4))]
        docs.append("\n".join(lines) + rnd.choice(["", "\n"]) if rnd.random() > 0.02 else "")
    return docs


def _joined(docs: list[str], sep: str = "\n") -> bytes:
    """The documented join: before each document, the fewest bytes that make the text end in sep."""
    out = ""
    for d in docs:
        if out and d:
            out += next(sep[k:] for k in range(len(sep), -1, -1) if out.endswith(sep[:k]))
        out += d
    return out.encode()


def _jsonl(docs: list[str], field: str = "text") -> bytes:
    return "".join(json.dumps({"id": i, field: d}, ensure_ascii=i % 2 == 0) + "\n" for i, d in enumerate(docs)).encode()


def _zstd_frames(data: bytes) -> bytes:
    """Two zstd frames, as written by concatenating two .zst files."""
    c = zstandard.ZstdCompressor()
    half = len(data) // 2
    return c.compress(data[:half]) + c.compress(data[half:])


def _arrow(path: Path, docs: list[str], file_format: bool) -> None:
    table = pa.table({"text": docs, "n": list(range(len(docs)))})
    with (pa.ipc.new_file if file_format else pa.ipc.new_stream)(str(path), table.schema) as w:
        for batch in table.to_batches(max_chunksize=64):
            w.write_batch(batch)


def _fake_datasets_folder(folder: Path, docs: list[str]) -> None:
    """The layout ``datasets.Dataset.save_to_disk`` writes: arrow streams listed in state.json."""
    folder.mkdir()
    half = len(docs) // 2
    names = ["data-00000-of-00002.arrow", "data-00001-of-00002.arrow"]
    _arrow(folder / names[0], docs[:half], False)
    _arrow(folder / names[1], docs[half:], False)
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": n} for n in names]}))
    (folder / "dataset_info.json").write_text("{}")


def _write(kind: str, folder: Path, docs: list[str]) -> Path:
    """Write docs in format ``kind`` under folder; returns the path to prepare."""
    text, lines = _joined(docs), _jsonl(docs)
    files = {
        "jsonl": ("d.jsonl", lines),
        "json": ("d.json", lines),
        "ndjson": ("d.ndjson", lines.replace(b"\n", b"\r\n")),
        "txt.gz": ("d.txt.gz", gzip.compress(text)),
        "gz": ("d.gz", gzip.compress(text)),
        "jsonl.gz": ("d.jsonl.gz", gzip.compress(lines[:999]) + gzip.compress(lines[999:])),  # two members
        "jsonl.zst": ("d.jsonl.zst", _zstd_frames(lines)),
        "txt.zst": ("d.txt.zst", _zstd_frames(text)),
        "jsonl.xz": ("d.jsonl.xz", lzma.compress(lines)),
        "txt.bz2": ("d.txt.bz2", bz2.compress(text)),
        "jsonl.bz2": ("d.jsonl.bz2", bz2.compress(lines)),
    }
    if kind in files:
        name, data = files[kind]
        (folder / name).write_bytes(data)
        return folder / name
    if kind == "parquet":
        pq.write_table(pa.table({"id": list(range(len(docs))), "text": docs}), folder / "d.parquet", row_group_size=70)
        return folder / "d.parquet"
    if kind in ("arrow-stream", "arrow-file"):
        _arrow(folder / "d.arrow", docs, kind == "arrow-file")
        return folder / "d.arrow"
    if kind == "datasets-layout":
        _fake_datasets_folder(folder / "ds", docs)
        return folder / "ds"
    raise AssertionError(kind)


def _splits(out: Path) -> dict[str, bytes]:
    return {s: (out / f"{s}.bin").read_bytes() for s in SPLITS}


FORMAT_OF = {"json": "jsonl", "ndjson": "jsonl", "txt.gz": "text", "gz": "text", "txt.zst": "text",
             "txt.bz2": "text", "arrow-stream": "arrow", "arrow-file": "arrow", "datasets-layout": "arrow"}
COMPRESSION_OF = {"gz": "gzip", "zst": "zstd", "xz": "xz", "bz2": "bz2"}


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The documents as one plain text file, prepared: what every other format must match."""
    docs = _docs()
    folder = tmp_path_factory.mktemp("plain")
    (folder / "d.txt").write_bytes(_joined(docs))
    prepare([str(folder / "d.txt")], folder / "out")
    return docs, _splits(folder / "out")


@pytest.mark.parametrize("kind", [
    "jsonl", "json", "ndjson", "txt.gz", "gz", "jsonl.gz", "jsonl.zst", "txt.zst", "jsonl.xz", "txt.bz2",
    "jsonl.bz2", "parquet", "arrow-stream", "arrow-file", "datasets-layout",
])
def test_iter_documents_every_format_matches_plain_text(tmp_path, plain, kind):
    docs, expected = plain
    path = _write(kind, tmp_path, docs)
    meta = prepare([str(path)], tmp_path / "out")
    assert _splits(tmp_path / "out") == expected
    entry = meta["sources"][0]
    assert entry["bytes"] == sum(len(v) for v in expected.values())
    assert entry["format"] == FORMAT_OF.get(kind, kind.split(".")[0])
    assert entry.get("compression") == COMPRESSION_OF.get(kind.split(".")[-1])


def test_iter_documents_real_datasets_folder(tmp_path, plain, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    docs, expected = plain
    ds = datasets.Dataset.from_dict({"text": docs})
    datasets.DatasetDict({"train": ds, "validation": ds, "test": ds}).save_to_disk(str(tmp_path / "dd"))
    meta = prepare([str(tmp_path / "dd")], tmp_path / "out")  # one source per split, by its name
    assert [(Path(s["path"]).name, s["rule"]) for s in meta["sources"]] == [
        ("test", "name"), ("train", "name"), ("validation", "name")]
    assert set(_splits(tmp_path / "out").values()) == {_joined(docs)}


def test_text_field_dotted(tmp_path):
    docs = ["first doc\n", "second doc\n", "third\n"] * 30
    rows = [{"meta": {"body": d}, "text": "not this\n"} for d in docs]
    (tmp_path / "n.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pq.write_table(pa.table({"meta": [r["meta"] for r in rows]}), tmp_path / "n.parquet")
    (tmp_path / "p.txt").write_bytes(_joined(docs))
    outs = {}
    for name in ("n.jsonl", "n.parquet", "p.txt"):
        prepare([str(tmp_path / name)], tmp_path / name.replace(".", "_"), text_field="meta.body")
        outs[name] = _splits(tmp_path / name.replace(".", "_"))
    assert outs["n.jsonl"] == outs["n.parquet"] == outs["p.txt"]


def test_doc_sep_between_documents_files_and_parts(tmp_path):
    (tmp_path / "a_train.txt").write_bytes(b"no final newline")
    (tmp_path / "b_train.jsonl").write_text('{"text": "one"}\n{"text": "two\\u001e"}\n{"text": "three"}\n')
    (tmp_path / "c_train.bin").write_bytes(b"\x00raw\xff")
    (tmp_path / "d_train.txt").write_bytes(b"last\n")
    (tmp_path / "v_valid.txt").write_bytes(b"v\n")
    (tmp_path / "t_test.txt").write_bytes(b"t\n")
    prepare([str(tmp_path)], tmp_path / "o1", pattern="*_*")
    assert _splits(tmp_path / "o1")["train"] == b"no final newline\none\ntwo\x1e\nthree\x00raw\xfflast\n"
    meta = prepare([str(tmp_path)], tmp_path / "o2", pattern="*_*", doc_sep=b"\x1e")
    assert _splits(tmp_path / "o2")["train"] == b"no final newline\x1eone\x1etwo\x1ethree\x00raw\xfflast\n"
    assert meta["doc_sep"] == "\\x1e" and meta["splits"]["train"]["separators"] == 1
    prepare([str(tmp_path)], tmp_path / "o3", pattern="*_*", doc_sep=b"")
    assert _splits(tmp_path / "o3")["train"] == b"no final newlineonetwo\x1ethree\x00raw\xfflast\n"


def test_utf16_with_bom_is_converted(tmp_path, caplog):
    text = "".join(f"satır {i}: ğüşçö €\n" for i in range(300))
    (tmp_path / "u8.txt").write_text(text, encoding="utf-8")
    (tmp_path / "u16.txt").write_bytes(text.encode("utf-16"))  # with a BOM
    (tmp_path / "u32.txt").write_bytes(text.encode("utf-32"))
    prepare([str(tmp_path / "u8.txt")], tmp_path / "o8")
    for name in ("u16.txt", "u32.txt"):
        with caplog.at_level(logging.WARNING):
            meta = prepare([str(tmp_path / name)], tmp_path / f"o_{name}")
        assert _splits(tmp_path / f"o_{name}") == _splits(tmp_path / "o8")
        assert any("converted to UTF-8" in r.getMessage() for r in caplog.records)
        assert meta["sources"][0]["file_bytes"] == (tmp_path / name).stat().st_size


def test_raw_format_takes_any_bytes(tmp_path):
    blob = random.Random(1).randbytes(5000)
    (tmp_path / "blob.dat").write_bytes(blob)
    with pytest.raises(UserError, match="not text"):
        prepare([str(tmp_path / "blob.dat")], tmp_path / "out")
    gz = gzip.compress(blob)
    (tmp_path / "blob.gz").write_bytes(gz)
    prepare([str(tmp_path / "blob.dat")], tmp_path / "out", fmt="raw")
    assert b"".join(_splits(tmp_path / "out").values()) == blob
    prepare([str(tmp_path / "blob.gz")], tmp_path / "out", fmt="raw")  # raw means as they are
    assert b"".join(_splits(tmp_path / "out").values()) == gz


def test_stdin_jsonl_and_compressed_stdin(tmp_path, monkeypatch, plain):
    docs, expected = plain
    monkeypatch.setattr("sys.stdin", type("S", (), {"buffer": __import__("io").BytesIO(_jsonl(docs))}))
    prepare(["-"], tmp_path / "out", fmt="jsonl")
    assert _splits(tmp_path / "out") == expected
    monkeypatch.setattr("sys.stdin", type("S", (), {"buffer": __import__("io").BytesIO(gzip.compress(b"x\n" * 99))}))
    with pytest.raises(UserError, match="stdin is gzip-compressed"):
        prepare(["-"], tmp_path / "out2")


def _truncated(data: bytes) -> bytes:
    return data[: len(data) - 20]


BAD = {
    # name: (file name, bytes, message)
    "gz named txt": ("a.txt", gzip.compress(b"hello\n" * 50), r"a\.txt: content is gzip-compressed .* \.gz"),
    "zst named jsonl": ("a.jsonl", zstandard.ZstdCompressor().compress(b"{}\n"), "zstd-compressed"),
    "text named gz": ("a.txt.gz", b"hello\n" * 50, "named as gzip-compressed but its content is not compressed"),
    "zstd named gz": ("a.gz", zstandard.ZstdCompressor().compress(b"x\n" * 9), "content is zstd data"),
    "truncated gz": ("a.txt.gz", _truncated(gzip.compress(random.Random(2).randbytes(9000).hex().encode())), "truncated gzip"),
    "truncated zst": ("a.zst", _truncated(zstandard.ZstdCompressor().compress(b"hello\n" * 5000)), "truncated zstd"),
    "truncated xz": ("a.xz", _truncated(lzma.compress(b"hello\n" * 5000)), "truncated xz"),
    "truncated bz2": ("a.bz2", _truncated(bz2.compress(b"hello\n" * 5000)), "truncated bz2"),
    "corrupt gz": ("a.gz", gzip.compress(b"hello\n")[:10] + b"\x07" + b"\xff" * 80, "corrupt gzip"),
    "corrupt zst": ("a.zst", b"\x28\xb5\x2f\xfd" + b"\xff" * 50, "corrupt zstd"),
    "gz of gz": ("a.txt.gz", gzip.compress(gzip.compress(b"x\n" * 50)), "decompressed content is gzip"),
    "zip": ("a.txt", b"PK\x03\x04" + b"\x00" * 40, "zip archive"),
    "binary with NUL": ("a.txt", random.Random(3).randbytes(4000), "not text .*NUL"),
    "binary without NUL": ("a.txt", bytes(b for b in random.Random(4).randbytes(8000) if b), "are control bytes"),
    "binary inside gz": ("a.txt.gz", gzip.compress(b"text\n" * 20000 + b"\x00\x01\x02"), r"NUL byte at offset 100000"),
    "utf16 without BOM": ("a.txt", "some text\n".encode("utf-16-le") * 50, "UTF-16 text without a byte-order mark"),
    "utf16 jsonl": ("a.jsonl", '{"text": "x"}\n'.encode("utf-16"), "JSON lines must be UTF-8"),
    "empty text": ("a.txt", b"", "source is empty"),
    "empty gz": ("a.txt.gz", gzip.compress(b""), "source is empty"),
    "blank jsonl": ("a.jsonl", b"\n  \n\n", r"source is empty: .*a\.jsonl \(no text in it as jsonl\)"),
    "missing field": ("a.jsonl", b'{"text": "a"}\n{"body": "b"}\n', r"a\.jsonl:2: no field 'text' \(fields: body\)"),
    "bad json": ("a.jsonl", b'{"text": "a"}\n\n{"text": "b",}\n', r"a\.jsonl:3: bad JSON"),
    "null field": ("a.jsonl", b'{"text": null}\n', r"a\.jsonl:1: field 'text' is null"),
    "number field": ("a.jsonl", b'{"text": 5}\n', "is int, not a string"),
    "not an object": ("a.jsonl", b'{"text": "a"}\n"just a string"\n', r":2: expected a JSON object"),
    "json array": ("a.json", b'[{"text": "a"},\n {"text": "b"}]\n', "a JSON array, not JSON lines"),
    "lone surrogate": ("a.jsonl", b'{"text": "\\ud800"}\n', "invalid character"),
    "invalid utf8 in jsonl": ("a.jsonl", b'{"text": "a"}\n{"text": "\xff\xfe"}\n' * 1, r":2: bad JSON"),
    "fake parquet": ("a.parquet", b"not parquet at all\n", "named as parquet but its content is not parquet"),
    "parquet named txt": ("a.txt", b"PAR1" + b"\x00" * 40, "content is parquet data"),
    "fake arrow": ("a.arrow", b"hello\n", "named as arrow"),
    "compressed parquet": ("a.parquet.gz", gzip.compress(b"PAR1"), "cannot be streamed"),
}


def _no_leftovers(parent: Path) -> bool:
    return not [p for p in parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("case", list(BAD))
def test_iter_documents_refusals(tmp_path, case):
    name, data, message = BAD[case]
    (tmp_path / name).write_bytes(data)
    with pytest.raises(UserError, match=message) as e:
        prepare([str(tmp_path / name)], tmp_path / "out")
    assert "\n" not in str(e.value) and str(tmp_path / name) in str(e.value)
    assert not (tmp_path / "out").exists() and _no_leftovers(tmp_path)


def test_table_refusals(tmp_path):
    pq.write_table(pa.table({"body": ["a", "b"]}), tmp_path / "a.parquet")
    with pytest.raises(UserError, match=r"a\.parquet: no column 'text' \(columns: body\)"):
        prepare([str(tmp_path / "a.parquet")], tmp_path / "out")
    pq.write_table(pa.table({"text": ["a\n", None, "c\n"]}), tmp_path / "b.parquet")
    with pytest.raises(UserError, match=r"b\.parquet: row 1: field 'text' is null"):
        prepare([str(tmp_path / "b.parquet")], tmp_path / "out")
    (tmp_path / "c.parquet").write_bytes(b"PAR1" + b"\x00" * 100 + b"PAR1")
    with pytest.raises(UserError, match=r"cannot read .*c\.parquet as parquet"):
        prepare([str(tmp_path / "c.parquet")], tmp_path / "out")
    _fake_datasets_folder(tmp_path / "ds", ["x\n"] * 10)
    (tmp_path / "ds" / "data-00001-of-00002.arrow").unlink()
    with pytest.raises(UserError, match="missing arrow files: data-00001-of-00002.arrow"):
        prepare([str(tmp_path / "ds")], tmp_path / "out")
    assert _no_leftovers(tmp_path)


def test_unreadable_file(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_bytes(b"hello\n" * 100)
    real_open = open

    def failing_open(path, *args, **kwargs):
        if str(path).endswith("a.txt"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(sources, "open", failing_open, raising=False)
    with pytest.raises(UserError, match=r"cannot read .*a\.txt: Permission denied"):
        prepare([str(tmp_path / "a.txt")], tmp_path / "out")


def test_prepare_streams_in_constant_memory(tmp_path):
    """A 12 MB jsonl.gz is prepared with far less Python memory than its size."""
    doc = json.dumps({"text": "word " * 200 + "\n"}).encode() + b"\n"
    with gzip.open(tmp_path / "big.jsonl.gz", "wb", compresslevel=1) as f:
        for _ in range(12):
            f.write(doc * 1000)
    tracemalloc.start()
    try:
        meta = prepare([str(tmp_path / "big.jsonl.gz")], tmp_path / "out")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert meta["sources"][0]["bytes"] > 12_000_000
    assert peak < 6_000_000, f"peak Python memory {peak:,} bytes"


def test_dataset_folder_found_inside_a_walked_folder(tmp_path, plain):
    docs, expected = plain
    (tmp_path / "corpus").mkdir()
    _fake_datasets_folder(tmp_path / "corpus" / "ds", docs)
    meta = prepare([str(tmp_path / "corpus")], tmp_path / "out")
    assert [Path(s["path"]).name for s in meta["sources"]] == ["ds"]  # not its json / arrow files
    assert _splits(tmp_path / "out") == expected


@pytest.mark.parametrize("name, module", [("a.parquet", "pyarrow"), ("a.arrow", "pyarrow"), ("a.zst", "zstandard")])
def test_missing_optional_package_is_one_line(tmp_path, monkeypatch, name, module):
    (tmp_path / "a.parquet").write_bytes(b"PAR1" + b"\x00" * 100 + b"PAR1")
    (tmp_path / "a.arrow").write_bytes(b"ARROW1\x00\x00" + b"\x00" * 100)
    (tmp_path / "a.zst").write_bytes(zstandard.ZstdCompressor().compress(b"x\n" * 100))
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(UserError, match=rf"needs (the )?{module}.*pip install 'bytelm\[data\]'"):
        prepare([str(tmp_path / name)], tmp_path / "out")


def test_latin1_text_is_kept_with_a_warning(tmp_path, caplog):
    text = ("café crème à la française\n".encode("latin-1") + "αβγ δέλτα\n".encode("iso-8859-7")) * 100
    (tmp_path / "l1.txt").write_bytes(text)
    with caplog.at_level(logging.WARNING):
        prepare([str(tmp_path / "l1.txt")], tmp_path / "out")
    assert b"".join(_splits(tmp_path / "out").values()) == text
    assert any("not valid UTF-8" in r.getMessage() for r in caplog.records)
    caplog.clear()
    (tmp_path / "u8.txt").write_bytes("é".encode() * 40_000)  # the 64 KiB sniff ends inside a character
    with caplog.at_level(logging.WARNING):
        prepare([str(tmp_path / "u8.txt")], tmp_path / "out")
    assert not caplog.records
