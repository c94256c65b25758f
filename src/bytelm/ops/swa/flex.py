"""GPU sliding-window attention with torch's flex_attention and a cached sliding-window block mask.

flex_attention is compiled once (lazily, module level) with automatic dynamic shapes: a new
batch size makes the dimension symbolic instead of adding one specialised graph per shape.
This alone did not stop a training process from exhausting dynamo's recompile limit (flex then
falls back to its slow eager path), so `auto` uses flex only inside compiled models
(bytelm.ops.swa.select_impl). Without flex_attention the blocked form is used instead.
"""
import functools

import torch

from bytelm.ops.dispatch import probe_once
from bytelm.ops.swa.blocked import blocked_sliding_window_attention

_compiled_flex = None
_BLOCK_SIZE = 128  # flex_attention's default sparse block size


def _probe() -> bool:
    """True when torch.nn.attention.flex_attention can be imported."""
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention  # noqa: F401
    except Exception:  # noqa: BLE001 - older torch
        return False
    return True


is_available = probe_once(_probe)  # once per process, a constant under torch.compile


def _flex():
    global _compiled_flex
    if _compiled_flex is None:
        from torch.nn.attention.flex_attention import flex_attention
        _compiled_flex = torch.compile(flex_attention)
    return _compiled_flex


def _sliding_window_kv_blocks(T: int, W: int, block: int, device):
    """kv block lists of the window mask t - W < s <= t, from block indices alone.

    Query block i and kv block j (rows [iB, iB + B), columns [jB, jB + B), B = block):
    some pair is valid iff j <= i and (i - j - 1)B + 1 < W; every pair is valid (a "full" block,
    no mask_mod needed) iff j < i, (i - j + 1)B - 1 < W and query block i is not cut short by T
    (create_block_mask counts the padding past T as masked, so a short last block is partial).
    Only j = i - d for d < W // B + 2 can be valid, so the search is (n, W // B + 2).

    Returns:
        kv_num_blocks (1, 1, n), kv_indices (1, 1, n, n), full_kv_num_blocks (1, 1, n),
        full_kv_indices (1, 1, n, n); int32, n = ceil(T / B); per row the first num_blocks
        indices are the blocks in ascending order, the rest are 0.
    """
    n = -(-T // block)
    i = torch.arange(n, device=device)[:, None]
    d = torch.arange(min(n, W // block + 2), device=device).flip(0)[None, :]  # ascending j
    j = i - d  # (n, D)
    some = (j >= 0) & ((d - 1) * block + 1 < W)
    full = (d > 0) & ((d + 1) * block - 1 < W) & ((i + 1) * block <= T) & some
    partial = some & ~full

    def ordered(sel):
        # selected j first, in ascending order (d is descending along dim 1), then padding 0
        count = sel.sum(dim=1)
        order = torch.argsort(sel.to(torch.int8), dim=1, descending=True, stable=True)
        picked = torch.gather(j, 1, order)
        picked = torch.where(torch.arange(picked.shape[1], device=device)[None, :] < count[:, None],
                             picked, 0)
        indices = torch.zeros(n, n, dtype=torch.int32, device=device)
        indices[:, :picked.shape[1]] = picked
        return count.to(torch.int32)[None, None], indices[None, None]

    kv_num_blocks, kv_indices = ordered(partial)
    full_kv_num_blocks, full_kv_indices = ordered(full)
    return kv_num_blocks, kv_indices, full_kv_num_blocks, full_kv_indices


@functools.lru_cache(maxsize=64)
def _block_mask(T: int, W: int, device: str):
    """BlockMask (block size 128) for t - W < s <= t, built from block indices.

    Memory: the block lists are int32 tensors of (T/128)^2 entries (kv and q, partial and full;
    1 MiB each at T = 65536; from_kv_blocks derives the q lists through a dense (T/128)^2 block
    table) plus a (T/128, W/128 + 2) search; the mask_mod is never evaluated densely.
    create_block_mask evaluated it over all T x T pairs (41 GiB peak at T = 65536 on an H100).
    kv_indices keeps all T/128 columns: torch up to at least 2.13 takes the index lists' width as
    the number of kv blocks when deriving the q lists (pytorch#153344), so compact
    (W/128 + 2 wide) lists would be mis-read.
    """
    from torch.nn.attention.flex_attention import BlockMask

    def sliding_window(b, h, q_idx, kv_idx):
        return (kv_idx <= q_idx) & (q_idx - kv_idx < W)

    kv_num_blocks, kv_indices, full_kv_num_blocks, full_kv_indices = _sliding_window_kv_blocks(
        T, W, _BLOCK_SIZE, device)
    return BlockMask.from_kv_blocks(kv_num_blocks, kv_indices, full_kv_num_blocks, full_kv_indices,
                                    BLOCK_SIZE=_BLOCK_SIZE, mask_mod=sliding_window,
                                    seq_lengths=(T, T))


def flex_sliding_window_attention(q, k, v, window: int):
    """Query t attends keys s with t - window < s <= t. Layout (B, H, T, D) (the SDPA layout).

    Args:
        q, k, v: (B, H, T, D) on CUDA; k, v are cast to q's dtype.
        window: W >= 1, keys per query including itself.
    Returns:
        o (B, H, T, D) in q's dtype.
    """
    if not is_available() or q.device.type != "cuda":
        return blocked_sliding_window_attention(q, k, v, window)
    T = q.shape[-2]
    W = max(1, min(int(window), T))
    if torch.compiler.is_compiling():
        # inside a compiled model: flex_attention itself (the enclosing compile handles it), and
        # the mask built in the graph (Dynamo ignores lru_cache, and warns when it meets one)
        from torch.nn.attention.flex_attention import flex_attention
        mask = _block_mask.__wrapped__(T, W, str(q.device))
        return flex_attention(q, k.to(q.dtype), v.to(q.dtype), block_mask=mask)
    mask = _block_mask(T, W, str(q.device))
    return _flex()(q, k.to(q.dtype), v.to(q.dtype), block_mask=mask)
