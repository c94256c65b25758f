"""The complex stack of BSFIN, on explicit (real, imag) pairs (bf16 autocast works, complex64
does not): complex-linear maps, complex RMS norm, additive complex positional encoding with a
learnable frequency scale, entangled interference attention, a complex feed-forward.

A complex tensor is a pair (r, i) of real tensors of the same shape.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from bytelm.nn import sdpa


# Optimizer steps taken in this process, by any torch optimizer (a global step post-hook). Part of
# the stamp of ComplexLinear's cached block matrix: fused AdamW (bytelm's default on CUDA) updates
# parameters in place WITHOUT bumping their version counters, so a version-only stamp kept the
# block matrix of an earlier validation through later training steps: bsfin-35m's in-training
# validation on an H100 read 5.35 bpb where its checkpoint scored 1.95 (docs/benchmarks.md).
_OPTIMIZER_STEPS = [0]


def _count_step(optimizer, args, kwargs) -> None:
    _OPTIMIZER_STEPS[0] += 1


register_optimizer_step_post_hook(_count_step)


def complex_linear_reference(r, i, A, B):
    """(A + iB)(r + i i) as four real matmuls: (A r - B i, A i + B r). The reference form."""
    return r @ A.T - i @ B.T, i @ A.T + r @ B.T


class ComplexLinear(nn.Module):
    """z -> W z with W = A + iB complex: (A r - B i, A i + B r). (r, i) (..., n) -> (..., m).

    Computed as one real matmul of [r, i] (..., 2n) with the block matrix [[A, -B], [B, A]]
    (2m, 2n): the same FLOPs as the four matmuls of ``complex_linear_reference`` in one GEMM,
    1.49x faster forward + backward on an H100 under bf16 autocast and 2.7x faster than a
    torch.complex64 matmul, which has no bf16 (benchmarks/results/ablations/complex_repr_h100.json).
    A = ``re.weight``, B = ``im.weight`` (checkpoints keep the two-matrix layout).
    """

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.re = nn.Linear(n_in, n_out, bias=False)
        self.im = nn.Linear(n_in, n_out, bias=False)

    def block_weight(self) -> torch.Tensor:
        """[[A, -B], [B, A]] (2m, 2n). Without autograd and outside torch.compile it is kept
        until either matrix may have changed: their version counters (bumped by in-place
        updates such as load_state_dict's copies), their storage (which .to() swaps), the count
        of optimizer steps (fused AdamW does not bump versions) and any switch to train mode.
        Rebuilding it at every call was a third of BSFIN's CPU decode time (37 matrices copied
        per closed patch)."""
        A, B = self.re.weight, self.im.weight
        if torch.is_grad_enabled() or torch.compiler.is_compiling():
            # (the cache is left alone: touching it would add a guard to a compiled graph)
            return torch.cat([torch.cat([A, -B], 1), torch.cat([B, A], 1)], 0)
        c = self.__dict__.get("_block")
        # .to() and .data swaps keep the Parameter and its version: the storage tells them
        stamp = (A._version, B._version, A.data_ptr(), B.data_ptr(), _OPTIMIZER_STEPS[0])
        if c is None or c[0] is not A or c[1] is not B or c[2] != stamp:
            W = torch.cat([torch.cat([A, -B], 1), torch.cat([B, A], 1)], 0)
            c = self.__dict__["_block"] = (A, B, stamp, W)
        return c[3]

    def train(self, mode: bool = True):
        self.__dict__.pop("_block", None)  # training is about to change the weights
        return super().train(mode)

    def forward(self, r, i):
        return F.linear(torch.cat([r, i], -1), self.block_weight()).chunk(2, -1)


class ComplexRMSNorm(nn.Module):
    """z / rms(|z|) * g, with a complex per-feature gain g (a scale and a rotation)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.g_re = nn.Parameter(torch.ones(dim))
        self.g_im = nn.Parameter(torch.zeros(dim))

    def forward(self, r, i):
        rf, imf = r.float(), i.float()
        s = torch.rsqrt((rf * rf + imf * imf).mean(-1, keepdim=True) + self.eps)
        rf, imf = rf * s, imf * s
        out_r = rf * self.g_re - imf * self.g_im
        out_i = rf * self.g_im + imf * self.g_re
        return out_r.to(r.dtype), out_i.to(i.dtype)


class ComplexPositionalEncoding(nn.Module):
    """z_s += a * exp(i * s * w_k * f_k): patch index s, base frequencies w_k, learnable
    frequency scales f_k (init 1) and amplitude a."""

    def __init__(self, dim: int, base: float = 10000.0):
        super().__init__()
        self.register_buffer("omega", base ** (-torch.arange(dim, dtype=torch.float32) / dim),
                             persistent=False)
        self.freq_scale = nn.Parameter(torch.ones(dim))
        self.amp = nn.Parameter(torch.tensor(0.1))

    def forward(self, r, i, start: "int | torch.Tensor" = 0):
        """start: first patch index, an int or a (B,) tensor (one per row, fixed-shape decoding)."""
        s = positions(start, r.shape[-2], r.device)[..., None]  # (n, 1) or (B, n, 1)
        ang = s * self.omega * self.freq_scale
        return r + (self.amp * torch.cos(ang)).to(r.dtype), i + (self.amp * torch.sin(ang)).to(i.dtype)


def positions(start: "int | torch.Tensor", n: int, device) -> torch.Tensor:
    """fp32 positions start..start+n-1: (n,) for an int start, (B, n) for a (B,) tensor."""
    if isinstance(start, torch.Tensor):
        return (start[..., None] + torch.arange(n, device=device)).float()
    return torch.arange(start, start + n, device=device, dtype=torch.float32)


def complex_rotate(r, i, cos, sin):
    """z * exp(i theta): (r cos - i sin, r sin + i cos)."""
    return r * cos - i * sin, r * sin + i * cos


class EntangledInterferenceAttention(nn.Module):
    """Causal attention over patches with complex queries, keys and values.

    Q, K, V = complex-linear maps of z; RoPE as a complex rotation e^{i s theta_d} of Q and K;
    entanglement: a learnable real head-mixing matrix E (init identity) applied to Q and K;
    separate learnable phases phi_q, phi_k per head and dim (their difference changes the
    scores, unlike a shared phase that cancels in Q K^H).
    Scores: 'quantum' = Re(Q K^H) / sqrt(2 d) (signed, default), 'magnitude' = |Q K^H| / sqrt(2 d),
    'classical' = Re(Q) . Re(K) / sqrt(d). Causal mask is boolean (no -inf arithmetic in scores
    that could produce NaN gradients: every query sees at least itself).

    qk_norm: a complex RMS norm (over the head dimension, complex per-dimension gain) of every
    query and key as the last step of their computation (after RoPE, phases and head mixing).
    Without it the logits are a product of four learned scales (W_q, W_k and the mixing matrix
    twice) and grow without bound at high learning rates; with it |logit| <= max|g_q| max|g_k|
    sqrt(d / 2) ('quantum'). RoPE stays relative: all heads share one rotation per (position,
    dimension), so it factors out of the head mixing and the norm only sees content.
    (r, i) (B, N, D) -> (B, N, D) pair.
    """

    def __init__(self, dim: int, n_heads: int, scores: str = "quantum", rope_base: float = 10000.0,
                 qk_norm: bool = False, norm_eps: float = 1e-6):
        super().__init__()
        if scores not in ("quantum", "magnitude", "classical"):
            raise ValueError(f"unknown score kind {scores!r}")
        self.H, self.Dh, self.kind = n_heads, dim // n_heads, scores
        self.q, self.k, self.v = (ComplexLinear(dim, dim) for _ in range(3))
        self.o = ComplexLinear(dim, dim)
        self.mix = nn.Parameter(torch.eye(n_heads))
        self.phi_q = nn.Parameter(0.02 * torch.randn(n_heads, self.Dh))
        self.phi_k = nn.Parameter(0.02 * torch.randn(n_heads, self.Dh))
        self.q_norm = ComplexRMSNorm(self.Dh, norm_eps) if qk_norm else None
        self.k_norm = ComplexRMSNorm(self.Dh, norm_eps) if qk_norm else None
        self.register_buffer("theta", rope_base ** (-torch.arange(self.Dh, dtype=torch.float32)
                                                   / self.Dh), persistent=False)

    def _heads(self, r, i):
        B, N, _ = r.shape
        return r.view(B, N, self.H, self.Dh).transpose(1, 2), i.view(B, N, self.H, self.Dh).transpose(1, 2)

    def _qk(self, lin, r, i, phi, start, norm=None):
        qr, qi = self._heads(*lin(r, i))  # (B, H, N, Dh)
        s = positions(start, qr.shape[2], r.device)[..., None]  # (N, 1), or (B, N, 1)
        if s.dim() == 3:
            s = s[:, None]  # (B, 1, N, 1): one start per row
        ang = s * self.theta + phi[:, None, :]  # (H, N, Dh): RoPE angle plus the learned phase
        qr, qi = complex_rotate(qr.float(), qi.float(), ang.cos(), ang.sin())
        mix = self.mix.float()
        qr = torch.einsum("gh,bhnd->bgnd", mix, qr)
        qi = torch.einsum("gh,bhnd->bgnd", mix, qi)
        if norm is not None:
            qr, qi = norm(qr, qi)
        return qr.to(r.dtype), qi.to(r.dtype)

    def project_kv(self, r, i, start: int):
        """Rotated keys and values of positions start.. (for the generation cache)."""
        kr, ki = self._qk(self.k, r, i, self.phi_k, start, self.k_norm)
        vr, vi = self._heads(*self.v(r, i))
        return kr, ki, vr, vi

    def _scores(self, qr, qi, kr, ki):
        """Pre-softmax scores (B, H, n, m) in fp32 (what SDPA computes for 'quantum')."""
        qr, qi, kr, ki = (t.float() for t in (qr, qi, kr, ki))
        if self.kind == "quantum":
            return (qr @ kr.transpose(-1, -2) + qi @ ki.transpose(-1, -2)) / math.sqrt(2 * self.Dh)
        if self.kind == "magnitude":
            re = qr @ kr.transpose(-1, -2) + qi @ ki.transpose(-1, -2)
            im = qi @ kr.transpose(-1, -2) - qr @ ki.transpose(-1, -2)
            return torch.sqrt(re * re + im * im + 1e-6) / math.sqrt(2 * self.Dh)
        return qr @ kr.transpose(-1, -2) / math.sqrt(self.Dh)

    def attention_logits(self, r, i):
        """Pre-softmax scores (B, H, N, N), fp32, of inputs (r, i) at positions 0..N-1, before
        the causal mask (for diagnostics and tests)."""
        kr, ki, _, _ = self.project_kv(r, i, 0)
        qr, qi = self._qk(self.q, r, i, self.phi_q, 0, self.q_norm)
        return self._scores(qr, qi, kr, ki)

    def attend(self, r, i, kr, ki, vr, vi, start: int):
        """Queries of positions start..start+n-1 attend the given keys (positions 0..) causally."""
        qr, qi = self._qk(self.q, r, i, self.phi_q, start, self.q_norm)
        n, m = qr.shape[2], kr.shape[2]
        allowed = (torch.arange(m, device=r.device)[None, :]
                   <= torch.arange(start, start + n, device=r.device)[:, None])  # (n, m)
        if self.kind == "quantum":
            q = torch.cat([qr, qi], -1)
            k = torch.cat([kr, ki], -1)
            v = torch.cat([vr, vi], -1)
            o = sdpa(q, k, v, attn_mask=allowed)
            orr, oi = o.split(self.Dh, -1)
        else:
            s = self._scores(qr, qi, kr, ki)
            a = torch.softmax(s.masked_fill(~allowed, float("-inf")), -1)
            orr, oi = (a @ vr.float()).to(r.dtype), (a @ vi.float()).to(r.dtype)
        B = r.shape[0]
        orr = orr.transpose(1, 2).reshape(B, n, -1)
        oi = oi.transpose(1, 2).reshape(B, n, -1)
        return self.o(orr, oi)

    def forward(self, r, i):
        return self.attend(r, i, *self.project_kv(r, i, 0), start=0)

    def attend_static(self, r, i, cache) -> tuple:
        """One new position per row, (r, i) (B, 1, D), at the (B,) patch indices
        ``cache.pos``, with keys/values in a ``StaticKVCache`` whose buffers hold [re, im]
        along the last axis (B, H, C, 2 Dh); the cache is written, not advanced."""
        start = cache.pos
        kr, ki, vr, vi = self.project_kv(r, i, start)
        keys, vals, allowed = cache.append(torch.cat([kr, ki], -1), torch.cat([vr, vi], -1))
        qr, qi = self._qk(self.q, r, i, self.phi_q, start, self.q_norm)
        if self.kind == "quantum":
            o = sdpa(torch.cat([qr, qi], -1), keys.to(qr.dtype), vals.to(qr.dtype),
                     attn_mask=allowed)
            orr, oi = o.split(self.Dh, -1)
        else:
            kr, ki = keys.split(self.Dh, -1)
            vr, vi = vals.split(self.Dh, -1)
            a = torch.softmax(self._scores(qr, qi, kr, ki).masked_fill(~allowed, float("-inf")), -1)
            orr, oi = (a @ vr.float()).to(r.dtype), (a @ vi.float()).to(r.dtype)
        B = r.shape[0]
        return self.o(orr.transpose(1, 2).reshape(B, 1, -1), oi.transpose(1, 2).reshape(B, 1, -1))


class ComplexFeedForward(nn.Module):
    """Complex-linear -> split GELU (on real and imaginary parts) -> complex-linear."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.up = ComplexLinear(dim, hidden)
        self.down = ComplexLinear(hidden, dim)

    def forward(self, r, i):
        hr, hi = self.up(r, i)
        return self.down(F.gelu(hr), F.gelu(hi))


class InterferenceLayer(nn.Module):
    """Pre-norm residual: z += drop(attn(norm z)); z += drop(ffn(norm z))."""

    def __init__(self, dim: int, n_heads: int, scores: str, dropout: float, norm_eps: float,
                 qk_norm: bool = False):
        super().__init__()
        self.norm1 = ComplexRMSNorm(dim, norm_eps)
        self.attn = EntangledInterferenceAttention(dim, n_heads, scores, qk_norm=qk_norm,
                                                   norm_eps=norm_eps)
        self.norm2 = ComplexRMSNorm(dim, norm_eps)
        self.ffn = ComplexFeedForward(dim, 2 * dim)
        self.drop = nn.Dropout(dropout)

    def _ffn(self, r, i):
        fr, fi = self.ffn(*self.norm2(r, i))
        return r + self.drop(fr), i + self.drop(fi)

    def forward(self, r, i):
        ar, ai = self.attn(*self.norm1(r, i))
        return self._ffn(r + self.drop(ar), i + self.drop(ai))

    def step(self, r, i, cache: dict, pos: int):
        """One new patch (B, 1, D) at index pos; cache holds this layer's keys/values."""
        nr, ni = self.norm1(r, i)
        kv = self.attn.project_kv(nr, ni, pos)
        if cache:
            kv = tuple(torch.cat([c, x], 2) for c, x in zip(cache["kv"], kv))
        cache["kv"] = kv
        ar, ai = self.attn.attend(nr, ni, *kv, start=pos)
        return self._ffn(r + ar, i + ai)

    def step_static(self, r, i, cache):
        """``step`` over a ``StaticKVCache`` (see ``attend_static``): (B, 1, D) at the (B,)
        patch indices ``cache.pos``."""
        ar, ai = self.attn.attend_static(*self.norm1(r, i), cache)
        return self._ffn(r + ar, i + ai)
