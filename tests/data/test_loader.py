"""Tests for split access (bytelm.data.shards) and the samplers (bytelm.data.loader)."""

from __future__ import annotations

import json
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bytelm.data import (
    ByteSplit,
    RandomWindowSampler,
    SequentialWindows,
    count_scored,
    open_split,
    plan_windows,
)
from bytelm.errors import UserError


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A folder with train/val/test.bin of random bytes and the sizes meta.json records."""
    import json
    rng = np.random.default_rng(0)
    sizes = {"train": 50_000, "val": 3_001, "test": 17}
    for split, n in sizes.items():
        rng.integers(0, 256, n, dtype=np.uint8).tofile(tmp_path / f"{split}.bin")
    (tmp_path / "meta.json").write_text(json.dumps({"splits": {s: {"bytes": n} for s, n in sizes.items()}}))
    return tmp_path


@pytest.mark.parametrize("damage", ["truncate", "no-meta"])
def test_open_split_checks_sizes_against_meta(corpus, damage):
    """A truncated split or a missing meta.json is refused, never trained or scored silently."""
    if damage == "truncate":
        data = (corpus / "train.bin").read_bytes()
        (corpus / "train.bin").write_bytes(data[:-100])
        needle = "49,900 bytes but .*meta.json records 50,000"
    else:
        (corpus / "meta.json").unlink()
        needle = "no meta.json"
    with pytest.raises(UserError, match=needle):
        open_split(corpus, "train")


def test_open_split(corpus):
    s = open_split(corpus, "train", min_len=1025)
    assert len(s) == 50_000
    expected = np.fromfile(corpus / "train.bin", dtype=np.uint8)
    np.testing.assert_array_equal(s.get(123, 10), expected[123:133])
    with pytest.raises(IndexError):
        s.get(49_995, 10)
    again = pickle.loads(pickle.dumps(s))
    assert isinstance(again, ByteSplit) and len(again) == len(s)
    np.testing.assert_array_equal(again.get(0, 5), expected[:5])


@pytest.mark.parametrize(
    "where, split, min_len, message",
    [
        ("missing", "train", 1, "not a prepared corpus"),
        ("corpus", "dev", 1, "unknown split"),
        ("corpus", "test", 18, "fewer than"),
    ],
)
def test_open_split_errors(corpus, where, split, min_len, message):
    folder = corpus if where == "corpus" else corpus / where
    with pytest.raises(UserError, match=message):
        open_split(folder, split, min_len=min_len)


def test_random_windows_are_slices_of_the_split(corpus):
    split = open_split(corpus, "val")
    data = np.fromfile(corpus / "val.bin", dtype=np.uint8)
    s = RandomWindowSampler(split, seq_len=64, batch_size=8, seed=1)
    for i in range(5):
        b = s.next_batch()
        assert b.dtype == torch.long and b.shape == (8, 65)
        for row, start in zip(b, s.starts(i)):
            assert 0 <= start <= len(data) - 65
            np.testing.assert_array_equal(row.numpy(), data[start : start + 65])


def test_random_windows_cover_both_ends():
    data = np.arange(10, dtype=np.uint8)
    s = RandomWindowSampler(data, seq_len=8, batch_size=64, seed=0)  # starts are only 0 or 1
    starts = set(s.starts(0).tolist())
    assert starts == {0, 1}


def test_sampler_is_deterministic(corpus):
    split = open_split(corpus, "train")
    a = RandomWindowSampler(split, 32, 4, seed=7)
    b = RandomWindowSampler(split, 32, 4, seed=7)
    c = RandomWindowSampler(split, 32, 4, seed=8)
    for _ in range(4):
        x, y, z = a.next_batch(), b.next_batch(), c.next_batch()
        assert torch.equal(x, y) and not torch.equal(x, z)


def test_sampler_resume(corpus):
    split = open_split(corpus, "train")
    a = RandomWindowSampler(split, 32, 4, seed=3)
    for _ in range(3):
        a.next_batch()
    state = json.loads(json.dumps(a.state_dict()))
    assert state == {"batch_index": 3, "seed": 3}
    expected = [a.next_batch() for _ in range(3)]
    b = RandomWindowSampler(split, 32, 4, seed=3)
    b.load_state_dict(state)
    assert all(torch.equal(e, b.next_batch()) for e in expected)
    it = iter(RandomWindowSampler(split, 32, 4, seed=3))
    assert torch.equal(next(it), RandomWindowSampler(split, 32, 4, seed=3).batch_at(0))


def test_rank_slices_match_a_single_rank_with_the_global_batch(corpus):
    split = open_split(corpus, "train")
    single = RandomWindowSampler(split, 16, 6, seed=5)
    ranks = [RandomWindowSampler(split, 16, 3, seed=5, rank=r, world_size=2) for r in range(2)]
    for _ in range(4):
        assert torch.equal(single.next_batch(), torch.cat([r.next_batch() for r in ranks]))


def test_sampler_user_errors(corpus):
    split = open_split(corpus, "test")  # 17 bytes
    with pytest.raises(UserError, match="seq_len"):
        RandomWindowSampler(split, 17, 1, seed=0)
    with pytest.raises(UserError, match="rank"):
        RandomWindowSampler(split, 4, 1, seed=0, rank=2, world_size=2)
    RandomWindowSampler(split, 16, 1, seed=0).next_batch()  # exactly one window fits


def _check_eval_pass(data: np.ndarray, seq_len: int, stride: int, batch_size: int, max_bytes=None) -> None:
    """Run SequentialWindows and check every target 1..N-1 is scored once, with enough context."""
    w = SequentialWindows(data, seq_len, stride=stride, batch_size=batch_size, max_bytes=max_bytes)
    n = w.n_bytes
    windows = iter(w.windows)
    scored: Counter[int] = Counter()
    n_batches = 0
    for x, y, mask in w:
        n_batches += 1
        assert x.shape == y.shape == mask.shape and x.shape[1] == seq_len and x.shape[0] <= batch_size
        assert x.dtype == y.dtype == torch.long and mask.dtype == torch.bool
        for r in range(x.shape[0]):
            win = next(windows)
            real = np.arange(win.n_targets)
            targets = win.start + 1 + real  # absolute index of each target
            np.testing.assert_array_equal(y[r, : win.n_targets].numpy(), data[targets])
            np.testing.assert_array_equal(x[r, : win.n_targets].numpy(), data[targets - 1])
            assert not mask[r, win.n_targets :].any() and not y[r, win.n_targets :].any()  # zero padding
            cols = np.flatnonzero(mask[r].numpy())
            scored.update((win.start + 1 + cols).tolist())
            if win.start > 0:  # context of a scored target at column j is j + 1 bytes
                assert (cols + 1 >= seq_len - stride).all()
    assert next(windows, None) is None and n_batches == len(w)
    assert scored == Counter(range(1, n))
    assert count_scored(n, seq_len, stride) == w.n_scored == n - 1


@pytest.mark.parametrize(
    "n, seq_len, stride, batch_size",
    [
        (101, 10, 10, 1),  # stride == seq_len, N - 1 a multiple of seq_len
        (100, 10, 10, 3),  # not a multiple
        (97, 16, 8, 4),  # overlapping
        (200, 32, 5, 7),
        (37, 8, 1, 2),
        (5, 8, 8, 1),  # split shorter than one window
        (2, 4, 3, 1),  # a single target
    ],
)
def test_sequential_windows_score_every_byte_once(n, seq_len, stride, batch_size):
    data = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8)
    _check_eval_pass(data, seq_len, stride, batch_size)


def test_sequential_windows_max_bytes(corpus):
    split = open_split(corpus, "val")
    _check_eval_pass(split.data, 64, 48, 4, max_bytes=1000)
    assert SequentialWindows(split, 64, max_bytes=10**9).n_bytes == len(split)


@settings(max_examples=60, deadline=None, database=None)
@given(
    n=st.integers(2, 300),
    seq_len=st.integers(1, 40),
    stride_frac=st.floats(0.0, 1.0),
    batch_size=st.integers(1, 5),
)
def test_sequential_windows_property(n, seq_len, stride_frac, batch_size):
    stride = max(1, round(seq_len * stride_frac))
    data = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8)
    _check_eval_pass(data, seq_len, stride, batch_size)


def test_plan_windows_skips():
    plan = plan_windows(25, 8, 4)
    assert [(w.start, w.n_targets, w.skip) for w in plan] == [(0, 8, 0), (4, 8, 4), (8, 8, 4), (12, 8, 4), (16, 8, 4)]


def test_sequential_windows_user_errors():
    data = np.zeros(100, dtype=np.uint8)
    with pytest.raises(UserError, match="stride"):
        SequentialWindows(data, 8, stride=9)
    with pytest.raises(UserError, match="stride"):
        SequentialWindows(data, 8, stride=0)
    with pytest.raises(UserError, match="at least 2 bytes"):
        SequentialWindows(data, 8, max_bytes=1)
