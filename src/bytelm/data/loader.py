"""Batch samplers over a byte split: random windows for training, contiguous windows for evaluation.

Both are deterministic. :class:`RandomWindowSampler` is also resumable: batch number i depends
only on (seed, i), so restoring ``batch_index`` from a checkpoint reproduces the rest of the run,
even with a different number of ranks as long as the global batch size is unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch

from bytelm.data.shards import ByteSplit
from bytelm.errors import UserError

log = logging.getLogger(__name__)


def _as_array(split: ByteSplit | np.ndarray) -> np.ndarray:
    """The uint8 array behind a ByteSplit (or an array/bytes given directly, handy in tests)."""
    if isinstance(split, ByteSplit):
        return split.data
    if isinstance(split, (bytes, bytearray)):
        return np.frombuffer(split, dtype=np.uint8)
    return np.asarray(split, dtype=np.uint8)


class IndexedBatches:
    """Batches addressed by a global index: subclasses define ``batch_at(i)`` and keep
    ``batch_index``; iteration and ``next_batch`` advance it (the resume state)."""

    batch_index: int = 0

    def batch_at(self, index: int) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def next_batch(self) -> torch.Tensor:
        """The next batch; advances batch_index.

        Returns:
            LongTensor (batch_size, seq_len + 1).
        """
        batch = self.batch_at(self.batch_index)
        self.batch_index += 1
        return batch

    def __iter__(self) -> Iterator[torch.Tensor]:
        while True:
            yield self.next_batch()


class RandomWindowSampler(IndexedBatches):
    """Random windows of seq_len + 1 bytes; rank r of world_size takes its slice of each global batch.

    Global batch i draws world_size * batch_size start offsets with
    ``np.random.default_rng([seed, i])``, uniform in [0, len - seq_len - 1]; rank r takes rows
    [r * batch_size, (r + 1) * batch_size). So 2 ranks with batch_size b see exactly the rows of
    1 rank with batch_size 2b.
    """

    def __init__(
        self,
        split: ByteSplit | np.ndarray,
        seq_len: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        pin_memory: bool = False,
    ):
        if seq_len < 1 or batch_size < 1:
            raise UserError(f"seq_len and batch_size must be >= 1, got {seq_len} and {batch_size}")
        if not 0 <= rank < world_size:
            raise UserError(f"rank {rank} is outside world_size {world_size}")
        if seed < 0:
            raise UserError(f"seed must be >= 0, got {seed}")
        self.data = _as_array(split)
        if len(self.data) < seq_len + 1:
            raise UserError(
                f"split has {len(self.data):,} bytes, fewer than seq_len + 1 = {seq_len + 1:,}"
            )
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.seed = int(seed)
        self.rank = rank
        self.world_size = world_size
        self.pin_memory = pin_memory and torch.cuda.is_available()
        self.batch_index = 0
        self._offsets = np.arange(seq_len + 1, dtype=np.int64)

    def starts(self, index: int) -> np.ndarray:
        """Start offsets of this rank's rows of global batch ``index``.

        Args:
            index: global batch number, >= 0.
        Returns:
            int64 array of shape (batch_size,).
        """
        rng = np.random.default_rng([self.seed, index])
        n_start = len(self.data) - self.seq_len  # starts 0 .. len - seq_len - 1 inclusive
        all_starts = rng.integers(0, n_start, size=self.world_size * self.batch_size, dtype=np.int64)
        return all_starts[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]

    def batch_at(self, index: int) -> torch.Tensor:
        """Global batch ``index`` (this rank's rows); does not move the sampler.

        Args:
            index: global batch number, >= 0.
        Returns:
            LongTensor (batch_size, seq_len + 1); x = b[:, :-1], y = b[:, 1:].
        """
        idx = self.starts(index)[:, None] + self._offsets  # one vectorised gather, no per-byte loop
        out = torch.from_numpy(self.data[idx].astype(np.int64))
        return out.pin_memory() if self.pin_memory else out

    def state_dict(self) -> dict:
        """JSON-able resume state.

        Returns:
            {"batch_index": next global batch number, "seed": seed}.
        """
        return {"batch_index": self.batch_index, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        """Resume from :meth:`state_dict`; the saved seed wins over the constructor's.

        Args:
            state: {"batch_index": int, "seed": int}.
        """
        if int(state["seed"]) != self.seed:
            log.warning("resuming sampler with saved seed %s instead of %s", state["seed"], self.seed)
        self.seed = int(state["seed"])
        self.batch_index = int(state["batch_index"])


class EvalBatch(NamedTuple):
    """One evaluation batch; unpacks as ``x, y, score_mask``."""

    x: torch.Tensor  # LongTensor (B, seq_len): inputs
    y: torch.Tensor  # LongTensor (B, seq_len): targets, y[:, j] follows x[:, j]
    score_mask: torch.Tensor  # BoolTensor (B, seq_len): count the loss only where True


class Window(NamedTuple):
    """One evaluation window: inputs are bytes [start, start + n_targets), targets one later."""

    start: int
    n_targets: int  # seq_len, except for a shorter last window
    skip: int  # leading targets already scored by the previous window


def plan_windows(n_bytes: int, seq_len: int, stride: int) -> list[Window]:
    """Windows that score every target byte 1..n_bytes-1 exactly once.

    Args:
        n_bytes: bytes in the stream (N >= 2).
        seq_len: targets per full window.
        stride: distance between window starts, 1 <= stride <= seq_len.
    Returns:
        Windows at starts 0, stride, 2*stride, ... until one reaches the end; skip is 0 for the
        first and seq_len - stride for the others.
    """
    windows = []
    start = 0
    while True:
        n_targets = min(seq_len, n_bytes - 1 - start)
        windows.append(Window(start, n_targets, 0 if start == 0 else seq_len - stride))
        if start + n_targets >= n_bytes - 1:
            return windows
        start += stride


def count_scored(n_bytes: int, seq_len: int, stride: int) -> int:
    """How many targets the windows of :func:`plan_windows` score (N - 1 by construction).

    Args:
        n_bytes, seq_len, stride: as for plan_windows.
    Returns:
        The number of scored target positions.
    """
    return sum(w.n_targets - w.skip for w in plan_windows(n_bytes, seq_len, stride))


class SequentialWindows:
    """Contiguous evaluation windows covering a split (or its first max_bytes), in order.

    Every batch is (B, seq_len) with B = batch_size except possibly the last batch, which has
    fewer rows. The last window may hold fewer than seq_len targets: it is right-padded with
    zeros and its padding has score_mask False (padding sits after the real bytes, so it cannot
    affect them in a causal model). With stride < seq_len each window re-reads seq_len - stride
    bytes of context and masks those targets out, so every byte 1..N-1 is scored exactly once
    and, after the first window, with at least seq_len - stride bytes of context.
    """

    def __init__(
        self,
        split: ByteSplit | np.ndarray,
        seq_len: int,
        stride: int | None = None,
        batch_size: int = 1,
        max_bytes: int | None = None,
    ):
        stride = seq_len if stride is None else stride
        if seq_len < 1 or batch_size < 1:
            raise UserError(f"seq_len and batch_size must be >= 1, got {seq_len} and {batch_size}")
        if not 1 <= stride <= seq_len:
            raise UserError(f"eval stride must be in [1, seq_len={seq_len}], got {stride}")
        self.data = _as_array(split)
        self.n_bytes = len(self.data) if max_bytes is None else min(len(self.data), max_bytes)
        if self.n_bytes < 2:
            raise UserError(f"need at least 2 bytes to evaluate, got {self.n_bytes}")
        self.seq_len = seq_len
        self.stride = stride
        self.batch_size = batch_size
        self.windows = plan_windows(self.n_bytes, seq_len, stride)

    @property
    def n_scored(self) -> int:
        """Number of target positions scored over a full pass (N - 1)."""
        return sum(w.n_targets - w.skip for w in self.windows)

    def __len__(self) -> int:
        return -(-len(self.windows) // self.batch_size)

    def __iter__(self) -> Iterator[EvalBatch]:
        cols = np.arange(self.seq_len + 1, dtype=np.int64)
        for i in range(0, len(self.windows), self.batch_size):
            group = self.windows[i : i + self.batch_size]
            starts = np.array([w.start for w in group], dtype=np.int64)
            lens = np.array([w.n_targets for w in group], dtype=np.int64)
            skips = np.array([w.skip for w in group], dtype=np.int64)
            idx = starts[:, None] + cols
            valid = cols[None, :] <= lens[:, None]  # bytes start .. start + n_targets are real
            rows = np.where(valid, self.data[np.minimum(idx, self.n_bytes - 1)], 0).astype(np.int64)
            tgt = cols[None, : self.seq_len]
            mask = (tgt >= skips[:, None]) & (tgt < lens[:, None])
            rows_t = torch.from_numpy(rows)
            yield EvalBatch(rows_t[:, :-1].contiguous(), rows_t[:, 1:].contiguous(), torch.from_numpy(mask))
