"""The stages of the hierarchical byte model: byte-level blocks (encoder/decoder) with a choice of
mixer, and the main network's incremental step over chunk slots with per-row lengths.

Byte blocks (x (B, T, d) -> (B, T, d), pre-norm, residual, SwiGLU), mixer by name:
- ``attn``: causal softmax attention over the whole context (flash through SDPA), KV cache;
- ``swa``: sliding-window attention over the last ``window`` bytes (``bytelm.ops.swa``), O(1)
  cache per byte in generation;
- ``hebbian``: the gated linear (Hebbian fast-weight) memory of AGIFORMER (``bytelm.ops.hebbian``,
  fla's chunked kernel on CUDA), O(1) state.
"""
from dataclasses import dataclass

import torch
from torch import nn

from bytelm.models.agiformer.mixers import (HebbianMemory, SlidingWindowAttention, WindowCache,
                                            window_keys)
from bytelm.models.gpt.model import Block as TransformerBlock
from bytelm.nn import CausalSelfAttention, KVCache, RMSNorm, Rotary, SwiGLU, apply_rotary, sdpa
from bytelm.nn.static_cache import write_slots

MIXERS = ("attn", "swa", "hebbian")


class ByteBlock(nn.Module):
    """x + mixer(norm(x)), then x + SwiGLU(norm(x)); (B, T, d) -> (B, T, d)."""

    def __init__(self, d: int, n_heads: int, d_ff: int, mixer: str, window: int, rotary: Rotary,
                 eps: float, lambda_min: float = 0.9):
        super().__init__()
        self.mixer, self.window = mixer, window
        self.norm1 = RMSNorm(d, eps)
        if mixer == "attn":
            self.attn = CausalSelfAttention(d, n_heads, rotary)
        elif mixer == "swa":
            self.swa = SlidingWindowAttention(d, n_heads, window, rotary)
            self.proj = nn.Linear(d, d, bias=False)
        elif mixer == "hebbian":
            self.mem = HebbianMemory(d, n_heads, lambda_min)
        else:
            raise ValueError(f"unknown byte mixer {mixer!r}; known: {', '.join(MIXERS)}")
        self.norm2 = RMSNorm(d, eps)
        self.mlp = SwiGLU(d, d_ff)

    def _mix(self, u: torch.Tensor) -> torch.Tensor:
        if self.mixer == "attn":
            return self.attn(u)
        if self.mixer == "swa":
            return self.proj(self.swa(u).flatten(-2))
        return self.mem(u)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self._mix(self.norm1(x))
        return x + self.mlp(self.norm2(x))

    def init_cache(self, batch: int, capacity: int, device, dtype):
        if self.mixer == "attn":
            a = self.attn
            return KVCache.empty(batch, a.n_heads, capacity, a.d_head, device, dtype)
        if self.mixer == "swa":
            return WindowCache()
        return {"state": None}

    def step(self, x: torch.Tensor, cache, pos: int) -> torch.Tensor:
        """x (B, L, d) at byte positions pos..pos+L-1 after those in ``cache`` -> (B, L, d)."""
        u = self.norm1(x)
        if self.mixer == "attn":
            y = self.attn(u, cache)
        elif self.mixer == "swa":
            y = torch.cat([self.proj(self.swa.step(u[:, i:i + 1], cache, pos + i).flatten(-2))
                           for i in range(u.shape[1])], 1)
        else:
            ys = []
            for i in range(u.shape[1]):
                o, cache["state"] = self.mem.step(u[:, i:i + 1], cache["state"])
                ys.append(o)
            y = torch.cat(ys, 1)
        x = x + y
        return x + self.mlp(self.norm2(x))

    def mixer_flops(self, seq_len: int) -> float:
        """Training FLOPs per byte of the mixer's token interaction (not its projections)."""
        d = self.norm1.weight.shape[0]
        if self.mixer == "attn":
            return 6.0 * d * seq_len  # causal: half of 4 T d, x3 for fwd + bwd
        if self.mixer == "swa":  # 4 d per key forward, over the mean keys a query sees
            return 12.0 * d * window_keys(self.window, seq_len)
        return 3.0 * self.mem.flops(seq_len) / seq_len  # the chunked recurrence, x3


@dataclass
class SlotCache:
    """Keys/values of one main-network layer over chunk slots, each row at its own length.

    k, v: (B, H, M + 1, D); slot M is a scratch slot that masked writes go to.
    """

    k: torch.Tensor
    v: torch.Tensor

    @classmethod
    def empty(cls, batch: int, n_heads: int, slots: int, d_head: int, device, dtype) -> "SlotCache":
        shape = (batch, n_heads, slots + 1, d_head)
        return cls(torch.zeros(shape, device=device, dtype=dtype),
                   torch.zeros(shape, device=device, dtype=dtype))


def main_block_step(blk: TransformerBlock, x: torch.Tensor, cache: SlotCache, start: torch.Tensor,
                    n_new: torch.Tensor) -> torch.Tensor:
    """One Transformer block of the main network over new chunk slots, rows at their own lengths.

    x (B, L, d): the new slots of each row (row b's first n_new[b] are real); start (B,) long:
    slots already cached per row. Writes keys/values at slots start..start+n_new-1 and returns
    (B, L, d); rows' padding positions return garbage that callers ignore.
    """
    a = blk.attn
    B, L, _ = x.shape
    M = cache.k.shape[2] - 1
    u = blk.norm1(x)
    q, k, v = a.qkv(u).view(B, L, 3, a.n_heads, a.d_head).permute(2, 0, 3, 1, 4)  # (B, H, L, D)
    posn = start[:, None] + torch.arange(L, device=x.device)[None]  # (B, L) absolute slot
    freqs = posn.float()[..., None] * a.rotary.inv_freq  # (B, L, D/2)
    cos, sin = freqs.cos()[:, None], freqs.sin()[:, None]
    q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
    real = torch.arange(L, device=x.device)[None] < n_new[:, None]  # (B, L)
    slot = torch.where(real & (posn < M), posn, torch.full_like(posn, M))
    write_slots(cache.k, slot, k)
    write_slots(cache.v, slot, v)
    keys = torch.arange(M + 1, device=x.device)
    mask = (keys[None, None, :] <= posn[..., None]) & (keys < M)  # (B, L, M+1)
    y = sdpa(q, cache.k.to(q.dtype), cache.v.to(q.dtype), attn_mask=mask[:, None])
    x = x + a.proj(y.transpose(1, 2).reshape(B, L, -1))
    return x + blk.mlp(blk.norm2(x))
