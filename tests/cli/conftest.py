"""Fixtures for the CLI tests: a prepared corpus and a trained tiny checkpoint (each made once),
an isolated BYTELM_CACHE, and ``run_cli`` which calls ``bytelm.cli.__main__.main`` in-process."""
import logging
import shutil
import sys
from pathlib import Path

import pytest

from bytelm.cli.__main__ import main

from tests.conftest import data_path

from .helpers import TRAIN_ARGS, main_ok


@pytest.fixture(scope="session")
def cli_cache(tmp_path_factory) -> Path:
    """A private BYTELM_CACHE for every CLI test, so nothing touches ~/.cache."""
    return tmp_path_factory.mktemp("bytelm-cache")


@pytest.fixture(autouse=True)
def _isolated_cache(cli_cache, monkeypatch):
    monkeypatch.setenv("BYTELM_CACHE", str(cli_cache))


@pytest.fixture(scope="session")
def src_text() -> Path:
    """The shared data's small/en.txt (the test skips, saying so, where it is missing)."""
    return data_path("small", "en.txt")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory, cli_cache, src_text) -> Path:
    """en.txt prepared once with ``bytelm prepare`` (train 54,284 / val 4,289 / test 1,542 bytes)."""
    out = tmp_path_factory.mktemp("cli-corpus") / "en"
    main_ok(["prepare", src_text, "--out", out], cli_cache)
    return out


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, corpus, cli_cache) -> Path:
    """A transformer-tiny run trained for 2 steps once; checkpoints in RUN/ckpt/{last,best}."""
    run = tmp_path_factory.mktemp("cli-run") / "run"
    main_ok(["train", "--preset", "transformer-tiny", "--data", corpus, "--out", run, *TRAIN_ARGS],
             cli_cache)
    assert (run / "ckpt" / "last" / "model.safetensors").is_file()
    return run


@pytest.fixture(scope="session")
def ckpt(trained_run) -> Path:
    return trained_run / "ckpt" / "last"


@pytest.fixture
def ckpt_copy(ckpt, tmp_path) -> Path:
    """A private copy of the trained checkpoint, free to damage."""
    return Path(shutil.copytree(ckpt, tmp_path / "ckpt_copy"))


@pytest.fixture
def run_cli(capsys):
    """run_cli(*argv, stdin=None) -> (exit code, stdout, stderr) of an in-process ``bytelm``.

    Log records go to the captured stderr as the real CLI's logging.basicConfig sends them
    (under pytest, the root logger already has handlers, so basicConfig would do nothing).
    """
    def run(*argv, stdin: bytes | None = None):
        import io
        capsys.readouterr()
        root = logging.getLogger()
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        old_level, old_stdin = root.level, sys.stdin
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        if stdin is not None:
            sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
        try:
            rc = main([str(a) for a in argv])
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
            sys.stdin = old_stdin
        out, err = capsys.readouterr()
        return rc, out, err
    return run
