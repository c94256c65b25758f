"""Bench tests time tiny models on CPU: one intra-op thread, so a busy machine (other test
processes spinning OpenMP threads on the same cores) cannot slow a run down by orders of
magnitude."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
