"""``bytelm prepare`` on other formats: options, one summary line, one-line refusals, and the
temp folder of a killed prepare cleaned by the next one."""
import gzip
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import assert_user_error, snapshot

REPO = Path(__file__).resolve().parents[2]


def test_prepare_summary_printed_once(run_cli, tmp_path, src_text):
    rc, out, err = run_cli("prepare", src_text, "--out", tmp_path / "c")
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


def test_killed_prepare_temp_folder_cleaned_on_next_run(run_cli, tmp_path, src_text):
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
    rc, o, e = run_cli("prepare", src_text, "--out", out)
    assert rc == 0, e
    assert not list(tmp_path.glob(".corpus.*")) and (out / "meta.json").is_file()


def _readme_your_data_block() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("### Your data", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_your_data_commands(run_cli, tmp_path, monkeypatch):
    """The README's "Your data" commands, run on tiny files of the names they use."""
    import json
    import shlex

    pa = pytest.importorskip("pyarrow")
    zstandard = pytest.importorskip("zstandard")
    rows = "".join(json.dumps({"text": f"document {i}\n"}) + "\n" for i in range(100)).encode()
    (tmp_path / "docs.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(rows))
    (tmp_path / "my_dataset").mkdir()
    table = pa.table({"text": [f"row {i}\n" for i in range(100)]})
    with pa.ipc.new_stream(str(tmp_path / "my_dataset" / "data-00000-of-00001.arrow"), table.schema) as w:
        w.write_table(table)
    (tmp_path / "my_dataset" / "state.json").write_text('{"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}')
    (tmp_path / "my_dataset" / "dataset_info.json").write_text("{}")
    (tmp_path / "notes").mkdir()
    for i in range(3):
        (tmp_path / "notes" / f"n{i}.txt").write_text("a note\n" * 40)
    monkeypatch.chdir(tmp_path)
    lines = _readme_your_data_block()
    assert len(lines) == 3
    for line in lines:
        argv = shlex.split(line, comments=True)
        assert argv[0] == "bytelm"
        rc, out, err = run_cli(*argv[1:])
        assert rc == 0, f"{line}: {err}"
        out_dir = tmp_path / argv[argv.index("--out") + 1]
        assert (out_dir / "meta.json").is_file()
    train = (tmp_path / "data" / "notes" / "train.bin").read_bytes()
    assert train.count(b"a note\n\na note") == 2  # three files, a blank line between each two
