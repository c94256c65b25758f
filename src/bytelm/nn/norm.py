"""RMSNorm (Zhang & Sennrich 2019), computed in fp32 whatever the input dtype."""
import torch
from torch import nn


class RMSNorm(nn.Module):
    """y = x / rms(x) * weight, over the last dimension.

    Args:
        dim: size of the last dimension.
        eps: added to the mean square before the square root.
    """

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the mean square overflows / loses precision in bf16, so normalise in fp32
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).to(x.dtype)
