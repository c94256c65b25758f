"""ByteLatentEncoder: bytes -> one latent per patch, by a causal strided convolution.

Patch j covers bytes [j*P - (K-P), j*P + P) (kernel K, stride P; K=6, P=4: bytes 4j-2..4j+3):
its own P bytes plus K-P bytes of left context. Before byte 0 the window sees a learned pad
vector. Only complete patches are encoded, so patch j exists once byte j*P + P - 1 has been
read, and the model uses it only to predict later bytes.
"""
import torch
import torch.nn.functional as F
from torch import nn

from bytelm.nn import RMSNorm


class ByteLatentEncoder(nn.Module):
    """x (B, T) bytes -> (B, T // P, d_model) patch latents."""

    def __init__(self, d_model: int, patch_size: int, kernel: int, norm_eps: float = 1e-6,
                 out_norm: bool = True):
        super().__init__()
        if kernel < patch_size:
            raise ValueError(f"patch kernel {kernel} must be >= patch size {patch_size}")
        self.P, self.K = patch_size, kernel
        self.embed = nn.Embedding(256, d_model)
        self.pad = nn.Parameter(torch.zeros(kernel - patch_size, d_model))
        self.conv = nn.Conv1d(d_model, d_model, kernel, stride=patch_size)
        self.proj = nn.Linear(d_model, d_model, bias=False)
        # out_norm=False leaves the latents at the scale of the small-init weights, as a GPT's
        # embeddings are (see AgiformerConfig.encoder_norm)
        self.norm = RMSNorm(d_model, norm_eps) if out_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T = x.shape
        n = T // self.P
        if n == 0:
            return self.embed.weight.new_zeros(B, 0, self.embed.weight.shape[1])
        e = self.embed(x[:, : n * self.P].long())  # (B, nP, d)
        e = torch.cat([self.pad.to(e.dtype).expand(B, -1, -1), e], dim=1)
        h = self.conv(e.transpose(1, 2)).transpose(1, 2)  # (B, n, d)
        return self.norm(self.proj(F.gelu(h)))

    def encode_window(self, window: torch.Tensor) -> torch.Tensor:
        """One patch from its K byte embeddings window (B, K, d) -> (B, d) (generation path)."""
        h = torch.einsum("bkd,odk->bo", window, self.conv.weight.to(window.dtype))
        h = h + self.conv.bias.to(window.dtype)
        return self.norm(self.proj(F.gelu(h)))
