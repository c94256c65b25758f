"""``bytelm live`` end to end: stdin streams, resume, dry run, bad inputs as one-line errors."""
import io
import json
import sys
import types

import pytest

from bytelm.cli.__main__ import main


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """main(argv) in-process (the CLI discovers cli/live.py); returns (exit code, stdout, stderr)."""
    def run(argv, stdin: bytes | None = None):
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(stdin)))
        rc = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return rc, out, err
    return run


def test_stdin_stream_resume_and_dry_run(run_cli, trainer_run, en_corpus, tmp_path, tr_bytes):
    out = tmp_path / "live"
    data = tr_bytes[:128 * 10 + 1]
    rc, stdout, err = run_cli(["live", trainer_run, "--stream", "-", "--out", out, "--batch-size", 2,
                               "--eval-data", en_corpus, "--eval-bytes", 2000, "--ckpt-every", 2,
                               "--replay", 0.5, "--replay-from", en_corpus], stdin=data[:128 * 6 + 1])
    assert rc == 0, err
    assert "learned: 6 chunks" in stdout and "original domain:" in stdout
    summary = json.loads((out / "live_summary.json").read_text())
    assert summary["updates"] == 3 and summary["replayed"] == 3 and summary["forgetting"]["before"] > 0
    # continue the same stream where the checkpoint stopped (the saved options are kept)
    rc, stdout, err = run_cli(["live", out, "--stream", "-", "--resume"], stdin=data)
    assert rc == 0, err
    assert "learned after skipping 768 bytes: 4 chunks" in stdout
    state = json.loads((out / "ckpt/last/live_state.json").read_text())
    assert state["step"] == 10 and state["config"]["replay"] == 0.5
    snap = sorted((p.name, p.stat().st_mtime_ns) for p in (out / "ckpt/last").iterdir())
    rc, stdout, err = run_cli(["live", out, "--stream", "-", "--dry-run"], stdin=data)
    assert rc == 0, err
    assert "dry run (nothing learned): 10 chunks" in stdout and "0 novel, 10 repeated" in stdout
    assert sorted((p.name, p.stat().st_mtime_ns) for p in (out / "ckpt/last").iterdir()) == snap


def _one_line_error(rc, out, err, needle):
    assert rc == 2 and out == "" and "Traceback" not in err, err
    assert err.startswith("bytelm: error: ") and err.count("\n") == 1 and needle in err, err


@pytest.mark.parametrize("args,needle", [
    (["--stream", "{missing}"], "file not found"),
    (["--stream", "{stream}", "--context", "129"], "exceeds the model context"),
    (["--stream", "{stream}", "--capacity", "0"], "capacity must be >= 1"),
    (["--stream", "{stream}", "--lr", "nan"], "finite"),
    (["--stream", "{stream}", "--lr", "abc"], "invalid float"),
    (["--stream", "{stream}", "--min-scale", "2"], "min scale"),
    (["--stream", "{stream}", "--resume"], "needs a live checkpoint"),
    (["--stream", "{stream}", "--replay-from", "{stream}"], "needs --replay"),
    (["--stream", "{stream}", "--out", "{stream}"], "not a folder"),
    (["--stream", "{tmp}"], "is a folder"),
    (["--stream", "{stream}", "--eval-data", "{missing}"], "not found"),
    (["--stream", "{stream}", "--eval-bytes", "-1"], "--eval-bytes"),
])
def test_bad_inputs(run_cli, tiny_ckpt, tmp_path, args, needle):
    stream = tmp_path / "s.bin"
    stream.write_bytes(bytes(range(256)) * 2)
    args = [a.format(missing=tmp_path / "nope", stream=stream, tmp=tmp_path) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "o")]
    _one_line_error(*run_cli(["live", tiny_ckpt, *args]), needle)


def test_refuses_to_overwrite_another_live_run(run_cli, tiny_ckpt, tmp_path):
    stream = tmp_path / "s.bin"
    stream.write_bytes(bytes(range(256)) * 3)
    assert run_cli(["live", tiny_ckpt, "--stream", stream, "--out", tmp_path / "o",
                    "--context", 64])[0] == 0
    _one_line_error(*run_cli(["live", tiny_ckpt, "--stream", stream, "--out", tmp_path / "o"]),
                    "already holds a live checkpoint")
    _one_line_error(*run_cli(["live", tmp_path / "nope", "--stream", stream]), "not found")
