"""Fixtures for the trainer tests: one prepared corpus per session, tiny fast configs."""
from pathlib import Path

import pytest

from tests.conftest import data_path, threads

# Defaults every trainer test starts from: transformer-tiny (context 128), a few CPU steps.
BASE = {
    "train.device": "cpu",
    "train.progress": False,
    "train.batch_size": 4,
    "train.log_every": 1,
    "train.eval_every": 0,
    "train.eval_bytes": 1024,
    "train.seed": 7,
    "eval.batch_size": 8,
    "optim.warmup_steps": 2,
}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """shared/data/small/en.txt prepared once per session (train ~54 KB, val ~4 KB)."""
    from bytelm.data import prepare
    src = data_path("small", "en.txt")
    out = tmp_path_factory.mktemp("train-corpus") / "en"
    prepare([str(src)], out)
    return out


@pytest.fixture(autouse=True)
def _fast_cpu(monkeypatch, tmp_path_factory):
    """One intra-op thread (tiny matmuls are fastest so, and immune to other jobs on the cores);
    a private BYTELM_CACHE."""
    monkeypatch.setenv("BYTELM_CACHE", str(tmp_path_factory.getbasetemp() / "bytelm-cache"))
    with threads(1):
        yield


@pytest.fixture
def make_cfg(corpus):
    """make_cfg(out_dir, {"train.steps": 12, ...}) -> RunConfig on the session corpus."""
    from bytelm.options import build_run_config

    def make(out_dir, overrides: dict | None = None, preset: str = "transformer-tiny"):
        return build_run_config(preset, {**BASE, "data.path": str(corpus),
                                         "train.out_dir": str(out_dir), **(overrides or {})})
    return make
