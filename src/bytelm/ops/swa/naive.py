"""Reference sliding-window attention: the full (T, T) masked softmax in fp32."""
import math

import torch


def naive_sliding_window_attention(q, k, v, window: int):
    """Query t attends keys s with t - window < s <= t. Layout (B, H, T, D) (the SDPA layout).

    Args:
        q, k, v: (B, H, T, D).
        window: W >= 1, keys per query including itself.
    Returns:
        o (B, H, T, D) in q's dtype.
    """
    T, D = q.shape[-2], q.shape[-1]
    with torch.autocast(device_type=q.device.type, enabled=False):
        qf, kf, vf = q.float(), k.float(), v.float()
        scores = (qf @ kf.transpose(-1, -2)) / math.sqrt(D)  # (B, H, T, T)
        t = torch.arange(T, device=q.device)
        allowed = (t[None, :] <= t[:, None]) & (t[None, :] > t[:, None] - window)
        scores = scores.masked_fill(~allowed, float("-inf"))
        o = torch.softmax(scores, dim=-1) @ vf
    return o.to(q.dtype)
