"""BSFIN: entropy-patched bytes -> local patch encoder -> complex interference stack over
patches -> local byte decoder that cross-attends to closed patches only.

Causality: the patcher decides "a patch ends at t" from bytes <= t; a patch vector depends on
its own bytes and (through the causal complex stack) on earlier patches; the decoder at byte t
(which predicts byte t+1) reads patches whose last byte is <= t, plus an always-visible null
memory. The number of patch slots is fixed by T (ceil(T / min_patch)) so that changing future
bytes never changes the shapes the past is computed with (bit-exact causality in fp32).
"""
import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from bytelm.errors import UserError
from bytelm.models.base import ByteLM, ModelConfig, ModelOutput
from bytelm.models.bsfin.interference import (ComplexLinear, ComplexPositionalEncoding,
                                              ComplexRMSNorm, InterferenceLayer)
from bytelm.models.bsfin.local import DecoderLayer, HashedByteEmbedding, PatchEncoder
from bytelm.nn import KVCache, RMSNorm, Rotary


@dataclass(kw_only=True)
class BsfinConfig(ModelConfig):
    """BSFIN hyperparameters (README defaults: local 256, complex 512, 6 layers, 8 heads, memory 768)."""

    legacy_defaults: ClassVar[dict] = {"qk_norm": False, "mem_norm": False}
    """values of fields a stored config lacks (checkpoints saved before qk_norm and mem_norm
    existed were trained without them; the defaults are on since the H100 runs of
    benchmarks/results/equal_time_30m/bsfin_{en,tr}_babylon_qkmem.json)."""

    family: str = "bsfin"
    """registry name of the family."""
    d_local: int = 256
    """width of the byte-level encoder and decoder."""
    d_model: int = 512
    """complex dimension of the interference stack (each of real and imaginary parts)."""
    n_layers: int = 6
    """interference layers."""
    n_heads: int = 8
    """heads of every attention."""
    d_memory: int = 768
    """width of the real patch memory after complex -> real."""
    ngrams: tuple[int, int] = (3, 4)
    """n-gram sizes of the hashed embeddings."""
    hash_buckets: int = 16384
    """buckets per n-gram table."""
    encoder_layers: int = 1
    """Transformer layers inside each patch."""
    decoder_layers: int = 4
    """local decoder layers."""
    scores: str = "quantum"
    """'quantum' signed Re(Q K^H), 'magnitude' |Q K^H|, or 'classical' Re(Q).Re(K)."""
    to_real: str = "concat"
    """complex -> real: 'concat' [Re; Im] or 'magnitude' |z|."""
    patcher: str = "babylon"
    """patch boundaries: babylon | entropy-model | fixed | space (bytelm.patching)."""
    patch_window: int = 16
    """babylon: entropy window in bytes."""
    patch_threshold: float = 0.1
    """babylon: entropy rise in bits; entropy-model: next-byte entropy threshold in bits."""
    min_patch: int = 2
    """smallest patch (bytes)."""
    max_patch: int = 16
    """largest patch (bytes)."""
    patch_stride: int = 4
    """fixed patcher stride (must be >= min_patch)."""
    patcher_model: str = ""
    """entropy-model: checkpoint path of the small byte LM."""
    dropout: float = 0.0
    """dropout on residual branches of the complex stack."""
    qk_norm: bool = True
    """complex RMS norm of the queries and keys of the interference attention (after RoPE,
    phases and head mixing): bounds its logits by |g_q| |g_k| sqrt(d_head / 2)."""
    mem_norm: bool = True
    """RMSNorm of the patch memories (after mem_proj) before the decoder's cross-attention
    reads them as keys and values: without it their scale is a product of two free matrices
    (to_real, mem_proj) and can flood the decoder's residual stream. Both on by default: in
    English on the H100, without them bsfin-35m collapsed at step 650 (train bpb 1.97 -> 4.73)
    and ended at test 2.010; with them it trained smoothly to 1.555
    (benchmarks/results/equal_time_30m/bsfin_en_babylon{,_qkmem}.json)."""
    norm_eps: float = 1e-6
    """norm epsilon."""
    init_std: float = 0.02
    """std of the normal init of matrices."""

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = [(self.d_model % self.n_heads == 0, "model.d_model must be divisible by n_heads"),
                  (self.d_local % self.n_heads == 0 and (self.d_local // self.n_heads) % 2 == 0,
                   "model.d_local must split into n_heads heads of even size"),
                  (self.scores in ("quantum", "magnitude", "classical"),
                   "model.scores must be quantum, magnitude or classical"),
                  (self.to_real in ("concat", "magnitude"), "model.to_real must be concat or magnitude"),
                  (1 <= self.min_patch <= self.max_patch, "need 1 <= model.min_patch <= model.max_patch"),
                  (self.patcher != "fixed" or 1 <= self.patch_stride <= self.max_patch,
                   "need 1 <= model.patch_stride <= model.max_patch"),
                  (self.hash_buckets >= 1, "model.hash_buckets must be >= 1"),
                  (self.n_layers >= 1 and self.decoder_layers >= 1, "layers must be >= 1")]
        for ok, msg in checks:
            if not ok:
                raise UserError(msg)

    def patcher_kwargs(self) -> dict:
        """Options of ``bytelm.patching.get_patcher(self.patcher, ...)``."""
        sizes = {"min_size": self.min_patch, "max_size": self.max_patch}
        if self.patcher == "babylon":
            return {"window": self.patch_window, "threshold": self.patch_threshold, **sizes}
        if self.patcher == "entropy-model":
            if not self.patcher_model:
                raise UserError("model.patcher=entropy-model needs model.patcher_model=CKPT")
            return {"threshold": self.patch_threshold, "path": self.patcher_model, **sizes}
        if self.patcher == "fixed":
            return {"patch_size": self.patch_stride}
        return sizes


def pack_patches(ends: torch.Tensor, n_slots: int, max_len: int):
    """Where each byte goes in a (B, n_slots, max_len) patch grid.

    Args:
        ends: (B, T) bool, True at the last byte of a patch.
    Returns:
        pid (B, T) patch index of every byte, offset (B, T) position inside its patch,
        closed (B, T) bool (the byte's patch has ended), end_pos (B, n_slots) last byte of each
        slot (T for slots with no closed patch).
    """
    B, T = ends.shape
    e = ends.long()
    pid = e.cumsum(1) - e  # number of ends strictly before t
    t = torch.arange(T, device=ends.device).expand(B, T)
    prev_end = torch.nn.functional.pad(ends[:, :-1], (1, 0))
    start = torch.where(prev_end, t, torch.zeros_like(t)).cummax(1).values
    offset = t - start
    n_closed = e.sum(1, keepdim=True)
    closed = pid < n_closed
    end_pos = torch.full((B, n_slots + 1), T, device=ends.device, dtype=torch.long)
    end_pos.scatter_(1, torch.where(ends, pid, torch.full_like(pid, n_slots)), t)
    end_pos = end_pos[:, :n_slots]
    return pid, offset.clamp_max(max_len - 1), closed, end_pos


@dataclass
class BsfinState:
    """Decoding state: byte history, decoder KV caches, closed patches and their memories."""

    history: torch.Tensor  # (B, n) bytes so far
    dec: list  # per decoder layer KVCache
    mem: list = field(default_factory=list)  # per row: (m, d_local) memories of closed patches
    rows: list = field(default_factory=list)  # per row: {"start": first byte of open patch, "layers": [..]}


class BsfinLM(ByteLM):
    """forward: x (B, T) -> ModelOutput(logits (B, T, 256), stats: patches per row, mean length)."""

    config: BsfinConfig
    def __init__(self, config: BsfinConfig):
        super().__init__(config)
        c = config
        from bytelm.patching import get_patcher
        self.patcher = get_patcher(c.patcher, **c.patcher_kwargs())
        self.embed = HashedByteEmbedding(c.d_local, c.ngrams, c.hash_buckets)
        self.encoder = PatchEncoder(c.d_local, c.n_heads, c.encoder_layers, c.max_patch, c.norm_eps)
        self.to_complex = ComplexLinear(c.d_local, c.d_model)
        self.pos = ComplexPositionalEncoding(c.d_model)
        self.layers = nn.ModuleList(InterferenceLayer(c.d_model, c.n_heads, c.scores, c.dropout,
                                                      c.norm_eps, c.qk_norm) for _ in range(c.n_layers))
        self.cnorm = ComplexRMSNorm(c.d_model, c.norm_eps)
        self.to_real = nn.Linear(2 * c.d_model if c.to_real == "concat" else c.d_model, c.d_memory)
        self.mem_proj = nn.Linear(c.d_memory, c.d_local, bias=False)
        self.mem_norm = RMSNorm(c.d_local, c.norm_eps) if c.mem_norm else None
        self.null = nn.Parameter(torch.zeros(c.d_local))
        self.rotary = Rotary(c.d_local // c.n_heads, c.context)
        self.decoder = nn.ModuleList(DecoderLayer(c.d_local, c.n_heads, self.rotary, c.norm_eps)
                                     for _ in range(c.decoder_layers))
        self.norm = RMSNorm(c.d_local, c.norm_eps)
        self.head = nn.Linear(c.d_local, 256, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for name, p in self.named_parameters():
            if p.dim() >= 2 and not name.endswith("attn.mix"):
                nn.init.normal_(p, 0.0, self.config.init_std)

    # The patcher runs eagerly inside a compiled model (one graph break): Inductor (torch 2.11,
    # CUDA) fails on its clamped index arithmetic with "InductorError: ValueError: The argument
    # '((0)) + 1' is not comparable" (benchmarks/results/compile/compile_probe_bsfin_h100.json; with
    # this break it compiles: compile/compile_probe_bsfin_fix_h100.json). Integer work under no_grad.
    @torch.compiler.disable
    def boundaries(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T) bool: True where a patch ends (causal)."""
        with torch.no_grad():
            return self.patcher(x).bool()

    def patch_ends(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T) bool: the patcher's boundaries, the ones ``forward(x)`` uses."""
        return self.boundaries(x)

    def _complex_to_memory(self, r, i):
        r, i = self.cnorm(r, i)
        z = torch.cat([r, i], -1) if self.config.to_real == "concat" else torch.sqrt(
            r.float() ** 2 + i.float() ** 2 + 1e-6).to(r.dtype)
        mem = self.mem_proj(self.to_real(z))
        return self.mem_norm(mem) if self.mem_norm is not None else mem

    def patch_memories(self, e: torch.Tensor, ends: torch.Tensor, n_slots: int):
        """Memories (B, n_slots, d_local) and last-byte positions (B, n_slots) of the patches."""
        c = self.config
        B, T, d = e.shape
        pid, offset, closed, end_pos = pack_patches(ends, n_slots, c.max_patch)
        grid = e.new_zeros(B, n_slots + 1, c.max_patch, d)
        mask = torch.zeros(B, n_slots + 1, c.max_patch, dtype=torch.bool, device=e.device)
        slot = torch.where(closed, pid, torch.full_like(pid, n_slots)).clamp_max(n_slots)
        b_idx = torch.arange(B, device=e.device)[:, None].expand(B, T)
        grid = grid.index_put((b_idx, slot, offset), e)
        mask = mask.index_put((b_idx, slot, offset), closed)
        vec = self.encoder(grid[:, :n_slots], mask[:, :n_slots])  # (B, n_slots, d_local)
        r, i = self.pos(*self.to_complex(vec, torch.zeros_like(vec)))
        for layer in self.layers:
            r, i = layer(r, i)
        return self._complex_to_memory(r, i), end_pos

    def _decode(self, e, mem, end_pos, caches=None, start: int = 0):
        """Byte decoder. e (B, L, d) bytes start..start+L-1; mem (B, M, d), end_pos (B, M)."""
        B, L, _ = e.shape
        mem = torch.cat([self.null.to(mem.dtype).expand(B, 1, -1), mem], 1)
        ends = torch.cat([torch.full((B, 1), -1, dtype=end_pos.dtype, device=e.device), end_pos], 1)
        t = torch.arange(start, start + L, device=e.device)
        visible = ends[:, None, :] <= t[None, :, None]  # (B, L, M+1)
        h = e
        for i, layer in enumerate(self.decoder):
            k, v = layer.memory_kv(mem)
            h = layer(h, k, v, visible, caches[i] if caches is not None else None)
        return self.head(self.norm(h))

    def forward(self, x: torch.Tensor) -> ModelOutput:
        B, T = x.shape
        c = self.config
        if T > c.context:
            raise ValueError(f"sequence of {T} bytes exceeds the context {c.context}")
        ends = self.boundaries(x)
        n_slots = self.n_slots(T)
        e = self.embed(x)
        mem, end_pos = self.patch_memories(e, ends, n_slots)
        logits = self._decode(e, mem, end_pos)
        n_patches = ends.float().sum(1)
        stats = {"patches_per_row": n_patches.mean(),
                 "mean_patch_len": (T / n_patches.clamp_min(1)).mean()}
        return ModelOutput(logits=logits.float(), stats=stats)

    # --- generation ---------------------------------------------------------------------------
    def init_state(self, batch_size: int, device=None, dec: list | None = None) -> BsfinState:
        """An empty state; dec: the decoder's KV caches (default: new ones holding the context)."""
        device = device or self.head.weight.device
        c = self.config
        if dec is None:
            dec = [KVCache.empty(batch_size, c.n_heads, c.context, c.d_local // c.n_heads,
                                 device, self.head.weight.dtype) for _ in range(c.decoder_layers)]
        return BsfinState(history=torch.zeros(batch_size, 0, dtype=torch.long, device=device),
                          dec=dec,
                          mem=[torch.zeros(0, c.d_local, device=device) for _ in range(batch_size)],
                          rows=[{"start": 0, "ends": [], "layers": [{} for _ in range(c.n_layers)]}
                                for _ in range(batch_size)])

    def state_capacity(self, state: BsfinState) -> int:
        """Bytes the decoder's KV caches still hold (they are sized to the context)."""
        return self.config.context - state.history.shape[1]

    def max_state_bytes(self) -> int:
        """The decoder's KV caches hold the context."""
        return self.config.context

    def _close_patches(self, state: BsfinState, b: int, ends: list[int]) -> None:
        """Row b's patches ending at bytes ``ends`` (ascending) close: encode them together, run
        the complex stack over the new positions at once (its caches grow by len(ends)), and
        keep their memories."""
        c, row = self.config, state.rows[b]
        starts = [row["start"]] + [t + 1 for t in ends[:-1]]
        # the n-gram hashes of a patch's first bytes read up to max(ngrams) - 1 bytes before it
        lo = max(0, row["start"] - max(c.ngrams) + 1)
        e = self.embed(state.history[b:b + 1, lo:ends[-1] + 1])[0]  # (n_bytes, d)
        n = len(ends)
        grid = e.new_zeros(1, n, c.max_patch, e.shape[-1])
        mask = torch.zeros(1, n, c.max_patch, dtype=torch.bool, device=e.device)
        for j, (s0, t) in enumerate(zip(starts, ends)):
            grid[0, j, :t + 1 - s0] = e[s0 - lo:t + 1 - lo]
            mask[0, j, :t + 1 - s0] = True
        vec = self.encoder(grid, mask)  # (1, n, d)
        pos = len(row["ends"])
        r, i = self.pos(*self.to_complex(vec, torch.zeros_like(vec)), start=pos)
        for layer, cache in zip(self.layers, row["layers"]):
            r, i = layer.step(r, i, cache, pos)
        state.mem[b] = torch.cat([state.mem[b], self._complex_to_memory(r, i)[0]], 0)
        row["ends"].extend(ends)
        row["start"] = ends[-1] + 1

    def step(self, x: torch.Tensor, state: BsfinState):
        """Feeds x (B, L) at once: one patcher call, the patches that close in x encoded together,
        one decoder pass over the L bytes (a prompt is a single step, not L of them)."""
        B, L = x.shape
        t0 = state.history.shape[1]
        state.history = torch.cat([state.history, x.long()], 1)
        # the patcher is causal: boundaries before t0 are the ones already acted on
        new_ends = self.boundaries(state.history)[:, t0:].cpu()  # one host sync per call
        for b in range(B):
            ends = (t0 + new_ends[b].nonzero().flatten()).tolist()
            if ends:
                self._close_patches(state, b, ends)
        M = max(m.shape[0] for m in state.mem)
        mem = self.null.new_zeros(B, M, self.config.d_local)
        # empty slots end after every new byte: never visible
        end_pos = torch.full((B, M), t0 + L, dtype=torch.long, device=x.device)
        for b in range(B):
            n = state.mem[b].shape[0]
            mem[b, :n] = state.mem[b]
            end_pos[b, :n] = torch.tensor(state.rows[b]["ends"], device=x.device)
        lo = max(0, t0 - max(self.config.ngrams) + 1)
        e = self.embed(state.history[:, lo:])[:, -L:]
        return self._decode(e, mem, end_pos, state.dec, start=t0).float(), state

    def build_static_decoder(self, batch_size: int, dtype=None, compile: str | None = None,
                             capacity: int | None = None):
        """``static_decode.BsfinStaticDecoder`` holding ``capacity`` (default: context) bytes."""
        from bytelm.models.bsfin.static_decode import BsfinStaticDecoder
        cap = min(capacity or self.config.context, self.config.context)
        return BsfinStaticDecoder(self, batch_size, cap, dtype=dtype, compile=compile)

    def n_slots(self, seq_len: int) -> int:
        """Patch slots of a row of seq_len bytes: ceil(T / shortest patch), fixed by T so that
        the shapes never depend on where patches end (see the module docstring)."""
        c = self.config
        shortest = c.patch_stride if c.patcher == "fixed" else c.min_patch
        return max(1, math.ceil(seq_len / shortest))

    def flops_per_byte(self, seq_len: int | None = None) -> float:
        """Training FLOPs per byte (forward + backward = 3 x forward) of the matrix multiplies
        the forward runs at sequence length T (default: context). Its shapes depend on T only,
        never on where patches end, so this is exact up to norms and biases (counted as
        parameters) and the head mixing (not counted, < 0.5%); embedding lookups are free.
        With S = ``n_slots(T)`` (T / min_patch) slots of max_patch bytes each:
        - the patch encoder runs on the whole S x max_patch grid, padding included (8 grid
          positions per byte at min_patch 2, max_patch 16): 6 x its parameters per grid
          position (its output projection per slot), attention over the max_patch positions
          of a slot and the pooling query over them, dense (the padding mask is the data's);
        - the complex stack runs on all S slots (not only the ~T / 4.5 real patches). A
          complex linear map (A + iB) is four real products: 12 x its 2nm parameters fwd +
          bwd (to_complex too, whose zero imaginary input is multiplied all the same).
          Causal attention over the slots, half the square as for the Transformer (the whole
          square for scores other than 'quantum', computed by explicit matmuls);
        - to_real, mem_proj and the decoder's memory keys/values per slot (S + 1 with the null
          memory); the rest of the decoder and the head per byte; the decoder's causal
          self-attention at half the square, its cross-attention to all S + 1 memories dense
          (which patches a byte may read depends on the data).
        Measured against FlopCounterMode in tests/models/test_flops.py. The padded grid is
        most of the encoder's cost: an encoder over the T real bytes would need 1/8 of it."""
        c = self.config
        T = seq_len or c.context
        S, Lp, d, D = self.n_slots(T), c.max_patch, c.d_local, c.d_model
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        enc = self.encoder
        grid = count(enc) - count(enc.out) - enc.query.numel()  # at each grid position
        kv = sum(count(layer.kv) for layer in self.decoder)  # at each memory
        slot = (count(enc.out) + 2 * count(self.to_complex) + 2 * count(self.layers)
                + count(self.to_real) + count(self.mem_proj)
                + (count(self.mem_norm) if self.mem_norm is not None else 0))
        byte = count(self.decoder) - kv + count(self.norm) + count(self.head)
        params = grid * S * Lp + slot * S + kv * (S + 1) + byte * T
        # forward FLOPs of attention over a row: 2 x queries x keys x (q.k width + v width)
        width = {"quantum": 4 * D, "magnitude": 6 * D, "classical": 3 * D}[c.scores]
        # the complex stack: causal half through SDPA ('quantum'); the other scores are
        # explicit matmuls over the whole square, masked afterwards
        keys = S / 2 if c.scores == "quantum" else S
        attn = (c.encoder_layers * 2 * S * Lp * Lp * 2 * d  # inside each slot, dense
                + 2 * S * Lp * 2 * d  # pooling query
                + c.n_layers * 2 * S * keys * width  # complex stack
                + c.decoder_layers * (2 * T * (T / 2) * 2 * d  # self-attention, causal half
                                      + 2 * T * (S + 1) * 2 * d))  # cross-attention, dense
        return (6.0 * params + 3.0 * attn) / T
