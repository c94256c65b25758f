"""Babylon index patching (BSFIN), made causal: a patch ends where the sliding-window byte
entropy rises.

H_t is the Shannon entropy in bits of the byte histogram of the window of ``window`` bytes
ending at t (the t+1 bytes available when t < window - 1). A candidate end sits at t when
H_t - H_{t-1} > threshold: byte t made the recent bytes less predictable (the README's
"significant entropy change"), and it depends on bytes <= t only. The original BabylonIndex
instead took the starts of the highest-entropy windows anywhere in the context and merged them
16 bytes apart, so almost every context formed one patch (original_code_study.md, 2.3).
"""
import math
from dataclasses import dataclass

import torch

from bytelm.errors import UserError
from bytelm.patching.base import Patcher, PatcherConfig, register_patcher

# positions per chunk of window_entropy, times the batch size
CHUNK_ELEMS = 1 << 20


@dataclass(kw_only=True)
class BabylonConfig(PatcherConfig):
    """Entropy-rise boundaries within the size limits."""

    window: int = 16
    """bytes in the sliding window whose histogram entropy is measured."""
    threshold: float = 0.1
    """a candidate end at t when H_t - H_{t-1} exceeds this many bits."""
    min_size: int = 2
    """no patch ends less than min_size bytes after the previous end."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.window < 1:
            raise UserError(f"window must be >= 1, got {self.window}")
        if not math.isfinite(self.threshold):
            raise UserError(f"threshold must be a finite number, got {self.threshold}")


def window_entropy(x: torch.Tensor, window: int) -> torch.Tensor:
    """Causal sliding-window byte entropy, O(B * T * window) work in chunks of T.

    Args:
        x: (B, T) bytes.
        window: w, bytes per window.
    Returns:
        (B, T) float64 bits, H_t = log2(n) - sum_k h_k k log2(k) / n, where n = min(w, t+1) and
        h_k is the number of byte values seen k times in x[t-n+1 .. t].
    """
    x = x.long()
    B, T = x.shape
    w = window
    dev = x.device
    k = torch.arange(w + 1, device=dev, dtype=torch.float64)
    k_log_k = k * torch.log2(k.clamp(min=1))  # (w+1,)
    # w sentinels (-1, equal to no byte) before the row: window t is xp[t+1 .. t+w], xp[t] leaves it
    xp = torch.cat([torch.full((B, w), -1, device=dev), x], 1)
    out = []
    h = torch.zeros(B, w + 1, dtype=torch.long, device=dev)  # histogram of counts, carried over
    chunk = max(1, CHUNK_ELEMS // max(B, 1))
    for s in range(0, T, chunk):
        e = min(T, s + chunk)
        win = xp[:, s + 1:e + w].unfold(1, w, 1)  # (B, e-s, w): window t, x_t last
        shared = win[..., :-1]  # bytes in both window t-1 and window t
        new, old = win[..., -1], xp[:, s:e]
        # the count of the leaving byte drops from c to c-1, then the new byte's from a to a+1;
        # h is exact integers (a running sum of these moves), so nothing drifts along T
        c = 1 + (shared == old[..., None]).sum(-1)
        a = (shared == new[..., None]).sum(-1)
        leaves = (old >= 0).long()
        delta = torch.zeros(B, e - s, w + 1, dtype=torch.long, device=dev)
        delta.scatter_add_(2, c[..., None], -leaves[..., None])
        delta.scatter_add_(2, (c - 1)[..., None], leaves[..., None])
        delta.scatter_add_(2, a[..., None], torch.full_like(a[..., None], -1))
        delta.scatter_add_(2, (a + 1)[..., None], torch.ones_like(a[..., None]))
        hs = delta.cumsum(1) + h[:, None]  # (B, e-s, w+1)
        h = hs[:, -1]
        n = (torch.arange(s, e, device=dev) + 1).clamp(max=w).double()
        out.append((torch.log2(n) - (hs.double() @ k_log_k) / n).clamp(min=0))
    return torch.cat(out, 1) if out else torch.zeros(B, 0, dtype=torch.float64, device=dev)


@register_patcher
class BabylonPatcher(Patcher):
    """Candidate end at t iff H_t - H_{t-1} > threshold (never at t = 0)."""

    name = "babylon"
    config_class = BabylonConfig
    config: BabylonConfig

    @property
    def lookback(self) -> int:
        """H_t and H_{t-1} read bytes t - window .. t."""
        return self.config.window + 1

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T) bytes -> (B, T) window entropy in bits."""
        return window_entropy(x, self.config.window)

    def candidates(self, x: torch.Tensor) -> torch.Tensor:
        h = self.scores(x)
        rise = torch.zeros_like(h, dtype=torch.bool)
        rise[:, 1:] = (h[:, 1:] - h[:, :-1]) > self.config.threshold
        return rise
