"""Fixtures for the live-learning tests: one thread, an untrained tiny checkpoint, and a
transformer-tiny run trained for 2 steps by the real trainer (made once per session)."""
from pathlib import Path

import pytest
import torch

from tests.conftest import data_path, threads


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    """An untrained transformer-tiny (context 128) saved as a model checkpoint."""
    from bytelm.registry import create_model, preset_config
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("live-tiny") / "tiny"
    create_model(preset_config("transformer-tiny")).save(path)
    return path


@pytest.fixture(scope="session")
def en_corpus(tmp_path_factory) -> Path:
    from bytelm.data import prepare
    src = data_path("small", "en.txt")
    out = tmp_path_factory.mktemp("live-corpus") / "en"
    prepare([str(src)], out)
    return out


@pytest.fixture(scope="session")
def trainer_run(tmp_path_factory, en_corpus) -> Path:
    """2 steps of transformer-tiny through bytelm.train.loop.train: RUN/ckpt/{last,best}."""
    from bytelm.options import build_run_config
    from bytelm.train.loop import train
    run = tmp_path_factory.mktemp("live-run") / "run"
    with threads(1):
        train(build_run_config("transformer-tiny", {
            "train.device": "cpu", "train.progress": False, "train.steps": 2,
            "train.batch_size": 2, "train.eval_bytes": 1024, "train.seed": 3,
            "data.path": str(en_corpus), "train.out_dir": str(run)}))
    return run


@pytest.fixture(scope="session")
def tr_bytes() -> bytes:
    src = data_path("small", "tr.txt")
    return src.read_bytes()
