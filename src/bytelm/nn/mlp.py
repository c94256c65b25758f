"""SwiGLU feed-forward (Shazeer 2020)."""
import torch
import torch.nn.functional as F
from torch import nn


def swiglu_hidden(d_model: int, multiple_of: int = 64) -> int:
    """The usual 8/3 * d_model hidden size, rounded up to a multiple of ``multiple_of``."""
    h = int(8 * d_model / 3)
    return multiple_of * ((h + multiple_of - 1) // multiple_of)


class SwiGLU(nn.Module):
    """out = W2(silu(W1 x) * W3 x); x (..., d_model) -> (..., d_model)."""

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        # w1 and w3 fused into one matmul
        self.w13 = nn.Linear(d_model, 2 * d_ff, bias=False)
        self.w2 = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.w13(x).chunk(2, dim=-1)
        return self.w2(F.silu(a) * b)
