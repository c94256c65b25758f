"""Causal multi-head self-attention through ``F.scaled_dot_product_attention``, with a KV cache."""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from bytelm.nn.rope import Rotary, apply_rotary


_DECODE_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


@dataclass
class KVCache:
    """Preallocated keys/values of one attention layer for incremental decoding.

    k, v: (B, H, capacity, d_head); ``length`` positions are filled.
    """

    k: torch.Tensor
    v: torch.Tensor
    length: int = 0

    @classmethod
    def empty(cls, batch: int, n_heads: int, capacity: int, d_head: int,
              device=None, dtype=torch.float32) -> "KVCache":
        shape = (batch, n_heads, capacity, d_head)
        return cls(torch.zeros(shape, device=device, dtype=dtype),
                   torch.zeros(shape, device=device, dtype=dtype))

    @property
    def capacity(self) -> int:
        return self.k.shape[2]


class CausalSelfAttention(nn.Module):
    """Multi-head causal attention with rotary positions.

    Args:
        d_model: model width; n_heads * d_head == d_model.
        n_heads: number of heads.
        rotary: shared Rotary table (one per model).
    """

    def __init__(self, d_model: int, n_heads: int, rotary: Rotary):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.proj = nn.Linear(d_model, d_model, bias=False)
        self.rotary = rotary

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """x (B, L, d_model) -> (B, L, d_model).

        Without a cache, x holds positions 0..L-1. With a cache, x holds the L positions after
        the ``cache.length`` already cached ones; the cache is extended in place.
        """
        B, L, _ = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)
        start = cache.length if cache is not None else 0
        cos, sin = self.rotary(start, L)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            end = start + L
            if end > cache.capacity:
                raise ValueError(f"KV cache full: {end} > capacity {cache.capacity}")
            cache.k[:, :, start:end] = k.to(cache.k.dtype)
            cache.v[:, :, start:end] = v.to(cache.v.dtype)
            cache.length = end
            keys, vals = cache.k[:, :, :end].to(q.dtype), cache.v[:, :, :end].to(q.dtype)
            if L == 1:
                mask = None  # one query attends to every cached position
            else:
                # query i (absolute start+i) sees keys j <= start+i
                qi = torch.arange(start, end, device=x.device)[:, None]
                mask = torch.arange(end, device=x.device)[None, :] <= qi
            # decoding grows the key length by one every step; cuDNN attention builds a new plan
            # per shape, so the cached path sticks to the shape-agnostic kernels
            with sdpa_kernel(_DECODE_BACKENDS):
                y = F.scaled_dot_product_attention(q, keys, vals, attn_mask=mask)
        return self.proj(y.transpose(1, 2).reshape(B, L, -1))
