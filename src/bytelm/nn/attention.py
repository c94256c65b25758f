"""Causal multi-head self-attention through ``F.scaled_dot_product_attention``, with a KV cache."""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from bytelm.nn.rope import Rotary, apply_rotary
from bytelm.nn.static_cache import StaticKVCache  # noqa: F401 - named in annotations


_SHAPE_AGNOSTIC = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None = None,
         is_causal: bool = False) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` (q (B, H, n, D), k, v (B, H, m, D)) for every model.

    Eager on CUDA it leaves out cuDNN's backend: cuDNN builds an execution plan for every new
    shape, and incremental decoding makes a new shape at every step (key lengths grow by one,
    memories by one patch). On the H100 that cost BSFIN ~2 ms of host time per attention call
    and ~150 ms per step that closes a patch (benchmarks/results/generate/profile_decode_bsfin_cudnn_h100.json).
    Under torch.compile (fixed training shapes) torch picks the kernel as usual.
    """
    if q.is_cuda and not torch.compiler.is_compiling():
        with sdpa_kernel(_SHAPE_AGNOSTIC):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)


def masked_decode_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                            mask: torch.Tensor) -> torch.Tensor:
    """Attention of a few new queries over a fixed-shape cache, as two batched matmuls and a
    masked softmax (fp32) instead of ``F.scaled_dot_product_attention`` with a bool mask.

    q (B, H, L, D); k, v (B, H, C, D); mask (b, 1, L, C) bool, True where a query may read the
    key (b = 1 or B). Returns (B, H, L, D) in q's dtype. The same numbers as ``sdpa`` with
    ``attn_mask=mask`` (tests equate them); meant for decoding, where L is 1 and SDPA's fused
    kernels are built for long query blocks (benchmarks/decode_attention.py times both).
    """
    s = torch.matmul(q, k.transpose(-1, -2)).float() * (q.shape[-1] ** -0.5)
    p = torch.softmax(s.masked_fill(~mask, float("-inf")), dim=-1)
    return torch.matmul(p.to(v.dtype), v)


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

    def append(self, k: torch.Tensor, v: torch.Tensor):
        """Writes k, v (B, H, L, d_head) after the ``length`` cached positions (length += L).

        Returns (keys, values, mask): the filled prefix (B, H, length, d_head) and the bool
        mask (L, length) of the keys each new query may read (None when L == 1: all of them).
        """
        L = k.shape[2]
        start, end = self.length, self.length + L
        if end > self.capacity:
            raise ValueError(f"KV cache full: {end} > capacity {self.capacity}")
        self.k[:, :, start:end] = k.to(self.k.dtype)
        self.v[:, :, start:end] = v.to(self.v.dtype)
        self.length = end
        if L == 1:
            return self.k[:, :, :end], self.v[:, :, :end], None  # one query sees every key
        # query i (absolute start+i) sees keys j <= start+i
        qi = torch.arange(start, end, device=k.device)[:, None]
        return self.k[:, :, :end], self.v[:, :, :end], torch.arange(end, device=k.device)[None, :] <= qi


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

    def forward(self, x: torch.Tensor, cache: "KVCache | StaticKVCache | None" = None) -> torch.Tensor:
        """x (B, L, d_model) -> (B, L, d_model).

        Without a cache, x holds positions 0..L-1. With a cache, x holds the L positions after
        the ``cache.length`` already cached ones (an int, or a tensor for a ``StaticKVCache``);
        the cache is extended in place.
        """
        B, L, _ = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)
        cos, sin = self.rotary(cache.length if cache is not None else 0, L)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if cache is None:
            y = sdpa(q, k, v, is_causal=True)
        elif isinstance(cache.length, int) and cache.length == 0:
            # a fresh cache (a prompt): plain causal attention, flash on CUDA, no L x L mask
            cache.append(k, v)
            y = sdpa(q, k, v, is_causal=True)
        else:
            keys, vals, mask = cache.append(k, v)
            if mask is not None and getattr(cache, "attention", "sdpa") == "matmul":
                y = masked_decode_attention(q, keys.to(q.dtype), vals.to(q.dtype), mask)
            else:
                y = sdpa(q, keys.to(q.dtype), vals.to(q.dtype), attn_mask=mask)
        return self.proj(y.transpose(1, 2).reshape(B, L, -1))
