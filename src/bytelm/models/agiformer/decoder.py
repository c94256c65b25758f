"""LocalAutoregressiveHead: the P bytes of patch m from the context latent c_m (the latent of
patch m-1) and the bytes of patch m already known, autoregressively inside the patch.

    p(x_{mP+p} | c_m, x_{mP}, ..., x_{mP+p-1}),  p = 0..P-1

so the factorisation over bytes is exact (sampling is coherent). Two forms:
- "mlp" (default): h_p = W_c c_m + pos_p + sum_{q<p} E_q[x_{mP+q}], then a small residual
  SwiGLU MLP and a 256-way output; position p sees only bytes q < p of its patch.
- "gru" (technical report): a GRU over the patch started from tanh(W_c c_m), fed the previous
  byte (a start symbol at p = 0).
Training is parallel over all patches and positions (teacher forcing).
"""
import torch
from torch import nn

from bytelm.models.agiformer.mixers import SlidingWindowAttention
from bytelm.nn import RMSNorm, Rotary, SwiGLU


class LocalAutoregressiveHead(nn.Module):
    """c (B, M, d_model) and bytes (B, M, P) -> logits (B, M, P, 256)."""

    def __init__(self, d_model: int, d_dec: int, patch_size: int, kind: str = "mlp",
                 n_layers: int = 2, norm_eps: float = 1e-6):
        super().__init__()
        self.P, self.kind = patch_size, kind
        self.ctx = nn.Linear(d_model, d_dec, bias=False)
        if kind == "mlp":
            self.pos = nn.Parameter(torch.zeros(patch_size, d_dec))
            # one byte table per in-patch offset q of the conditioning byte
            self.prev = nn.Embedding(256 * (patch_size - 1), d_dec) if patch_size > 1 else None
            self.norms = nn.ModuleList(RMSNorm(d_dec, norm_eps) for _ in range(n_layers))
            self.mlps = nn.ModuleList(SwiGLU(d_dec, 2 * d_dec) for _ in range(n_layers))
        elif kind == "gru":
            self.byte = nn.Embedding(257, d_dec)  # 256 = start symbol
            self.gru = nn.GRU(d_dec, d_dec, batch_first=True)
        else:
            raise ValueError(f"unknown decoder {kind!r}")
        self.norm = RMSNorm(d_dec, norm_eps)
        self.out = nn.Linear(d_dec, 256, bias=False)

    def _prefix(self, bytes_: torch.Tensor) -> torch.Tensor:
        """sum_{q<p} E_q[x_q] for every p: bytes (..., P) -> (..., P, d_dec)."""
        *lead, P = bytes_.shape
        if self.prev is None:
            return torch.zeros(*lead, P, self.ctx.out_features, device=bytes_.device)
        offs = torch.arange(P - 1, device=bytes_.device) * 256
        e = self.prev(bytes_[..., : P - 1].long() + offs)  # (..., P-1, d)
        csum = e.cumsum(-2)
        return torch.cat([torch.zeros_like(csum[..., :1, :]), csum], dim=-2)

    def _mlp_out(self, h: torch.Tensor) -> torch.Tensor:
        for norm, mlp in zip(self.norms, self.mlps):
            h = h + mlp(norm(h))
        return self.out(self.norm(h))

    def forward(self, c: torch.Tensor, bytes_: torch.Tensor) -> torch.Tensor:
        if self.kind == "mlp":
            h = self.ctx(c)[:, :, None, :] + self.pos + self._prefix(bytes_).to(c.dtype)
            return self._mlp_out(h)
        B, M, P = bytes_.shape
        start = torch.full_like(bytes_[..., :1], 256)
        inp = self.byte(torch.cat([start, bytes_[..., :-1].long()], -1)).view(B * M, P, -1)
        h0 = torch.tanh(self.ctx(c)).reshape(1, B * M, -1)
        y, _ = self.gru(inp.to(h0.dtype), h0.contiguous())
        return self.out(self.norm(y)).view(B, M, P, 256)

    def predict(self, c: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """Next-byte logits (B, 256) at in-patch position p = prefix.shape[1] (0..P-1), given the
        context latent c (B, d_model) and the p bytes of the patch so far (B, p)."""
        B, p = prefix.shape
        if self.kind == "mlp":
            h = self.ctx(c) + self.pos[p]
            if p > 0:
                offs = torch.arange(p, device=prefix.device) * 256
                h = h + self.prev(prefix.long() + offs).sum(1).to(h.dtype)
            return self._mlp_out(h)
        start = torch.full((B, 1), 256, device=prefix.device, dtype=torch.long)
        inp = self.byte(torch.cat([start, prefix.long()], 1))
        h0 = torch.tanh(self.ctx(c))[None]
        y, _ = self.gru(inp.to(h0.dtype), h0.contiguous())
        return self.out(self.norm(y[:, -1]))


class LocalByteDecoder(nn.Module):
    """BLT-style local decoder (``decoder="local"``): byte j is predicted from the context latent
    c_{j // P} (the latent of patch j // P - 1, as in the heads above) and from *all* earlier
    bytes through causal sliding-window attention over bytes, so a byte seen up to ``window``
    bytes ago can be copied directly instead of through a patch latent.

        u_j = W_c c_{j // P} + pos_{j mod P} + E[x_{j-1}],  then n_layers of
        u += SWA(norm u) (window W bytes, RoPE over byte positions); u += SwiGLU(norm u)

    forward: c (B, M, d_model) with M = T // P + 1 (c_0 the start latent), x (B, T) ->
    logits (B, T, 256) for bytes 1..T (the row at t predicts x_{t+1}, as every model's logits).
    Strictly causal: u_j reads x_{j-1} and c_{j // P}, which covers bytes < P * (j // P) <= j.
    """

    def __init__(self, d_model: int, d_dec: int, patch_size: int, window: int, n_heads: int = 4,
                 n_layers: int = 2, norm_eps: float = 1e-6):
        super().__init__()
        self.P, self.window = patch_size, window
        self.ctx = nn.Linear(d_model, d_dec, bias=False)
        self.pos = nn.Parameter(torch.zeros(patch_size, d_dec))
        self.byte = nn.Embedding(256, d_dec)
        self.rotary = Rotary(d_dec // n_heads, 4 * window)
        self.norms1 = nn.ModuleList(RMSNorm(d_dec, norm_eps) for _ in range(n_layers))
        self.attns = nn.ModuleList(SlidingWindowAttention(d_dec, n_heads, window, self.rotary)
                                   for _ in range(n_layers))
        self.projs = nn.ModuleList(nn.Linear(d_dec, d_dec, bias=False) for _ in range(n_layers))
        self.norms2 = nn.ModuleList(RMSNorm(d_dec, norm_eps) for _ in range(n_layers))
        self.mlps = nn.ModuleList(SwiGLU(d_dec, 2 * d_dec) for _ in range(n_layers))
        self.norm = RMSNorm(d_dec, norm_eps)
        self.out = nn.Linear(d_dec, 256, bias=False)

    def _inputs(self, c_j: torch.Tensor, prev: torch.Tensor, j0) -> torch.Tensor:
        """u for bytes j0..j0+L-1 (j0 an int or a 0-dim tensor) from their context latents
        c_j (B, L, d_model) and the bytes before them prev (B, L)."""
        L = prev.shape[1]
        offs = (torch.arange(L, device=prev.device) + j0) % self.P
        return self.ctx(c_j) + self.pos[offs] + self.byte(prev.long()).to(c_j.dtype)

    def _layers(self, u: torch.Tensor, caches=None, pos=None) -> torch.Tensor:
        B, L, _ = u.shape
        for i, (n1, attn, proj, n2, mlp) in enumerate(zip(self.norms1, self.attns, self.projs,
                                                          self.norms2, self.mlps)):
            h = n1(u)
            if pos is None:
                a = attn(h, caches[i] if caches is not None else None)
            else:
                a = attn.step(h, caches[i], pos)
            u = u + proj(a.reshape(B, L, -1).to(u.dtype))
            u = u + mlp(n2(u))
        return self.out(self.norm(u))

    def forward(self, c: torch.Tensor, x: torch.Tensor, caches=None) -> torch.Tensor:
        """Parallel form; ``caches`` (one WindowCache per layer, a prefill) are filled too."""
        B, T = x.shape
        j = torch.arange(1, T + 1, device=x.device)
        u = self._inputs(c[:, j // self.P], x, 1)  # byte j reads x_{j-1}: the row at t = j - 1
        return self._layers(u, caches)

    def step(self, c: torch.Tensor, prev: torch.Tensor, j, caches) -> torch.Tensor:
        """Logits (B, 256) for byte j (an int or a 0-dim tensor) from its context latent c
        (B, d_model), the byte before it prev (B,), and the window caches (WindowCache or
        RingWindowCache) of the positions before j - 1, extended by one."""
        u = self._inputs(c[:, None], prev[:, None], j)
        return self._layers(u, caches, pos=j - 1)[:, 0]
