"""AGIFORMER: bytes -> ByteLatentEncoder -> N x HybridBlock -> HebbianMemory ->
RecurrentReasoningBlock (ACT) -> LocalAutoregressiveHead -> byte logits.

Causality: patch j (bytes up to j*P + P - 1) yields latent h_j; the bytes of patch m are
predicted from c_m = h_{m-1} (a learned start latent for m = 0) and the bytes of patch m before
them. ``logits[:, i]`` predicts byte i+1 = m*P + p, so it reads c_m and bytes m*P..i only.
"""
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from bytelm.errors import UserError
from bytelm.models.agiformer.act import RecurrentReasoningBlock
from bytelm.models.agiformer.decoder import LocalAutoregressiveHead, LocalByteDecoder
from bytelm.models.agiformer.encoder import ByteLatentEncoder
from bytelm.models.agiformer.mixers import (HebbianMemory, LinearAttention, SlidingWindowAttention,
                                            WindowCache, window_keys)
from bytelm.models.base import ByteLM, ModelConfig, ModelOutput
from bytelm.nn import RMSNorm, Rotary, SwiGLU
from bytelm.nn.mlp import swiglu_hidden


@dataclass(kw_only=True)
class AgiformerConfig(ModelConfig):
    """AGIFORMER v2 hyperparameters (sizes in patches where the name says so)."""

    family: str = "agiformer"
    """registry name of the family."""
    d_model: int = 512
    """width of the patch latents."""
    n_layers: int = 6
    """number of HybridBlocks."""
    n_heads: int = 8
    """heads of attention, linear attention and memory."""
    d_ff: int = 0
    """SwiGLU hidden size; 0: 8/3 * d_model rounded to 64."""
    patch_size: int = 4
    """bytes per patch (conv stride)."""
    patch_kernel: int = 6
    """bytes seen by one patch latent (its own patch_size plus kernel - patch_size before)."""
    encoder_norm: bool = True
    """RMSNorm on the encoder's patch latents. It puts the residual stream at unit scale from
    the start, against residual branches initialised at std ~0.01. On CPU it kept agiformer-tiny
    at chance on one-pair recall at 64 bytes for 1,000 steps (0.250 without it;
    benchmarks/results/recall/recall_cpu_encoder_norm.json) but helps English bpb (2.760 vs 2.864 at
    2,000 steps; ablations/ablate_encoder_norm_cpu.json), so it stays on by default."""
    encoder_norm_init: float = 1.0
    """initial gain of that RMSNorm (the encoder's latents start at this rms); smaller gains
    keep the norm but start the residual stream nearer the scale of the residual branches."""
    window: int = 128
    """sliding-window attention span, in patches."""
    mixer_gate: str = "learned"
    """'learned': per-head sigmoid gate between attention and linear attention; 'fixed': alpha."""
    fixed_alpha: float = 0.5
    """weight of attention when mixer_gate = 'fixed'."""
    lambda_min: float = 0.99
    """lower bound of the memory decay before plasticity (0.99 Phase 7, 0.995 Phase 8)."""
    plasticity: float = 1.0
    """initial plasticity alpha in (0, 1]; the curriculum changes it with set_plasticity."""
    memory_normalize: bool = True
    """divide the memory read by q . z (z the decayed sum of keys); Hebbian rule only."""
    memory_rule: str = "hebbian"
    """'hebbian': S = lambda S + k v^T; 'delta': gated delta rule S = lambda (I - beta k k^T) S +
    beta k v^T with beta = sigmoid(W_beta x) per head and L2-normalised q, k (bytelm.ops.delta)."""
    think_steps: int = 3
    """maximum ACT steps of the reasoning block (0 disables the block)."""
    act_eps: float = 0.01
    """ACT halting threshold epsilon."""
    ponder_weight: float = 0.01
    """weight tau of the ponder cost N + R in the loss."""
    decoder: str = "mlp"
    """byte decoder: 'mlp' or 'gru' (inside a patch, from the previous patch's latent), or
    'local' (BLT-style: also attends to the last decoder_window bytes, across patches)."""
    d_decoder: int = 256
    """width of the byte decoder."""
    decoder_window: int = 64
    """decoder='local': attention window in bytes."""
    rope_base: float = 10000.0
    """rotary base of the sliding-window attention (positions are patch indices)."""
    norm_eps: float = 1e-6
    """RMSNorm epsilon."""
    init_std: float = 0.02
    """std of the normal init of matrices."""
    dropout: float = 0.0
    """dropout on residual branches during training."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise UserError(f"model.d_model={self.d_model} must split into n_heads={self.n_heads} "
                            "heads of even size")
        checks = [(self.n_layers >= 1, "model.n_layers must be >= 1"),
                  (self.patch_size >= 1, "model.patch_size must be >= 1"),
                  (self.patch_kernel >= self.patch_size, "model.patch_kernel must be >= patch_size"),
                  (self.window >= 1, "model.window must be >= 1"),
                  (self.mixer_gate in ("learned", "fixed"), "model.mixer_gate must be learned or fixed"),
                  (self.memory_rule in ("hebbian", "delta"), "model.memory_rule must be hebbian or delta"),
                  (0 <= self.fixed_alpha <= 1, "model.fixed_alpha must be in [0, 1]"),
                  (0 < self.lambda_min <= 1, "model.lambda_min must be in (0, 1]"),
                  (0 < self.plasticity <= 1, "model.plasticity must be in (0, 1]"),
                  (self.encoder_norm_init > 0, "model.encoder_norm_init must be > 0"),
                  (self.think_steps >= 0, "model.think_steps must be >= 0"),
                  (0 < self.act_eps < 1, "model.act_eps must be in (0, 1)"),
                  (self.ponder_weight >= 0, "model.ponder_weight must be >= 0"),
                  (self.decoder in ("mlp", "gru", "local"), "model.decoder must be mlp, gru or local"),
                  (self.decoder_window >= 1, "model.decoder_window must be >= 1"),
                  (0 <= self.dropout < 1, "model.dropout must be in [0, 1)"),
                  (self.context >= self.patch_size, "model.context must be >= patch_size")]
        for ok, msg in checks:
            if not ok:
                raise UserError(msg)
        if self.d_ff == 0:
            self.d_ff = swiglu_hidden(self.d_model)


class HybridBlock(nn.Module):
    """x + W_o[g * SWA(u) + (1 - g) * LinAttn(u)], u = norm(x); then x + SwiGLU(norm(x))."""

    def __init__(self, c: AgiformerConfig, rotary: Rotary):
        super().__init__()
        self.norm1 = RMSNorm(c.d_model, c.norm_eps)
        self.swa = SlidingWindowAttention(c.d_model, c.n_heads, c.window, rotary)
        self.lin = LinearAttention(c.d_model, c.n_heads)
        self.gate = nn.Linear(c.d_model, c.n_heads) if c.mixer_gate == "learned" else None
        self.alpha = c.fixed_alpha
        self.proj = nn.Linear(c.d_model, c.d_model, bias=False)
        self.norm2 = RMSNorm(c.d_model, c.norm_eps)
        self.mlp = SwiGLU(c.d_model, c.d_ff)
        self.drop = nn.Dropout(c.dropout)

    def _mix(self, x, u, a, lin):
        if self.gate is not None:
            g = torch.sigmoid(self.gate(u))[..., None]  # (B, N, H, 1)
        else:
            g = torch.full_like(a[..., :1], self.alpha)
        y = (g * a + (1 - g) * lin).flatten(-2).to(x.dtype)
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.mlp(self.norm2(x))), g

    def forward(self, x: torch.Tensor, cache: dict | None = None):
        """Parallel form; with ``cache`` (a prefill) the decoding caches are filled too."""
        u = self.norm1(x)
        if cache is None:
            return self._mix(x, u, self.swa(u), self.lin(u))
        lin, cache["lin"] = self.lin(u, return_state=True)
        return self._mix(x, u, self.swa(u, cache["swa"]), lin)

    def step(self, x: torch.Tensor, cache: dict, pos: int):
        u = self.norm1(x)
        a = self.swa.step(u, cache["swa"], pos)
        lin, cache["lin"] = self.lin.step(u, cache["lin"])
        return self._mix(x, u, a, lin)[0]


@dataclass
class AgiformerState:
    """Decoding state: O(1) in the context length (bounded window cache + fixed-size memories)."""

    n_bytes: int
    tail: torch.Tensor  # (B, K-P, d) embeddings of the last K-P bytes before the current patch
    cur: list = field(default_factory=list)  # byte tensors (B,) of the current, incomplete patch
    ctx: torch.Tensor | None = None  # (B, d) context latent c_m for the current patch
    blocks: list = field(default_factory=list)  # per layer {"swa": WindowCache, "lin": state}
    memory: torch.Tensor | None = None  # (B, H, K, V) Hebbian state
    dec: list | None = None  # decoder='local': per layer WindowCache over the last bytes


class AgiformerLM(ByteLM):
    """forward: x (B, T) -> ModelOutput(logits (B, T, 256), aux_loss = tau * mean ponder, stats)."""

    config: AgiformerConfig

    def __init__(self, config: AgiformerConfig):
        super().__init__(config)
        c = config
        self.P = c.patch_size
        self.encoder = ByteLatentEncoder(c.d_model, c.patch_size, c.patch_kernel, c.norm_eps,
                                         c.encoder_norm)
        self.rotary = Rotary(c.d_model // c.n_heads, max(c.context // c.patch_size, 1), c.rope_base)
        self.blocks = nn.ModuleList(HybridBlock(c, self.rotary) for _ in range(c.n_layers))
        self.mem_norm = RMSNorm(c.d_model, c.norm_eps)
        self.memory = HebbianMemory(c.d_model, c.n_heads, c.lambda_min, c.plasticity,
                                    c.memory_normalize, c.norm_eps, c.memory_rule)
        self.norm = RMSNorm(c.d_model, c.norm_eps)
        self.reason = (RecurrentReasoningBlock(c.d_model, c.d_ff, c.think_steps, c.act_eps,
                                               norm_eps=c.norm_eps) if c.think_steps else None)
        self.start = nn.Parameter(torch.zeros(c.d_model))
        if c.decoder == "local":
            self.head = LocalByteDecoder(c.d_model, c.d_decoder, c.patch_size, c.decoder_window,
                                         norm_eps=c.norm_eps)
        else:
            self.head = LocalAutoregressiveHead(c.d_model, c.d_decoder, c.patch_size, c.decoder,
                                                norm_eps=c.norm_eps)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        std = self.config.init_std
        resid_std = std / math.sqrt(2 * (self.config.n_layers + 1))
        for name, p in self.named_parameters():
            if p.dim() < 2 or name.startswith("head.gru"):
                continue
            is_resid = name.endswith(("proj.weight", "mlp.w2.weight")) and "encoder" not in name
            nn.init.normal_(p, 0.0, resid_std if is_resid else std)
        nn.init.normal_(self.start, 0.0, std)
        # decay logits start high: lambda close to 1 (long memory) before training moves them
        nn.init.constant_(self.memory.decay.bias, 4.0)
        if self.config.encoder_norm:
            nn.init.constant_(self.encoder.norm.weight, self.config.encoder_norm_init)

    def set_plasticity(self, alpha: float) -> None:
        """Plasticity alpha in (0, 1] of every HebbianMemory (the curriculum's knob)."""
        for m in self.modules():
            if isinstance(m, HebbianMemory):
                m.set_plasticity(alpha)

    @property
    def plasticity(self) -> float:
        return self.memory.plasticity

    # --- parallel (training) path -------------------------------------------------------------
    def latents(self, x: torch.Tensor, state: "AgiformerState | None" = None):
        """Patch latents h (B, T // P, d) and stats; with a fresh ``state`` (a prefill) the
        mixers' decoding caches are filled as well."""
        h = self.encoder(x)
        if h.shape[1] == 0:  # shorter than one patch: only the start latent is used
            return h, h.new_zeros((), dtype=torch.float32), {}
        gates = []
        for i, blk in enumerate(self.blocks):
            h, g = blk(h, state.blocks[i] if state is not None else None)
            gates.append(g.float().mean())
        if state is not None:
            m, logd, state.memory = self.memory(self.mem_norm(h), return_state=True)
        else:
            m, logd = self.memory(self.mem_norm(h))
        h = self.norm(h + m)
        stats = {"decay_mean": logd.exp().mean().detach(),
                 "gate_mean": torch.stack(gates).mean().detach() if gates else 0.0}
        ponder = h.new_zeros((), dtype=torch.float32)
        if self.reason is not None and h.shape[1] > 0:
            h, pond, steps, dz = self.reason(h)
            ponder = pond.mean()
            stats.update(act_steps=steps.mean().detach(), act_dz=dz.detach(),
                         ponder=ponder.detach())
        return h, ponder, stats

    def forward(self, x: torch.Tensor) -> ModelOutput:
        B, T = x.shape
        if T > self.config.context:
            raise ValueError(f"sequence of {T} bytes exceeds the context {self.config.context}")
        h, ponder, stats = self.latents(x)
        aux = self.config.ponder_weight * ponder if self.reason is not None else 0.0
        return ModelOutput(logits=self._decode(x, h), aux_loss=aux, stats=stats)

    def patch_ends(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T) bool: fixed P-byte patches aligned to the input, so one ends at t when
        (t + 1) % P == 0."""
        t = torch.arange(x.shape[1], device=x.device)
        return ((t + 1) % self.P == 0).expand(x.shape[0], -1)

    def _decode(self, x: torch.Tensor, h: torch.Tensor, caches=None) -> torch.Tensor:
        """Byte logits (B, T, 256) from the bytes x (B, T) and their patch latents h; ``caches``
        (decoder='local', a prefill) receive the local decoder's window."""
        B, T = x.shape
        M = T // self.P + 1  # patches whose bytes are predicted (the last one partly)
        c = torch.cat([self.start.to(h.dtype).expand(B, 1, -1), h], 1)  # (B, M, d)
        if self.config.decoder == "local":
            return self.head(c, x, caches).float()
        pad = M * self.P - T
        xb = torch.nn.functional.pad(x.long(), (0, pad)).view(B, M, self.P)
        return self.head(c, xb).reshape(B, M * self.P, 256)[:, 1:T + 1].float()

    # --- recurrent (generation) path ----------------------------------------------------------
    def init_state(self, batch_size: int, device=None) -> AgiformerState:
        device = device or self.start.device
        c = self.config
        tail = self.encoder.pad.detach().to(device)[None].expand(batch_size, -1, -1)
        return AgiformerState(n_bytes=0, tail=tail,
                              ctx=self.start.detach().to(device)[None].expand(batch_size, -1),
                              blocks=[{"swa": WindowCache(), "lin": None} for _ in range(c.n_layers)],
                              dec=([WindowCache() for _ in self.head.attns] if c.decoder == "local"
                                   else None))

    def _patch_step(self, state: AgiformerState) -> None:
        """Encodes the just-completed patch and advances every mixer by one position."""
        emb = self.encoder.embed(torch.stack(state.cur, 1).long())  # (B, P, d)
        window = torch.cat([state.tail.to(emb.dtype), emb], 1)  # (B, K, d)
        pos = state.n_bytes // self.P - 1
        h = self.encoder.encode_window(window)[:, None]  # (B, 1, d)
        h, state.memory = self.advance(h, state.blocks, state.memory, pos)
        state.ctx = h[:, 0]
        state.tail = window[:, window.shape[1] - (self.encoder.K - self.P):]
        state.cur = []

    def advance(self, h: torch.Tensor, caches: list, memory, pos, early_exit: bool = True):
        """One patch latent h (B, 1, d) at patch index pos through the blocks (their caches
        ``{"swa", "lin"}`` are updated), the memory and ACT -> (context latent (B, 1, d), new
        memory state). Shared by ``step`` and the compiled decoder (static_decode)."""
        for blk, cache in zip(self.blocks, caches):
            h = blk.step(h, cache, pos)
        m, memory = self.memory.step(self.mem_norm(h), memory)
        h = self.norm(h + m)
        if self.reason is not None:
            h = self.reason(h, early_exit=early_exit)[0]
        return h, memory

    def _prefill(self, x: torch.Tensor, state: AgiformerState) -> torch.Tensor:
        """A fresh state reads x (B, n), n a multiple of P, with the parallel form; returns its
        logits (B, n, 256). Equal to stepping byte by byte, much faster for long prompts."""
        h, _, _ = self.latents(x, state)
        ctx_bytes = self.encoder.K - self.P
        emb = torch.cat([state.tail, self.encoder.embed(x.long()).to(state.tail.dtype)], 1)
        state.tail = emb[:, emb.shape[1] - ctx_bytes:]
        state.ctx = h[:, -1]
        state.n_bytes = x.shape[1]
        return self._decode(x, h, state.dec)

    def step(self, x: torch.Tensor, state: AgiformerState):
        out = []
        start = 0
        if state.n_bytes == 0 and x.shape[1] >= self.P:
            start = x.shape[1] // self.P * self.P
            out = list(self._prefill(x[:, :start], state).unbind(1))
        for i in range(start, x.shape[1]):
            state.cur.append(x[:, i])
            state.n_bytes += 1
            if len(state.cur) == self.P:
                self._patch_step(state)
            if state.dec is not None:  # decoder='local': the byte just read, at byte position i
                out.append(self.head.step(state.ctx, x[:, i], state.n_bytes, state.dec).float())
                continue
            prefix = (torch.stack(state.cur, 1) if state.cur
                      else x.new_zeros(x.shape[0], 0, dtype=torch.long))
            out.append(self.head.predict(state.ctx, prefix).float())
        return torch.stack(out, 1), state

    def build_static_decoder(self, batch_size: int, dtype=None, compile: str | None = None,
                             capacity: int | None = None):
        """``static_decode.StaticDecoder``: the same logits as ``step``, compilable; its state
        is unbounded (capacity is ignored)."""
        from bytelm.models.agiformer.static_decode import StaticDecoder
        return StaticDecoder(self, batch_size, dtype=dtype, compile=compile)

    def flops_per_byte(self, seq_len: int | None = None) -> float:
        """Training FLOPs per byte (forward + backward = 3 x forward) of the matrix multiplies
        at sequence length T (default: context), N = T // P patches:
        - 6 x the parameters each patch latent passes through (encoder conv and projection,
          blocks, memory, norms, and the ACT block think_steps times: training runs every
          step), N per T bytes;
        - the byte decoder: 6 x its parameters per position it decodes, (N + 1) x P positions
          for the patch heads (the last patch partly past the row), whose context projection
          runs once per patch; T for decoder='local' (every matrix at every byte);
        - sliding-window attention: 12 d per key (fwd + bwd) per patch and layer, over the
          mean keys a query sees (``mixers.window_keys``: the window less its ramp at the
          start, the causal half when it covers the row); likewise the local decoder's;
        - linear attention and the memory: their chunked recurrence (``mixers.chunk_flops``),
          x 3. Embedding lookups, norms' and gates' elementwise work are not counted.
        Measured against FlopCounterMode in tests/models/test_flops.py."""
        c = self.config
        T = seq_len or c.context
        P, N = c.patch_size, T // c.patch_size
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        patch = (count(self.encoder) - self.encoder.embed.weight.numel() + count(self.blocks)
                 + count(self.memory) + count(self.mem_norm) + count(self.norm))
        if self.reason is not None:
            patch += count(self.reason) * c.think_steps
        head = count(self.head) - sum(m.weight.numel() for m in self.head.modules()
                                      if isinstance(m, nn.Embedding))
        if c.decoder == "local":
            head_total = head * T
            attn_bytes = 12.0 * c.d_decoder * window_keys(c.decoder_window, T) * T \
                * len(self.head.attns)
        else:
            ctx = count(self.head.ctx)
            head_total = ctx * (N + 1) + (head - ctx) * (N + 1) * P
            attn_bytes = 0.0
        attn = 12.0 * c.d_model * window_keys(c.window, N) * N * c.n_layers
        mixers = 3.0 * (sum(b.lin.flops(N) for b in self.blocks) + self.memory.flops(N))
        return (6.0 * (patch * N + head_total) + attn + attn_bytes + mixers) / T
