"""From patch ends to per-patch batches: patch ids, lengths, and a padded (B, N, L) packing.

The bytes after a row's last end form one more (open) patch; it is counted and packed like the
others, and a caller that wants closed patches only can drop it (it exists iff not ends[:, -1]).
Everything is gathers and scatters over whole tensors: no loop over patches.
"""
from typing import NamedTuple

import torch


class Packing(NamedTuple):
    """Where every byte of every patch lives, for batched per-patch processing.

    index: (B, N, L) long, index[b, n, j] = position in T of byte j of patch n (0 where padded).
    mask: (B, N, L) bool, True on real bytes.
    lengths: (B, N) long, bytes per patch (0 for padding patches).
    n_patches: (B,) long, patches per row (the open tail included).
    slot: (B, T) long, slot[b, t] = n * L + j: where byte t sits in the flattened (N * L) axis.
    """

    index: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor
    n_patches: torch.Tensor
    slot: torch.Tensor


def patch_ids(ends: torch.Tensor) -> torch.Tensor:
    """Patch index of every byte: the number of ends strictly before it.

    Args:
        ends: (B, T) bool.
    Returns:
        (B, T) long.
    """
    e = ends.long()
    return e.cumsum(1) - e


def patch_offsets(ends: torch.Tensor) -> torch.Tensor:
    """Position of every byte within its patch, (B, T) bool -> (B, T) long (0 at a patch start)."""
    B, T = ends.shape
    idx = torch.arange(T, device=ends.device).expand(B, T)
    last_end = torch.where(ends.bool(), idx, -1).cummax(1).values
    # the last end strictly before t: shift the inclusive running max right by one
    before = torch.cat([torch.full((B, 1), -1, device=ends.device), last_end[:, :-1]], 1)
    return idx - before - 1


def patch_lengths(ends: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Length of every patch.

    Args:
        ends: (B, T) bool.
    Returns:
        lengths (B, N) long, zero-padded to N = the most patches in a row, and n_patches (B,).
    """
    B, T = ends.shape
    ids = patch_ids(ends)
    n_patches = ids[:, -1] + 1 if T else torch.zeros(B, dtype=torch.long, device=ends.device)
    N = int(n_patches.max()) if B else 0
    lengths = torch.zeros(B, N, dtype=torch.long, device=ends.device)
    lengths.scatter_add_(1, ids, torch.ones_like(ids))
    return lengths, n_patches


def pack_index(ends: torch.Tensor, max_len: int | None = None) -> Packing:
    """Padded index of every patch's bytes.

    Args:
        ends: (B, T) bool.
        max_len: L (None: the longest patch); a longer patch is a ValueError.
    Returns:
        Packing with index and mask of shape (B, N, L).
    """
    B, T = ends.shape
    ids, offsets = patch_ids(ends), patch_offsets(ends)
    lengths, n_patches = patch_lengths(ends)
    N = lengths.shape[1]
    longest = int(lengths.max()) if lengths.numel() else 0
    L = longest if max_len is None else max_len
    if longest > L:
        raise ValueError(f"a patch of {longest} bytes does not fit max_len={L}")
    slot = ids * L + offsets
    idx = torch.arange(T, device=ends.device).expand(B, T)
    index = torch.zeros(B, N * L, dtype=torch.long, device=ends.device).scatter_(1, slot, idx)
    mask = torch.zeros(B, N * L, dtype=torch.bool, device=ends.device).scatter_(
        1, slot, torch.ones_like(idx, dtype=torch.bool))
    return Packing(index.view(B, N, L), mask.view(B, N, L), lengths, n_patches, slot)


def pack(x: torch.Tensor, packing: Packing, pad: float | int = 0) -> torch.Tensor:
    """Per-patch view of x: (B, T, *F) -> (B, N, L, *F), ``pad`` where packing.mask is False."""
    B, N, L = packing.index.shape
    feat = x.shape[2:]
    flat = packing.index.view(B, N * L, *([1] * len(feat))).expand(B, N * L, *feat)
    out = x.gather(1, flat).view(B, N, L, *feat)
    return out.masked_fill(~packing.mask.view(B, N, L, *([1] * len(feat))), pad)


def unpack(packed: torch.Tensor, packing: Packing) -> torch.Tensor:
    """Inverse of ``pack``: (B, N, L, *F) -> (B, T, *F)."""
    B, N, L = packing.index.shape
    feat = packed.shape[3:]
    T = packing.slot.shape[1]
    slot = packing.slot.view(B, T, *([1] * len(feat))).expand(B, T, *feat)
    return packed.reshape(B, N * L, *feat).gather(1, slot)
