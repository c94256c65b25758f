"""GPU sliding-window attention with torch's flex_attention and a cached sliding-window block mask.

flex_attention is compiled once (lazily, module level) with automatic dynamic shapes: a new
batch size makes the dimension symbolic instead of adding one specialised graph per shape.
This alone did not stop a training process from exhausting dynamo's recompile limit (flex then
falls back to its slow eager path), so `auto` uses flex only inside compiled models
(bytelm.ops.swa.select_impl). Without flex_attention the blocked form is used instead.
"""
import functools

import torch

from bytelm.ops.swa.blocked import blocked_sliding_window_attention

_compiled_flex = None


@functools.lru_cache(maxsize=1)
def is_available() -> bool:
    """True when torch.nn.attention.flex_attention can be imported."""
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention  # noqa: F401
    except Exception:  # noqa: BLE001 - older torch
        return False
    return True


def _flex():
    global _compiled_flex
    if _compiled_flex is None:
        from torch.nn.attention.flex_attention import flex_attention
        _compiled_flex = torch.compile(flex_attention)
    return _compiled_flex


@functools.lru_cache(maxsize=64)
def _block_mask(T: int, W: int, device: str):
    from torch.nn.attention.flex_attention import create_block_mask

    def sliding_window(b, h, q_idx, kv_idx):
        return (kv_idx <= q_idx) & (q_idx - kv_idx < W)

    return create_block_mask(sliding_window, B=None, H=None, Q_LEN=T, KV_LEN=T, device=device)


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
    mask = _block_mask(T, W, str(q.device))
    return _flex()(q, k.to(q.dtype), v.to(q.dtype), block_mask=mask)
