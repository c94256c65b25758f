"""Hierarchical byte model with dynamic chunking ("hnet"; SPEC section 7, after H-Net).

bytes (B, T) -> embedding (d_byte) -> encoder (byte blocks) -> chunker (learned router or a
``bytelm.patching`` rule) -> main network (Transformer blocks at d_main over <= max_chunks chunk
slots per row) -> dechunking (EMA smoothing by the boundary probabilities, each byte takes the
vector of its chunk, straight-through confidence) -> + encoder residual -> decoder (byte blocks)
-> logits (B, T, 256).

Causality: the chunk read at boundary t holds bytes <= t; main-network slot c attends slots <= c;
byte t uses the slot of the last boundary <= t. Generation caches every stage and runs the main
network only for rows where a boundary fires.
"""
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from bytelm.errors import UserError
from bytelm.models.base import ByteLM, ModelConfig, ModelOutput
from bytelm.models.gpt.model import Block as TransformerBlock
from bytelm.models.gpt.model import GPTConfig
from bytelm.models.hnet.chunking import (Router, confidence, gather_chunks, keep_first, ratio_loss,
                                         smooth, smooth_reference)
from bytelm.models.hnet.stages import MIXERS, ByteBlock, SlotCache, main_block_step
from bytelm.nn import RMSNorm, Rotary
from bytelm.nn.mlp import swiglu_hidden

CHUNKERS = ("learned", "fixed", "space", "babylon", "entropy-model")


@dataclass(kw_only=True)
class HNetConfig(ModelConfig):
    """Hierarchical byte model hyperparameters (one encoder-main-decoder level)."""

    family: str = "hnet"
    """registry name of the family."""
    d_byte: int = 256
    """width of the byte-level encoder and decoder."""
    byte_heads: int = 4
    """attention heads of the byte-level blocks."""
    enc_layers: int = 2
    """byte-level encoder blocks."""
    dec_layers: int = 2
    """byte-level decoder blocks."""
    byte_mixer: str = "attn"
    """mixer of the byte blocks: attn (causal, whole context) | swa (window) | hebbian."""
    window: int = 256
    """byte_mixer=swa: bytes each position attends (itself included)."""
    lambda_min: float = 0.9
    """byte_mixer=hebbian: lower bound of the memory's decay."""
    d_main: int = 512
    """width of the main network over chunks."""
    main_layers: int = 8
    """Transformer blocks of the main network."""
    main_heads: int = 8
    """attention heads of the main network."""
    chunker: str = "learned"
    """boundaries: learned (H-Net router + ratio loss) | fixed | space | babylon | entropy-model."""
    chunk_len: float = 4.0
    """target mean chunk length in bytes (the ratio loss's N; sizes max_chunks)."""
    max_chunks: int = 0
    """chunk slots per row (0: ceil(context / chunk_len * chunk_slack)); extra boundaries drop."""
    chunk_slack: float = 1.25
    """max_chunks = 0: slots per expected chunk."""
    ratio_weight: float = 0.03
    """weight of the ratio loss (learned chunker)."""
    smoothing: bool = True
    """learned chunker: EMA dechunking by the boundary probabilities (else plain upsampling)."""
    residual_proj: bool = True
    """decoder input = main output + W (normed encoder output) with W zero at init (H-Net's
    residual projection: the decoder starts from the main network alone); else + the raw
    encoder output."""
    residual_std: float = 0.0
    """residual_proj: std of W's normal init (0: zeros, as H-Net)."""
    patch_min: int = 1
    """rule chunkers except fixed: shortest patch in bytes."""
    patch_max: int = 16
    """rule chunkers except fixed: longest patch in bytes."""
    patch_stride: int = 4
    """chunker=fixed: bytes per chunk."""
    patch_threshold: float = 0.2
    """chunker=babylon: entropy rise; entropy-model: next-byte entropy in bits."""
    patcher_model: str = ""
    """chunker=entropy-model: checkpoint of the small byte LM."""
    byte_lr_mult: float = 1.0
    """learning-rate multiplier of the byte-level stages (embedding, encoder, router, decoder, head)."""
    main_lr_mult: float = 1.0
    """learning-rate multiplier of the main network."""
    norm_eps: float = 1e-6
    """RMSNorm epsilon."""
    dropout: float = 0.0
    """dropout on the main network's residual branches during training."""
    init_std: float = 0.02
    """std of the normal init (residual output projections: init_std / sqrt(2 * layers))."""

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = [
            (self.byte_mixer in MIXERS, f"model.byte_mixer must be one of {', '.join(MIXERS)}"),
            (self.chunker in CHUNKERS, f"model.chunker must be one of {', '.join(CHUNKERS)}"),
            (self.d_byte >= 2 and self.byte_heads >= 1 and self.d_byte % self.byte_heads == 0
             and (self.d_byte // self.byte_heads) % 2 == 0,
             "model.d_byte must split into byte_heads heads of even size"),
            (self.d_main >= 2 and self.main_heads >= 1 and self.d_main % self.main_heads == 0
             and (self.d_main // self.main_heads) % 2 == 0,
             "model.d_main must split into main_heads heads of even size"),
            (self.enc_layers >= 1 and self.dec_layers >= 1 and self.main_layers >= 1,
             "model.enc_layers, dec_layers and main_layers must be >= 1"),
            (self.chunk_len > 1, "model.chunk_len must be > 1"),
            (self.chunk_slack > 0 and self.max_chunks >= 0, "model.chunk_slack must be > 0, max_chunks >= 0"),
            (self.window >= 1, "model.window must be >= 1"),
            (0 <= self.dropout < 1, "model.dropout must be in [0, 1)"),
            (self.residual_std >= 0, "model.residual_std must be >= 0"),
            (self.byte_lr_mult > 0 and self.main_lr_mult > 0, "learning-rate multipliers must be > 0"),
            (self.chunker != "entropy-model" or self.patcher_model,
             "model.chunker=entropy-model needs model.patcher_model=CKPT"),
        ]
        for ok, msg in checks:
            if not ok:
                raise UserError(msg)

    @property
    def slots(self) -> int:
        """Chunk slots per row: max_chunks, or ceil(context / chunk_len * chunk_slack)."""
        if self.max_chunks:
            return self.max_chunks
        return max(2, min(self.context, math.ceil(self.context / self.chunk_len * self.chunk_slack)))

    def patcher_kwargs(self) -> dict:
        """Options of ``bytelm.patching.get_patcher(self.chunker, ...)`` (rule chunkers)."""
        sizes = {"min_size": self.patch_min, "max_size": self.patch_max}
        if self.chunker == "fixed":
            return {"patch_size": self.patch_stride}
        if self.chunker == "babylon":
            return {"threshold": self.patch_threshold, **sizes}
        if self.chunker == "entropy-model":
            return {"threshold": self.patch_threshold, "path": self.patcher_model, **sizes}
        return sizes

    def main_config(self) -> GPTConfig:
        """The main network's blocks as a Transformer config (context = chunk slots)."""
        return GPTConfig(d_model=self.d_main, n_layers=self.main_layers, n_heads=self.main_heads,
                         context=self.slots, norm_eps=self.norm_eps,
                         dropout=self.dropout, init_std=self.init_std)


@dataclass
class HNetState:
    """Decoding state. ``n``: bytes consumed (all rows in step); ``history`` (B, n) bytes (rule
    chunkers re-run their causal rule on it); ``enc``/``dec``: per byte block caches;
    ``main``: per main block SlotCache; ``chunks`` (B,) long kept chunks per row; ``last``
    (B, d_byte) the smoothed vector of each row's current chunk; ``prev`` (B, d_byte) encoder
    output of the last byte (learned router)."""

    n: int
    history: torch.Tensor
    enc: list
    dec: list
    main: list
    chunks: torch.Tensor
    last: torch.Tensor
    prev: torch.Tensor | None = None
    stats: dict = field(default_factory=dict)


class HNetLM(ByteLM):
    """forward: x (B, T) -> ModelOutput(logits (B, T, 256), aux_loss = ratio loss, stats)."""

    config: HNetConfig

    def __init__(self, config: HNetConfig):
        super().__init__(config)
        c = config
        d, d_ff = c.d_byte, swiglu_hidden(c.d_byte)
        self.embed = nn.Embedding(c.vocab_size, d)
        self.rotary = Rotary(d // c.byte_heads, c.context)
        blk = lambda: ByteBlock(d, c.byte_heads, d_ff, c.byte_mixer, c.window, self.rotary,  # noqa: E731
                                c.norm_eps, c.lambda_min)
        self.encoder = nn.ModuleList(blk() for _ in range(c.enc_layers))
        self.router = Router(d) if c.chunker == "learned" else None
        self.patcher = None
        if c.chunker != "learned":
            from bytelm.patching import get_patcher
            self.patcher = get_patcher(c.chunker, **c.patcher_kwargs())
        mc = c.main_config()
        self.main_rotary = Rotary(c.d_main // c.main_heads, mc.context)
        self.enc_norm = RMSNorm(d, c.norm_eps)
        self.up = nn.Linear(d, c.d_main, bias=False)
        self.main = nn.ModuleList(TransformerBlock(mc, self.main_rotary) for _ in range(c.main_layers))
        self.main_norm = RMSNorm(c.d_main, c.norm_eps)
        self.down = nn.Linear(c.d_main, d, bias=False)
        self.residual = nn.Linear(d, d, bias=False) if c.residual_proj else None
        self.decoder = nn.ModuleList(blk() for _ in range(c.dec_layers))
        self.norm = RMSNorm(d, c.norm_eps)
        self.head = nn.Linear(d, c.vocab_size, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        c = self.config
        std = c.init_std
        n_byte = c.enc_layers + c.dec_layers
        for name, p in self.named_parameters():
            if p.dim() < 2 or name.startswith("router."):
                continue
            if name == "residual.weight":
                nn.init.normal_(p, 0.0, c.residual_std) if c.residual_std else nn.init.zeros_(p)
                continue
            resid = name.endswith((".proj.weight", "mlp.w2.weight"))
            n = c.main_layers if name.startswith("main.") else n_byte
            nn.init.normal_(p, 0.0, std / math.sqrt(2 * n) if resid else std)

    # --- chunking -------------------------------------------------------------------------------
    @torch.compiler.disable
    def rule_boundaries(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T) bool: bytes where the rule chunker's patch ends (causal), byte 0 included."""
        with torch.no_grad():
            b = self.patcher(x).bool()
        b[:, 0] = True
        return b

    def boundaries(self, x: torch.Tensor, h: torch.Tensor):
        """(b (B, T) bool, p (B, T) fp32) for bytes x and encoder output h (B, T, d)."""
        if self.router is None:
            b = self.rule_boundaries(x)
            return b, torch.ones(b.shape, device=h.device)
        p = self.router(h)
        return p >= 0.5, p

    def boundary_flags(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T) bool: kept chunk boundaries of x (B, T) as the model uses them (for views)."""
        with torch.no_grad():
            h = self._encode(self.embed(x.long()))
            b, _ = self.boundaries(x, h)
            return keep_first(b, self.config.slots)[0]

    def patch_ends(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T) bool: True at the last byte of a chunk (the byte before a kept boundary), the
        grouping ``forward(x)`` uses; the row's last byte is not marked (its chunk may go on)."""
        f = self.boundary_flags(x)
        return torch.cat([f[:, 1:], torch.zeros_like(f[:, :1])], 1)

    # --- forward --------------------------------------------------------------------------------
    def _encode(self, h: torch.Tensor) -> torch.Tensor:
        for blk in self.encoder:
            h = blk(h)
        return h

    def forward(self, x: torch.Tensor) -> ModelOutput:
        c = self.config
        B, T = x.shape
        if T > c.context:
            raise ValueError(f"sequence of {T} bytes exceeds the context {c.context}")
        M = c.slots
        h = self._encode(self.embed(x.long()))
        b, p = self.boundaries(x, h)
        kept, before = keep_first(b, M)
        hn = self.enc_norm(h)
        z, pos, valid = gather_chunks(hn, kept, before, M)
        u = self.up(z)
        for blk in self.main:
            u = blk(u)
        y = self.down(self.main_norm(u))  # (B, M, d_byte)
        p_slot = torch.where(valid, p.gather(1, pos), torch.ones_like(pos, dtype=p.dtype))
        if self.router is not None and c.smoothing:
            y = smooth(y, p_slot)
        slot = (before + kept.long() - 1).clamp(0, M - 1)  # (B, T) slot of each byte's chunk
        up = y.gather(1, slot[..., None].expand(B, T, y.shape[-1]))
        if self.router is not None:
            up = up * confidence(p, kept)[..., None].to(up.dtype)
        out = self._decode(self._skip(h, hn) + up)
        aux, stats = 0.0, {"chunk_len": T / kept.sum(1).float().mean().clamp_min(1).detach(),
                           "chunk_overflow": (b & ~kept).float().mean().detach()}
        if self.router is not None:
            aux = c.ratio_weight * ratio_loss(b, p, c.chunk_len)
            stats.update(boundary_rate=b.float().mean().detach(), p_mean=p.mean().detach(),
                         ratio_loss=aux.detach() / c.ratio_weight)
        return ModelOutput(logits=out, aux_loss=aux, stats=stats)

    def _skip(self, h: torch.Tensor, hn: torch.Tensor) -> torch.Tensor:
        """The encoder's path to the decoder: W hn (residual_proj) or h, (B, T, d)."""
        return h if self.residual is None else self.residual(hn)

    def _decode(self, h: torch.Tensor, caches=None, pos: int = 0) -> torch.Tensor:
        for i, blk in enumerate(self.decoder):
            h = blk(h) if caches is None else blk.step(h, caches[i], pos)
        return self.head(self.norm(h)).float()

    # --- generation -----------------------------------------------------------------------------
    def init_state(self, batch_size: int, device=None) -> HNetState:
        c = self.config
        device = device or self.embed.weight.device
        dtype = self.embed.weight.dtype
        mk = lambda blks: [b.init_cache(batch_size, c.context, device, dtype) for b in blks]  # noqa: E731
        dh = c.d_main // c.main_heads
        return HNetState(
            n=0, history=torch.zeros(batch_size, 0, dtype=torch.long, device=device),
            enc=mk(self.encoder), dec=mk(self.decoder),
            main=[SlotCache.empty(batch_size, c.main_heads, c.slots, dh, device, dtype)
                  for _ in self.main],
            chunks=torch.zeros(batch_size, dtype=torch.long, device=device),
            last=torch.zeros(batch_size, c.d_byte, device=device, dtype=dtype))

    def state_capacity(self, state: HNetState) -> int:
        return self.config.context - state.n

    def max_state_bytes(self) -> int:
        """The byte stages' caches hold the context."""
        return self.config.context

    def build_static_decoder(self, batch_size: int, dtype=None, compile: str | None = None,
                             capacity: int | None = None):
        """``static_decode.HNetStaticDecoder`` holding ``capacity`` (default: context) bytes."""
        from bytelm.models.hnet.static_decode import HNetStaticDecoder
        cap = self.config.context if capacity is None else capacity
        return HNetStaticDecoder(self, batch_size, cap, dtype=dtype, compile=compile)

    def step(self, x: torch.Tensor, state: HNetState) -> tuple[torch.Tensor, HNetState]:
        """Feeds x (B, L) after the state's bytes: encoder and decoder over the L bytes at once,
        the main network over each row's new chunks (one batched call; skipped when none)."""
        c = self.config
        B, L = x.shape
        if state.n + L > c.context:
            raise ValueError(f"{state.n + L} bytes exceed the context {c.context}")
        x = x.long()
        h = self.embed(x)
        for blk, cache in zip(self.encoder, state.enc):
            h = blk.step(h, cache, state.n)
        history = torch.cat([state.history, x], 1)
        if self.router is None:
            b = self.rule_boundaries(history)[:, state.n:]
            p = torch.ones(B, L, device=h.device)
        else:
            p = self.router(h, prev=state.prev) if state.n else self.router(h)
            b = p >= 0.5
        kept, before = keep_first(b, c.slots, count0=state.chunks)
        n_new = kept.sum(1)
        hn = self.enc_norm(h)
        y = state.last[:, None]  # (B, 1, d): vector of each row's current chunk before x
        if int(n_new.max()) > 0:  # one host sync per call; generation is eager
            rel = before - state.chunks[:, None]  # new chunks before t, per row
            z, pos, _ = gather_chunks(hn, kept, rel, L)
            u = self.up(z)
            for blk, cache in zip(self.main, state.main):
                u = main_block_step(blk, u, cache, state.chunks, n_new)
            ynew = self.down(self.main_norm(u))  # (B, L, d)
            pslot = p.gather(1, pos)
            if self.router is not None and c.smoothing:
                ynew = smooth_reference(ynew, pslot, state.last)
            y = torch.cat([y, ynew], 1)
            last = y.gather(1, n_new[:, None, None].expand(B, 1, y.shape[-1]))[:, 0]
        else:
            rel, last = torch.zeros_like(before), state.last
        slot = (before - state.chunks[:, None] + kept.long()).clamp_min(0)  # 0: the old chunk
        up = y.gather(1, slot[..., None].expand(B, L, y.shape[-1]))
        logits = self._decode(self._skip(h, hn) + up, state.dec, state.n)
        new = HNetState(n=state.n + L, history=history, enc=state.enc, dec=state.dec, main=state.main,
                        chunks=state.chunks + n_new, last=last,
                        prev=h[:, -1] if self.router is not None else None)
        return logits, new

    # --- accounting -----------------------------------------------------------------------------
    def param_groups(self, weight_decay: float) -> list[dict]:
        """AdamW groups with per-stage learning-rate multipliers (``lr_mult``)."""
        c = self.config
        emb = {id(self.embed.weight)}
        groups = {}
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            main = name.startswith(("main.", "up.", "down.", "main_norm."))
            decay = p.dim() >= 2 and id(p) not in emb and not name.startswith("router.")
            key = (main, decay)
            groups.setdefault(key, []).append(p)
        return [{"params": ps, "weight_decay": weight_decay if decay else 0.0,
                 "lr_mult": c.main_lr_mult if main else c.byte_lr_mult}
                for (main, decay), ps in sorted(groups.items())]

    def stage_params(self) -> dict[str, int]:
        """Parameters per stage: byte (embedding, encoder, router, decoder, head) and main."""
        main = sum(p.numel() for n, p in self.named_parameters()
                   if n.startswith(("main.", "up.", "down.", "main_norm.")))
        return {"byte": self.n_params() - main, "main": main}

    def stage_flops(self, seq_len: int | None = None) -> dict[str, float]:
        """Training FLOPs per byte by stage, at sequence length seq_len (default: context).

        Byte stages: 6 x non-embedding parameters (embedding lookups are free) + each block's
        mixer term. Main: 6 x its parameters + causal attention over the slots, per slot, times
        slots per byte (max_chunks / context: the static shape runs every slot).
        """
        c = self.config
        T = seq_len or c.context
        M = min(c.slots, T)
        sp = self.stage_params()
        byte = 6.0 * (sp["byte"] - self.embed.weight.numel())
        byte += sum(b.mixer_flops(T) for b in list(self.encoder) + list(self.decoder))
        main = (6.0 * sp["main"] + 6.0 * c.main_layers * c.d_main * M) * M / T
        return {"byte": byte, "main": main}

    def flops_per_byte(self, seq_len: int | None = None) -> float:
        return sum(self.stage_flops(seq_len).values())
