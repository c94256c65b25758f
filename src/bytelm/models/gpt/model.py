"""Byte-level GPT: the Transformer baseline every other family is measured against.

Pre-norm blocks of RMSNorm -> causal attention (RoPE, SDPA/flash) -> RMSNorm -> SwiGLU, with
untied byte embedding and output head (the vocabulary is 256, so tying saves nothing).
"""
import math
from dataclasses import dataclass

import torch
from torch import nn

from bytelm.errors import UserError
from bytelm.models.base import ByteLM, ModelConfig, ModelOutput
from bytelm.nn import CausalSelfAttention, KVCache, RMSNorm, Rotary, SwiGLU
from bytelm.nn.mlp import swiglu_hidden


@dataclass(kw_only=True)
class GPTConfig(ModelConfig):
    """Transformer baseline hyperparameters."""

    family: str = "gpt"
    """registry name of the family."""
    d_model: int = 512
    """width of the residual stream."""
    n_layers: int = 8
    """number of Transformer blocks."""
    n_heads: int = 8
    """attention heads per block (d_head = d_model / n_heads)."""
    d_ff: int = 0
    """SwiGLU hidden size; 0 picks 8/3 * d_model rounded up to a multiple of 64."""
    rope_base: float = 10000.0
    """rotary frequency base."""
    norm_eps: float = 1e-6
    """RMSNorm epsilon."""
    dropout: float = 0.0
    """dropout on each residual branch's output during training (0: off)."""
    init_std: float = 0.02
    """std of the normal init; residual output projections get init_std / sqrt(2 * n_layers)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("d_model", "n_layers", "n_heads"):
            if getattr(self, name) < 1:
                raise UserError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise UserError(f"model.d_model={self.d_model} must split into n_heads={self.n_heads} "
                            "heads of even size")
        if not 0 <= self.dropout < 1:
            raise UserError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.d_ff == 0:
            self.d_ff = swiglu_hidden(self.d_model)


class Block(nn.Module):
    """x + attn(norm(x)), then x + mlp(norm(x)); (B, T, D) -> (B, T, D)."""

    def __init__(self, cfg: GPTConfig, rotary: Rotary):
        super().__init__()
        self.norm1 = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn = CausalSelfAttention(cfg.d_model, cfg.n_heads, rotary)
        self.norm2 = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = SwiGLU(cfg.d_model, cfg.d_ff)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), cache))
        return x + self.drop(self.mlp(self.norm2(x)))


class GPT(ByteLM):
    """Byte GPT. forward: x (B, T) -> logits (B, T, 256)."""

    config: GPTConfig

    def __init__(self, config: GPTConfig):
        super().__init__(config)
        c = config
        self.embed = nn.Embedding(c.vocab_size, c.d_model)
        # one rotary table shared by all layers (not a parameter, not saved)
        self.rotary = Rotary(c.d_model // c.n_heads, c.context, c.rope_base)
        self.blocks = nn.ModuleList(Block(c, self.rotary) for _ in range(c.n_layers))
        self.norm = RMSNorm(c.d_model, c.norm_eps)
        self.head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        std = self.config.init_std
        resid_std = std / math.sqrt(2 * self.config.n_layers)
        for name, p in self.named_parameters():
            if p.dim() < 2:
                continue
            # residual-branch outputs are scaled down so the stream's variance stays O(1) with depth
            is_resid = name.endswith("attn.proj.weight") or name.endswith("mlp.w2.weight")
            nn.init.normal_(p, 0.0, resid_std if is_resid else std)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        if x.shape[1] > self.config.context:
            raise ValueError(f"sequence of {x.shape[1]} bytes exceeds the context {self.config.context}")
        h = self.embed(x.long())
        for blk in self.blocks:
            h = blk(h)
        return ModelOutput(logits=self.head(self.norm(h)))

    def init_state(self, batch_size: int, device=None) -> list[KVCache]:
        c = self.config
        device = device or self.embed.weight.device
        dtype = self.embed.weight.dtype
        return [KVCache.empty(batch_size, c.n_heads, c.context, c.d_model // c.n_heads, device, dtype)
                for _ in range(c.n_layers)]

    def step(self, x: torch.Tensor, state: list[KVCache]) -> tuple[torch.Tensor, list[KVCache]]:
        h = self.embed(x.long())
        for blk, cache in zip(self.blocks, state):
            h = blk(h, cache)
        return self.head(self.norm(h)), state

    def state_capacity(self, state: list[KVCache]) -> int:
        return state[0].capacity - state[0].length

    def max_state_bytes(self) -> int:
        """The KV cache holds the context."""
        return self.config.context

    def build_static_decoder(self, batch_size: int, dtype=None, compile: str | None = None,
                             capacity: int | None = None):
        """``static_decode.GPTStaticDecoder`` holding ``capacity`` (default: context) bytes."""
        from bytelm.models.gpt.static_decode import GPTStaticDecoder
        cap = min(capacity or self.config.context, self.config.context)
        return GPTStaticDecoder(self, batch_size, cap, dtype=dtype, compile=compile)

    def flops_per_byte(self, seq_len: int | None = None) -> float:
        """6 * (non-embedding params) + causal attention: 6 * n_layers * d_model * T / ... per byte.

        Attention scores and the weighted sum cost 4 * T * d per byte forward over the full square;
        causal attention needs half of it (what flash attention computes), times 3 for fwd + bwd.
        """
        c = self.config
        T = seq_len or c.context
        return 6.0 * self.n_params(non_embedding=True) + 6.0 * c.n_layers * c.d_model * T
