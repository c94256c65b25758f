"""``bytelm prepare`` on other formats: options, one summary line, one-line refusals, and the
temp folder of a killed prepare cleaned by the next one."""
import gzip
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import SRC_TEXT, assert_user_error, snapshot

REPO = Path(__file__).resolve().parents[2]


def test_prepare_summary_printed_once(run_cli, tmp_path):
    rc, out, err = run_cli("prepare", SRC_TEXT, "--out", tmp_path / "c")
    assert rc == 0
    assert (out + err).count("prepared") == 1, (out, err)


def test_prepare_jsonl_options(run_cli, tmp_path):
    rows = "".join(f'{{"meta": {{"body": "doc {i}"}}}}\n' for i in range(200))
    (tmp_path / "d.jsonl.gz").write_bytes(gzip.compress(rows.encode()))
    rc, out, err = run_cli("prepare", tmp_path / "d.jsonl.gz", "--out", tmp_path / "c",
                           "--text-field", "meta.body", "--doc-sep", "\\x1e")
    assert rc == 0, err
    blob = b"".join((tmp_path / "c" / f"{s}.bin").read_bytes() for s in ("train", "val", "test"))
    # no newline in the stream: the cuts fall exactly at 90% / 95%, so the parts join back to it
    assert blob == b"\x1e".join(f"doc {i}".encode() for i in range(200))


@pytest.mark.parametrize("name, data, extra, needles", [
    ("a.txt", gzip.compress(b"hello\n" * 9), [], ["a.txt", "gzip-compressed"]),
    ("a.jsonl", b'{"text": "x"}\n{"body": 1}\n', [], ["a.jsonl:2", "no field 'text'", "--text-field"]),
    ("a.jsonl", b'{"text": "x"}\n{"text": "y"\n', [], ["a.jsonl:2", "bad JSON"]),
    ("a.txt", bytes(range(256)) * 8, [], ["a.txt", "not text", "--format raw"]),
    ("a.txt", b"hello\n" * 9, ["--doc-sep", "\\q"], ["bad escape"]),
    ("a.txt", b"hello\n" * 9, ["--format", "csv"], ["--format", "csv"]),
])
def test_prepare_refusals_are_one_line(run_cli, tmp_path, name, data, extra, needles):
    (tmp_path / name).write_bytes(data)
    before = snapshot(tmp_path)
    rc, o, e = run_cli("prepare", tmp_path / name, "--out", tmp_path / "out", *extra)
    assert_user_error(rc, o, e, *needles)
    assert snapshot(tmp_path) == before, "prepare left files behind"


def test_killed_prepare_temp_folder_cleaned_on_next_run(run_cli, tmp_path):
    out = tmp_path / "corpus"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "bytelm", "prepare", "-", "--out", str(out)],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        proc.stdin.write(b"some text\n" * 1000)
        proc.stdin.flush()
        deadline = time.time() + 120
        # the prepare blocks reading stdin, its temp folder already made
        while not list(tmp_path.glob(".corpus.tmp-*")) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        left = list(tmp_path.glob(".corpus.tmp-*"))
        assert left, "no temp folder appeared"
    finally:
        proc.kill()
        proc.wait()
    assert all(p.exists() for p in left)  # kill -9: nothing could clean up
    rc, o, e = run_cli("prepare", SRC_TEXT, "--out", out)
    assert rc == 0, e
    assert not list(tmp_path.glob(".corpus.*")) and (out / "meta.json").is_file()
