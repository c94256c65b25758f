"""Constants and assertions shared by the CLI tests."""
import hashlib
from pathlib import Path

import pytest

from bytelm.cli.__main__ import main

# Tiny and fast: 2 steps of batch 2, validation only at the end over 2,000 bytes.
TRAIN_ARGS = ["--train.steps=2", "--train.batch_size=2", "--train.eval_every=0",
              "--train.eval_bytes=2000", "--train.progress=false"]
CONTEXT = 128  # transformer-tiny


def assert_user_error(rc: int, out: str, err: str, *needles: str) -> str:
    """Exit code 2, nothing on stdout, exactly one non-empty ``bytelm: error:`` line on stderr."""
    assert rc == 2, f"exit code {rc}, stderr:\n{err}"
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}:\n{err}"
    line = lines[0]
    assert line.startswith("bytelm: error: ") and line[len("bytelm: error: "):].strip(), line
    assert err == line + "\n"
    assert out == "", f"unexpected stdout: {out!r}"
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line


def snapshot(root: Path) -> dict[str, str | None]:
    """Every path under root (hidden ones included) -> sha256 of its bytes (None for folders)."""
    root = Path(root)
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def main_ok(argv: list, cache: Path) -> None:
    """Runs ``bytelm ARGV`` in-process with BYTELM_CACHE=cache (for session fixtures) and checks
    that it succeeded."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BYTELM_CACHE", str(cache))
        rc = main([str(a) for a in argv])
    assert rc == 0, f"bytelm {' '.join(map(str, argv))} exited with {rc}"
