"""Shared fixtures for the data tests."""

from __future__ import annotations

from pathlib import Path

import pytest

# The project's read-only corpora live next to the repository (see shared/data/README.md).
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """Path of shared/data; skips the test where it is not mounted."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"{SHARED_DATA} not available")
    return SHARED_DATA
