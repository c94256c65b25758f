"""Sequence mixers over patch latents, each with a parallel form (training, full forward) and a
one-patch recurrent form (generation): sliding-window attention, linear attention, and the
Hebbian fast-weight memory. Math lives in ``bytelm.ops``; these hold projections and caches.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bytelm.nn import RMSNorm, Rotary, apply_rotary, sdpa
from bytelm.ops.delta import delta, delta_step
from bytelm.ops.hebbian import hebbian, hebbian_step
from bytelm.ops.swa import sliding_window_attention


CHUNK = 64
"""chunk length of the chunked Hebbian / delta forms as these mixers call them (the ops'
default)."""


def chunk_flops(n: int, heads: int, k: int, v: int, rule: str = "hebbian",
                chunk: int = CHUNK) -> float:
    """Forward matrix-multiply FLOPs of ``bytelm.ops.hebbian`` / ``bytelm.ops.delta`` in their
    chunked form over n steps of one row (steps padded to a multiple of the chunk C, as they
    are run). Per step and head: hebbian 2C(K + V) (intra-chunk scores and their weighted sum)
    + 4KV (the chunk's state write, the read of the state before it); delta 4CK + 2CV + 6KV
    (its triangular solve is not a matrix multiply and is not counted). 0 for n = 0."""
    if n <= 0:
        return 0.0
    steps = -(-n // chunk) * chunk
    per = (2 * chunk * (k + v) + 4 * k * v if rule == "hebbian"
           else 4 * chunk * k + 2 * chunk * v + 6 * k * v)
    return float(steps * heads * per)


def window_keys(window: int, n: int) -> float:
    """Mean keys a query of causal attention over the last ``window`` of n positions sees:
    w - w^2 / 2n with w = min(window, n) (the window, less its ramp at the start; n / 2, the
    causal half, when the window covers the row). 0 for n = 0."""
    w = min(window, n)
    return w - w * w / (2.0 * n) if n > 0 else 0.0


def positive_features(x: torch.Tensor) -> torch.Tensor:
    """elu(x) + 1 > 0: the feature map of linear attention and of the Hebbian memory."""
    return F.elu(x) + 1.0


@dataclass
class WindowCache:
    """Last ``window`` rotated keys/values of one SWA layer: k, v (B, H, n <= W, D)."""

    k: torch.Tensor | None = None
    v: torch.Tensor | None = None

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int) -> torch.Tensor:
        """Appends one position's rotated k, v (B, H, 1, D), keeps the last ``window``, and
        attends the query q (B, H, 1, D) to them -> (B, H, 1, D)."""
        if self.k is None:
            self.k, self.v = k, v
        else:
            self.k = torch.cat([self.k, k], 2)[:, :, -window:]
            self.v = torch.cat([self.v, v], 2)[:, :, -window:]
        return sdpa(q, self.k.to(q.dtype), self.v.to(q.dtype))


@dataclass
class RingWindowCache:
    """The fixed-shape form of ``WindowCache`` (compiled decoding): k, v (B, H, W, D) buffers
    written in place at slot pos mod W, where ``pos`` is the 0-dim long tensor of the position
    being added; unwritten slots are masked. Keys are stored rotated, so slot order does not
    matter to softmax: the same result as WindowCache."""

    k: torch.Tensor
    v: torch.Tensor
    pos: torch.Tensor

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int) -> torch.Tensor:
        W = self.k.shape[2]  # == window
        slot = (self.pos % W).reshape(1)
        self.k.index_copy_(2, slot, k.to(self.k.dtype))
        self.v.index_copy_(2, slot, v.to(self.v.dtype))
        valid = torch.arange(W, device=q.device) <= self.pos  # all True once pos >= W - 1
        return sdpa(q, self.k.to(q.dtype), self.v.to(q.dtype),
                                              attn_mask=valid[None, None, None, :])

    def load(self, cache: WindowCache, end: int) -> None:
        """Copies a WindowCache that holds positions end - n .. end - 1 into the ring."""
        self.k.zero_()
        self.v.zero_()
        if cache.k is not None:
            n = cache.k.shape[2]
            slots = torch.arange(end - n, end, device=self.k.device) % self.k.shape[2]
            self.k[:, :, slots] = cache.k.to(self.k.dtype)
            self.v[:, :, slots] = cache.v.to(self.v.dtype)


class SlidingWindowAttention(nn.Module):
    """Causal softmax attention over the last ``window`` patches, RoPE inside q.k; O(N * W).

    x (B, N, d) -> (B, N, H, Dh) (heads kept apart for the per-head gate of HybridBlock).
    """

    def __init__(self, d_model: int, n_heads: int, window: int, rotary: Rotary):
        super().__init__()
        self.H, self.Dh, self.window = n_heads, d_model // n_heads, window
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.rotary = rotary

    def _qkv(self, x: torch.Tensor, start: int | torch.Tensor):
        B, N, _ = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.H, self.Dh).permute(2, 0, 3, 1, 4)
        cos, sin = self.rotary(start, N)
        return apply_rotary(q, cos, sin), apply_rotary(k, cos, sin), v  # (B, H, N, Dh)

    def forward(self, x: torch.Tensor, cache: WindowCache | None = None) -> torch.Tensor:
        """Parallel form; with ``cache`` (a prefill), it is filled with the last W keys/values."""
        q, k, v = self._qkv(x, 0)
        if cache is not None:
            cache.k, cache.v = k[:, :, -self.window:], v[:, :, -self.window:]
        return sliding_window_attention(q, k, v, self.window).transpose(1, 2)

    def step(self, x: torch.Tensor, cache: "WindowCache | RingWindowCache",
             pos: int | torch.Tensor) -> torch.Tensor:
        """x (B, 1, d) at position ``pos``; the cache adds it and keeps the last W entries."""
        q, k, v = self._qkv(x, pos)
        return cache.attend(q, k, v, self.window).transpose(1, 2)


def _with_ones(v: torch.Tensor) -> torch.Tensor:
    return torch.cat([v, torch.ones_like(v[..., :1])], -1)


def _normalise(o: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """o (..., V+1) from values with a ones column appended -> (q S) / (q z + eps)."""
    return o[..., :-1] / (o[..., -1:] + eps)


class LinearAttention(nn.Module):
    """Causal linear attention (elu+1 features, normalised): o_t = q_t S_t / q_t z_t with
    S_t = S_{t-1} + k_t v_t^T, z_t = z_{t-1} + k_t. x (B, N, d) -> (B, N, H, Dh)."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.H, self.Dh = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)

    def _qkv(self, x):
        B, N, _ = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.H, self.Dh).unbind(2)
        return positive_features(q), positive_features(k), _with_ones(v)

    def forward(self, x: torch.Tensor, return_state: bool = False):
        """(B, N, H, Dh), plus the final state (B, H, Dh, Dh+1) if ``return_state``."""
        q, k, v = self._qkv(x)
        g = torch.zeros(q.shape[:3], device=x.device, dtype=torch.float32)
        o, state = hebbian(q, k, v, g, scale=self.Dh ** -0.5, output_final_state=return_state)
        o = _normalise(o.float()).to(x.dtype)
        return (o, state) if return_state else o

    def flops(self, n: int) -> float:
        """Forward FLOPs of the recurrence over n positions of one row (not the projections)."""
        return chunk_flops(n, self.H, self.Dh, self.Dh + 1)

    def step(self, x: torch.Tensor, state):
        q, k, v = self._qkv(x)
        g = torch.zeros(q.shape[0], self.H, device=x.device, dtype=torch.float32)
        o, state = hebbian_step(q[:, 0], k[:, 0], v[:, 0], g, state, scale=self.Dh ** -0.5)
        return _normalise(o.float()).to(x.dtype)[:, None], state


class HebbianMemory(nn.Module):
    """Fast-weight memory with input-dependent decay and a plasticity knob.

    Per head: S_t = lambda_t S_{t-1} + k_t v_t^T, o_t = q_t S_t (optionally / q_t z_t with
    z_t = lambda_t z_{t-1} + k_t), lambda_t = plasticity * (lambda_min + (1 - lambda_min) *
    sigmoid(w . x_t + b)). The decay is handled in log space by ``bytelm.ops.hebbian``.
    rule="delta" swaps the write for the gated delta rule (``bytelm.ops.delta``) with the same
    decay: S_t = lambda_t (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T, beta_t =
    sigmoid(W_beta x_t) per head, q and k L2-normalised, no normaliser.
    x (B, N, d) -> (B, N, d); the residual is added by the caller.
    """

    def __init__(self, d_model: int, n_heads: int, lambda_min: float, plasticity: float = 1.0,
                 normalize: bool = True, norm_eps: float = 1e-6, rule: str = "hebbian"):
        super().__init__()
        self.H, self.Dh = n_heads, d_model // n_heads
        self.rule = rule
        # the delta rule keeps |S| bounded with unit keys; q . z has no meaning for it
        self.lambda_min, self.normalize = lambda_min, normalize and rule == "hebbian"
        # log alpha lives in a (non-persistent) buffer, not a Python float: a compiled model
        # then sees a tensor input, so the curriculum changing alpha never recompiles it
        self.register_buffer("log_plasticity", torch.zeros(()), persistent=False)
        self.set_plasticity(plasticity)  # sets log_plasticity and the exact float, plasticity
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.decay = nn.Linear(d_model, n_heads)
        self.beta = nn.Linear(d_model, n_heads) if rule == "delta" else None
        self.out_norm = RMSNorm(self.Dh, norm_eps)
        self.proj = nn.Linear(d_model, d_model, bias=False)

    def set_plasticity(self, alpha: float) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"plasticity must be in (0, 1], got {alpha}")
        self.plasticity = float(alpha)
        self.log_plasticity.fill_(math.log(alpha))

    def log_decay(self, x: torch.Tensor) -> torch.Tensor:
        """log lambda_t (..., H) in fp32, always <= 0 and finite."""
        s = torch.sigmoid(self.decay(x).float())
        return torch.log(self.lambda_min + (1.0 - self.lambda_min) * s) + \
            self.log_plasticity.float()

    def _qkv(self, x):
        B, N, _ = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.H, self.Dh).unbind(2)
        if self.rule == "delta":
            return F.normalize(q.float(), dim=-1), F.normalize(k.float(), dim=-1), v
        q, k = positive_features(q), positive_features(k)
        return q, k, (_with_ones(v) if self.normalize else v)

    def flops(self, n: int) -> float:
        """Forward FLOPs of the memory's recurrence over n positions of one row (not the
        projections)."""
        return chunk_flops(n, self.H, self.Dh, self.Dh + int(self.normalize), self.rule)

    def _out(self, o: torch.Tensor, dtype) -> torch.Tensor:
        o = _normalise(o.float()) if self.normalize else o.float()
        o = self.out_norm(o.to(dtype))
        return self.proj(o.flatten(-2))

    def forward(self, x: torch.Tensor, return_state: bool = False):
        """(out (B, N, d), log decay (B, N, H)), plus the final state if ``return_state``."""
        q, k, v = self._qkv(x)
        g = self.log_decay(x)
        if self.beta is not None:
            beta = torch.sigmoid(self.beta(x).float())  # (B, N, H)
            o, state = delta(q, k, v, g, beta, scale=self.Dh ** -0.5,
                             output_final_state=return_state)
        else:
            o, state = hebbian(q, k, v, g, scale=self.Dh ** -0.5, output_final_state=return_state)
        out = self._out(o, x.dtype)
        return (out, g, state) if return_state else (out, g)

    def step(self, x: torch.Tensor, state):
        q, k, v = self._qkv(x)
        g = self.log_decay(x)
        if self.beta is not None:
            beta = torch.sigmoid(self.beta(x).float())
            o, state = delta_step(q[:, 0], k[:, 0], v[:, 0], g[:, 0], beta[:, 0], state,
                                  scale=self.Dh ** -0.5)
        else:
            o, state = hebbian_step(q[:, 0], k[:, 0], v[:, 0], g[:, 0], state,
                                    scale=self.Dh ** -0.5)
        return self._out(o[:, None], x.dtype), state
