"""Shared test setup: deterministic seeds, NaN-poisoned torch.empty, the data folder, one
intra-op thread for tiny models."""
import contextlib
import os
from pathlib import Path

import pytest
import torch
import torch.utils._device

from bytelm.data.shared import ENV as DATA_ENV
from bytelm.data.shared import shared_data_dir

# the shared corpora: $BYTELM_SHARED_DATA, else ../shared/data beside the repository
SHARED_DATA = shared_data_dir()

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

_real_empty = torch.empty
# torch.device("meta") finds the factories to redirect in a set cached at first use; filled now,
# it holds the real torch.empty, so the NaN-poisoned wrapper below still builds on meta
torch.utils._device._device_constructors()


@contextlib.contextmanager
def threads(n: int):
    """torch's intra-op threads set to n inside the block (for session-scoped fixtures)."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@pytest.fixture()
def one_thread():
    """One intra-op thread: tiny matmuls run several times faster so, and other jobs spinning
    OpenMP threads on the same cores cannot slow a run down by orders of magnitude."""
    with threads(1):
        yield


def _poisoned_empty(*args, **kwargs):
    # uninitialised memory must never be read: fill float tensors with NaN so a read shows up
    t = _real_empty(*args, **kwargs)
    if t.is_floating_point() or t.is_complex():
        t.fill_(float("nan"))
    return t


@pytest.fixture(autouse=True)
def _poison_and_seed(monkeypatch, tmp_path_factory):
    monkeypatch.setattr(torch, "empty", _poisoned_empty)
    monkeypatch.setenv("BYTELM_CACHE", str(tmp_path_factory.getbasetemp() / "bytelm-cache"))
    torch.manual_seed(42)
    yield


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def data_path(*parts: str) -> Path:
    """SHARED_DATA/parts; skips the calling test, naming the path and the variable, where it is
    missing (the skip reason shows in the summary: pytest runs with -rs)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs the shared data: {path} not found (set {DATA_ENV} to its folder)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return data_path()


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    """SHARED_DATA/small/en.txt prepared once (90/5/5 at line boundaries)."""
    from bytelm.data import prepare
    src = data_path("small", "en.txt")
    out = tmp_path_factory.mktemp("corpus") / "small_en"
    prepare([str(src)], out)
    return out
