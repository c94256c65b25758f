"""Rotary position embedding (Su et al. 2021), applied to q and k inside attention."""
import torch
from torch import nn


class Rotary(nn.Module):
    """Holds cos/sin tables; ``forward(start, length)`` returns the slices for those positions.

    Args:
        d_head: head dimension (even).
        max_len: positions precomputed; longer requests extend the table on the fly.
        base: frequency base (10000 in RoFormer).
    """

    def __init__(self, d_head: int, max_len: int, base: float = 10000.0):
        super().__init__()
        if d_head % 2:
            raise ValueError(f"rotary needs an even head dimension, got {d_head}")
        self.d_head, self.base = d_head, base
        inv_freq = 1.0 / (base ** (torch.arange(0, d_head, 2, dtype=torch.float32) / d_head))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self._build(max_len)

    def _build(self, n: int) -> None:
        t = torch.arange(n, dtype=torch.float32, device=self.inv_freq.device)
        freqs = torch.outer(t, self.inv_freq)  # (n, d_head/2)
        self.register_buffer("cos", freqs.cos(), persistent=False)
        self.register_buffer("sin", freqs.sin(), persistent=False)

    def forward(self, start: int | torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (cos, sin), each (length, d_head/2), fp32, for positions start..start+length-1.

        ``start`` may be a 0-dim tensor (a position kept on the device, as compiled decoding
        does): the angles are then computed, with the same fp32 products as the table. A (B,)
        tensor (one start per row) gives (B, 1, length, d_head/2), broadcast over heads."""
        if isinstance(start, torch.Tensor):
            t = start.float()[..., None] + torch.arange(length, device=start.device,
                                                          dtype=torch.float32)
            freqs = t[..., None] * self.inv_freq
            if start.dim() == 1:
                freqs = freqs[:, None]
            return freqs.cos(), freqs.sin()
        if start + length > self.cos.shape[0]:
            self._build(2 * (start + length))
        return self.cos[start:start + length], self.sin[start:start + length]


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotates pairs (x[..., :d/2], x[..., d/2:]) of x (B, H, T, d) by the angles in cos/sin (T, d/2)."""
    d = x.shape[-1] // 2
    x1, x2 = x[..., :d].float(), x[..., d:].float()
    y = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return y.to(x.dtype)
