"""Read-only, memory-mapped access to one split (``train.bin``/``val.bin``/``test.bin``) of a prepared corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bytelm.data.splits import META_NAME, SPLITS, load_meta
from bytelm.errors import UserError


class ByteSplit:
    """One split file as a uint8 memmap; nothing is read until indexed.

    Pickles by path (reopening the memmap), so it can go to DataLoader workers or subprocesses
    without copying the file.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = self.path.stem
        self.data = self._open()

    def _open(self) -> np.ndarray:
        if self.path.stat().st_size == 0:
            # np.memmap refuses empty files; an empty array behaves the same for callers.
            return np.zeros(0, dtype=np.uint8)
        return np.memmap(self.path, dtype=np.uint8, mode="r")

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def get(self, start: int, length: int) -> np.ndarray:
        """Bytes [start, start + length) of the split.

        Args:
            start: first byte offset, 0 <= start.
            length: number of bytes; start + length <= len(self).
        Returns:
            uint8 array of shape (length,), a read-only view of the file.
        """
        if start < 0 or length < 0 or start + length > len(self):
            raise IndexError(f"bytes [{start}, {start + length}) outside {self.name} split of {len(self)} bytes")
        return self.data[start : start + length]

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])

    def __repr__(self) -> str:
        return f"ByteSplit({str(self.path)!r}, {len(self):,} bytes)"


def open_split(data_dir: str | Path, split: str, min_len: int = 1) -> ByteSplit:
    """Open DIR/{split}.bin of a prepared corpus.

    Args:
        data_dir: folder written by ``bytelm prepare``.
        split: "train", "val" or "test".
        min_len: the fewest bytes the caller needs (e.g. seq_len + 1 for one window).
    Returns:
        The ByteSplit.
    Raises:
        UserError: unknown split, folder or file missing, no meta.json, a size that differs from
            the one meta.json records (a truncated or replaced file), or a split shorter than
            min_len.
    """
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})")
    folder = Path(data_dir).expanduser()
    path = folder / f"{split}.bin"
    if not path.is_file():
        raise UserError(f"{data_dir} is not a prepared corpus (no {split}.bin): run `bytelm prepare`")
    bs = ByteSplit(path)
    recorded = _recorded_size(folder, split)
    if recorded != len(bs):
        raise UserError(f"{path} has {len(bs):,} bytes but {folder / META_NAME} records "
                        f"{recorded:,} (truncated or replaced?); prepare the corpus again")
    if len(bs) < min_len:
        raise UserError(
            f"{split} split of {data_dir} has {len(bs):,} bytes, fewer than the {min_len:,} needed "
            "(use a shorter seq_len or a bigger corpus)"
        )
    return bs


def _recorded_size(folder: Path, split: str) -> int:
    """The byte count of ``split`` that ``bytelm prepare`` wrote into meta.json."""
    meta = load_meta(folder)
    try:
        n = meta["splits"][split]["bytes"]
    except (KeyError, TypeError):
        n = None
    if isinstance(n, bool) or not isinstance(n, int):
        raise UserError(f"{folder / META_NAME} records no size for the {split} split; "
                        "prepare the corpus again")
    return n
