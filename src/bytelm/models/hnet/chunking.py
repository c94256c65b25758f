"""Dynamic chunking for the hierarchical byte model (SPEC section 7, after H-Net, arXiv 2507.07955).

A *boundary* at byte t means the main network reads the encoder vector of byte t; its output is
used by bytes t, t+1, ... until the next boundary (so it only ever depends on bytes <= t). Byte 0
is always a boundary. Two sources of boundaries share everything below:

- the learned router: p_t = (1 - cos(W_q h_t, W_k h_{t-1})) / 2, p_0 = 1, boundary iff p_t >= 0.5,
  trained through the smoothing (EMA) weights, a straight-through confidence and the ratio loss;
- any rule of ``bytelm.patching`` (fixed, space, babylon, entropy-model): the byte where a patch
  ends is a boundary (SpaceByte's "global block at each space-like byte"), with p_t = 1.

Static shapes: a row keeps at most ``max_chunks`` boundaries, the first ones; later boundaries
are dropped (a causal rule: whether byte t's boundary is kept depends on the count before t).
"""
import torch
import torch.nn.functional as F
from torch import nn

# floor of 1 - p in the smoothing recurrence (p = 1 at byte 0 and for rule-based chunkers)
_MIN_KEEP = 1e-6


class Router(nn.Module):
    """H-Net's routing module: boundary probabilities from adjacent encoder vectors.

    h (B, T, d) -> p (B, T) fp32 in [0, 1], p[:, 0] = 1. ``prev`` (B, d), the vector of the byte
    before h[:, 0] (generation), replaces the p_0 = 1 rule when given.
    """

    def __init__(self, d: int):
        super().__init__()
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, d, bias=False)
        # identity init (as H-Net): p starts from the cosine of adjacent vectors themselves
        with torch.no_grad():
            self.q.weight.copy_(torch.eye(d))
            self.k.weight.copy_(torch.eye(d))

    def forward(self, h: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:
        q = F.normalize(self.q(h).float(), dim=-1)
        k = F.normalize(self.k(h).float(), dim=-1)
        if prev is None:
            cos = (q[:, 1:] * k[:, :-1]).sum(-1)
            p = ((1 - cos) / 2).clamp(0, 1)
            return F.pad(p, (1, 0), value=1.0)
        kp = F.normalize(self.k(prev[:, None]).float(), dim=-1)
        k = torch.cat([kp, k[:, :-1]], 1)
        return ((1 - (q * k).sum(-1)) / 2).clamp(0, 1)


def ratio_loss(b: torch.Tensor, p: torch.Tensor, target: float) -> torch.Tensor:
    """H-Net's ratio loss N/(N-1) ((N-1) F G + (1-F)(1-G)); F = boundary fraction, G = mean p.

    b (B, T) bool boundaries, p (B, T) probabilities; minimal (1) when F = G = 1/N.
    """
    n = float(target)
    f = b.float().mean()
    g = p.float().mean()
    return n / (n - 1) * ((n - 1) * f * g + (1 - f) * (1 - g))


def keep_first(b: torch.Tensor, max_chunks: int, count0: torch.Tensor | None = None):
    """Drops boundaries beyond the first ``max_chunks`` of each row.

    b (B, T) bool; count0 (B,) boundaries already kept before b[:, 0] (generation).
    Returns (kept (B, T) bool, before (B, T) long: kept boundaries strictly before t, counted
    from the row's start).
    """
    before = b.long().cumsum(1) - b.long()
    if count0 is not None:
        before = before + count0[:, None]
    kept = b & (before < max_chunks)
    before = kept.long().cumsum(1) - kept.long()
    if count0 is not None:
        before = before + count0[:, None]
    return kept, before


def gather_chunks(h: torch.Tensor, kept: torch.Tensor, before: torch.Tensor, max_chunks: int):
    """The encoder vectors at kept boundaries, packed into ``max_chunks`` slots.

    h (B, T, d), kept (B, T) bool, before (B, T) long (from ``keep_first`` without count0).
    Returns (z (B, M, d), pos (B, M) long byte position of each slot, valid (B, M) bool);
    unused slots hold zeros at position 0.
    """
    B, T, d = h.shape
    t = torch.arange(T, device=h.device).expand(B, T)
    pos = torch.zeros(B, max_chunks + 1, dtype=torch.long, device=h.device)
    pos.scatter_(1, torch.where(kept, before, torch.full_like(before, max_chunks)), t)
    pos = pos[:, :max_chunks]
    n = kept.sum(1, keepdim=True)
    valid = torch.arange(max_chunks, device=h.device)[None] < n
    z = h.gather(1, pos[..., None].expand(B, max_chunks, d)) * valid[..., None].to(h.dtype)
    return z, pos, valid


def smooth(z: torch.Tensor, p: torch.Tensor, z0: torch.Tensor | None = None) -> torch.Tensor:
    """The dechunking EMA over chunk slots: s_c = p_c z_c + (1 - p_c) s_{c-1}, s_{-1} = z0 (or 0).

    z (B, M, d), p (B, M) fp32 boundary probabilities of the slots. Parallel form: s_c =
    sum_{j<=c} p_j prod_{j<i<=c} a_i z_j + prod_{i<=c} a_i z0 with a = max(1 - p, 1e-6), in fp32
    through log-space cumulative sums (exponents <= 0). Returns (B, M, d) in z's dtype.
    """
    f = torch.promote_types(z.dtype, torch.float32)
    a = (1 - p.to(f)).clamp_min(_MIN_KEEP)
    la = a.log().cumsum(1)  # (B, M)
    M = z.shape[1]
    diff = la[:, :, None] - la[:, None, :]  # L_c - L_j
    causal = torch.ones(M, M, dtype=torch.bool, device=z.device).tril()
    w = torch.where(causal, diff, torch.full_like(diff, -float("inf"))).exp() * p.to(f)[:, None, :]
    s = torch.bmm(w, z.to(f))
    if z0 is not None:
        s = s + la.exp()[..., None] * z0.to(f)[:, None, :]
    return s.to(z.dtype)


def smooth_reference(z: torch.Tensor, p: torch.Tensor, z0: torch.Tensor | None = None) -> torch.Tensor:
    """``smooth`` as the sequential recurrence (reference, and the generation path)."""
    f = torch.promote_types(z.dtype, torch.float32)
    a = (1 - p.to(f)).clamp_min(_MIN_KEEP)
    s = torch.zeros_like(z[:, 0], dtype=f) if z0 is None else z0.to(f)
    out = []
    for c in range(z.shape[1]):
        s = p[:, c, None].to(f) * z[:, c].to(f) + a[:, c, None] * s
        out.append(s)
    return torch.stack(out, 1).to(z.dtype)


def confidence(p: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Straight-through confidence: value 1, gradient of c_t = p_t (boundary) or 1 - p_t.

    p (B, T) fp32, b (B, T) bool -> (B, T) fp32.
    """
    c = torch.where(b, p, 1 - p)
    return c + (1 - c).detach()
