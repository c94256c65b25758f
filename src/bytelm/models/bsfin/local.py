"""BSFIN's byte-level parts: hashed n-gram embeddings, the local patch encoder (a small
Transformer inside each patch, pooled by cross-attention with a learned query) and the local
byte decoder (causal self-attention over bytes, cross-attention to closed patches only).
"""
import torch
import torch.nn.functional as F
from torch import nn

from bytelm.nn import CausalSelfAttention, KVCache, RMSNorm, Rotary, SwiGLU, sdpa

_HASH_MULT = 1_000_003  # odd multiplier of the rolling polynomial hash
_HASH_MOD = 2_147_483_647  # prime 2^31 - 1


def ngram_hash(x: torch.Tensor, n: int, buckets: int) -> torch.Tensor:
    """Bucket of the n-gram ending at each position: x (B, T) -> (B, T) long.

    h = (sum_k (x[t-k] + 1) * M^k) mod p, then mod buckets; order-sensitive (unlike a sum of
    bytes) and causal: it reads bytes t-n+1..t only. Positions t < n-1 hash the shorter prefix
    (the +1 keeps a missing byte distinct from byte 0).
    """
    x = x.long()
    h = torch.zeros_like(x)
    mult = 1
    for k in range(n):
        shifted = F.pad(x, (k, 0), value=-1)[:, : x.shape[1]] + 1  # byte t-k (+1), 0 if missing
        h = (h + shifted * mult) % _HASH_MOD
        mult = (mult * _HASH_MULT) % _HASH_MOD
    return h % buckets


class HashedByteEmbedding(nn.Module):
    """byte embedding + sum of hashed n-gram embeddings (one table per n)."""

    def __init__(self, dim: int, ngrams: tuple[int, ...], buckets: int):
        super().__init__()
        self.ngrams, self.buckets = tuple(ngrams), buckets
        self.byte = nn.Embedding(256, dim)
        self.tables = nn.ModuleList(nn.Embedding(buckets, dim) for _ in self.ngrams)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T) bytes -> (B, T, dim). A byte -1 stands for "no byte" (before the row's
        start, as the n-gram hashes treat it); its own vector is byte 0's."""
        e = self.byte(x.long().clamp(min=0))
        for n, table in zip(self.ngrams, self.tables):
            e = e + table(ngram_hash(x, n, self.buckets))
        return e


class PatchEncoder(nn.Module):
    """Bytes of each patch (B, P, L, d) with mask (B, P, L) -> one vector per patch (B, P, d).

    Attention inside a patch is bidirectional: a patch vector is only read after the patch has
    closed, when all its bytes are known. Positions inside the patch use RoPE.
    """

    def __init__(self, dim: int, n_heads: int, n_layers: int, max_len: int, norm_eps: float):
        super().__init__()
        self.H, self.Dh = n_heads, dim // n_heads
        self.rotary = Rotary(self.Dh, max_len)
        self.norms1 = nn.ModuleList(RMSNorm(dim, norm_eps) for _ in range(n_layers))
        self.qkv = nn.ModuleList(nn.Linear(dim, 3 * dim, bias=False) for _ in range(n_layers))
        self.proj = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in range(n_layers))
        self.norms2 = nn.ModuleList(RMSNorm(dim, norm_eps) for _ in range(n_layers))
        self.mlps = nn.ModuleList(SwiGLU(dim, 2 * dim) for _ in range(n_layers))
        self.query = nn.Parameter(torch.zeros(dim))
        self.pool_kv = nn.Linear(dim, 2 * dim, bias=False)
        self.pool_norm = RMSNorm(dim, norm_eps)
        self.out = nn.Linear(dim, dim, bias=False)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        from bytelm.nn.rope import apply_rotary
        B, P, L, d = h.shape
        h = h.reshape(B * P, L, d)
        m = mask.reshape(B * P, L)
        # a fully padded slot would give an all-masked softmax row: let it see its first slot
        m = m | (torch.arange(L, device=h.device) == 0)
        attn_mask = m[:, None, None, :]  # keys
        cos, sin = self.rotary(0, L)
        for n1, qkv, proj, n2, mlp in zip(self.norms1, self.qkv, self.proj, self.norms2, self.mlps):
            q, k, v = qkv(n1(h)).view(B * P, L, 3, self.H, self.Dh).permute(2, 0, 3, 1, 4)
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
            y = sdpa(q, k, v, attn_mask=attn_mask)
            h = h + proj(y.transpose(1, 2).reshape(B * P, L, d))
            h = h + mlp(n2(h))
        k, v = self.pool_kv(self.pool_norm(h)).view(B * P, L, 2, self.H, self.Dh).permute(2, 0, 3, 1, 4)
        q = self.query.to(h.dtype).view(1, self.H, 1, self.Dh).expand(B * P, -1, -1, -1)
        y = sdpa(q, k, v, attn_mask=attn_mask)  # (BP, H, 1, Dh)
        return self.out(y.reshape(B, P, d))


class DecoderLayer(nn.Module):
    """Causal self-attention over bytes, cross-attention to patch memories, SwiGLU."""

    def __init__(self, dim: int, n_heads: int, rotary: Rotary, norm_eps: float):
        super().__init__()
        self.H, self.Dh = n_heads, dim // n_heads
        self.norm1 = RMSNorm(dim, norm_eps)
        self.self_attn = CausalSelfAttention(dim, n_heads, rotary)
        self.norm2 = RMSNorm(dim, norm_eps)
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(dim, 2 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)
        self.norm3 = RMSNorm(dim, norm_eps)
        self.mlp = SwiGLU(dim, 2 * dim)

    def memory_kv(self, mem: torch.Tensor):
        """Cross-attention keys/values of memories (B, M, d) -> two (B, H, M, Dh)."""
        B, M, _ = mem.shape
        k, v = self.kv(mem).view(B, M, 2, self.H, self.Dh).permute(2, 0, 3, 1, 4)
        return k, v

    def forward(self, x, mem_k, mem_v, visible, cache: KVCache | None = None):
        """x (B, T, d); visible (B, T, M) bool: byte t may read memory m."""
        B, T, d = x.shape
        x = x + self.self_attn(self.norm1(x), cache)
        q = self.q(self.norm2(x)).view(B, T, self.H, self.Dh).transpose(1, 2)
        y = sdpa(q, mem_k.to(q.dtype), mem_v.to(q.dtype),
                                           attn_mask=visible[:, None])
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, d))
        return x + self.mlp(self.norm3(x))
