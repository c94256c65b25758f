"""Sliding-window attention in O(T*W): each block of W queries attends to 2W keys.

Blocks of W queries see [previous block, own block]; a band mask keeps t - W < s <= t.
The first block's previous block is padding and is masked out. Every query sees itself, so no
row of the mask is empty.
"""
import torch
import torch.nn.functional as F


def _band_mask(n_blocks: int, W: int, device) -> torch.Tensor:
    """(n_blocks, W, 2W) bool: query i of a block may see key j of [previous, own] block."""
    i = torch.arange(W, device=device)[:, None]
    j = torch.arange(2 * W, device=device)[None, :]
    # absolute: t = nW + i, s = (n - 1)W + j; t - W < s <= t  <=>  i < j <= i + W
    band = (j > i) & (j <= i + W)  # (W, 2W)
    mask = band.expand(n_blocks, W, 2 * W).clone()
    # keys before position 0 do not exist
    mask[0, :, :W] = False
    return mask


def blocked_sliding_window_attention(q, k, v, window: int):
    """Query t attends keys s with t - window < s <= t. Layout (B, H, T, D) (the SDPA layout).

    Args:
        q, k, v: (B, H, T, D); k, v are cast to q's dtype.
        window: W >= 1, keys per query including itself.
    Returns:
        o (B, H, T, D) in q's dtype.
    """
    B, H, T, D = q.shape
    if T == 0:
        return q.clone()
    # a window covering the whole sequence is plain causal attention: blocks of T suffice
    W = max(1, min(int(window), T))
    n = -(-T // W)
    pad = n * W - T
    k, v = k.to(q.dtype), v.to(q.dtype)
    if pad:
        # padded keys are seen only by padded queries, whose outputs are dropped
        q, k, v = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v))
    q_blk = q.reshape(B * H, n, W, D)
    k_blk = k.reshape(B * H, n, W, D)
    v_blk = v.reshape(B * H, n, W, D)
    # keys of [previous block, own block]: (B*H, n, 2W, D)
    k2 = torch.cat([F.pad(k_blk, (0, 0, 0, 0, 1, 0))[:, :-1], k_blk], dim=2)
    v2 = torch.cat([F.pad(v_blk, (0, 0, 0, 0, 1, 0))[:, :-1], v_blk], dim=2)
    mask = _band_mask(n, W, q.device)  # broadcasts over B*H
    o = F.scaled_dot_product_attention(q_blk, k2, v2, attn_mask=mask)
    return o.reshape(B, H, n * W, D)[:, :, :T]
