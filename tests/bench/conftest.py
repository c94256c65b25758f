"""Bench tests time tiny models on CPU, on one intra-op thread (see tests/conftest.py)."""
import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield
