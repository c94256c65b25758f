"""The contract every byte-level model family implements."""
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

VOCAB_SIZE = 256
# 16 MiB: far beyond any context trained here (64K), far below what exhausts memory at once
MAX_CONTEXT = 1 << 24


@dataclass(kw_only=True)
class ModelConfig:
    """Fields shared by every family; a family's config subclasses this."""

    family: str = ""
    """registry name of the model family (set by the subclass)."""
    vocab_size: int = VOCAB_SIZE
    """always 256: one symbol per byte value."""
    context: int = 1024
    """longest sequence (bytes) the model is trained on and can attend to."""

    def __post_init__(self) -> None:
        from bytelm.errors import UserError
        if self.vocab_size != VOCAB_SIZE:
            raise UserError(f"vocab_size must be {VOCAB_SIZE} for a byte model, got {self.vocab_size}")
        _check_field_types(self)
        if not 2 <= self.context <= MAX_CONTEXT:
            raise UserError(f"model.context must be in [2, {MAX_CONTEXT:,}], got {self.context}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_field_types(cfg) -> None:
    """UserError when a field holds a value of the wrong type (a config.json or TOML written by
    hand: ``n_layers: 2.7``, ``d_model: "64"``); ints are accepted where floats are expected."""
    import math
    import typing
    from dataclasses import fields

    from bytelm.errors import UserError
    hints = typing.get_type_hints(type(cfg))
    for f in fields(cfg):
        tp, v = hints.get(f.name), getattr(cfg, f.name)
        if tp is int and (isinstance(v, bool) or not isinstance(v, int)):
            raise UserError(f"model.{f.name} must be an integer, got {v!r}")
        if tp is float and (isinstance(v, bool) or not isinstance(v, (int, float))
                            or not math.isfinite(v)):
            raise UserError(f"model.{f.name} must be a finite number, got {v!r}")
        if tp is bool and not isinstance(v, bool):
            raise UserError(f"model.{f.name} must be true or false, got {v!r}")


@dataclass
class ModelOutput:
    """What ``ByteLM.forward`` returns.

    logits: (B, T, 256); logits[:, i] is the distribution of byte i+1 given bytes 0..i.
    aux_loss: scalar added to the training loss (e.g. ACT ponder cost); 0 when none.
    stats: scalar diagnostics (tensors or floats) for logging.
    """

    logits: torch.Tensor
    aux_loss: torch.Tensor | float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)


class ByteLM(nn.Module):
    """Base class: a causal next-byte model.

    Subclasses implement ``forward``, ``init_state``, ``step`` and ``flops_per_byte``.
    """

    config: ModelConfig

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config

    # --- the contract ---------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> ModelOutput:  # pragma: no cover - abstract
        """x (B, T) byte ids -> ModelOutput with logits (B, T, 256)."""
        raise NotImplementedError

    def init_state(self, batch_size: int, device=None) -> Any:  # pragma: no cover - abstract
        """An empty decoding state (caches) for ``step``."""
        raise NotImplementedError

    def step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:  # pragma: no cover
        """Feeds the next L bytes x (B, L) after those already in ``state``.

        Returns (logits (B, L, 256), new state); equal to the matching rows of ``forward``
        on the whole prefix.
        """
        raise NotImplementedError

    def state_capacity(self, state: Any) -> int | None:
        """How many more bytes ``state`` can take (None: unbounded)."""
        return None

    def max_state_bytes(self) -> int | None:
        """The most bytes a fresh state can take (None: unbounded)."""
        return None

    def build_static_decoder(self, batch_size: int, dtype: torch.dtype | None = None,
                             compile: str | None = None, capacity: int | None = None):
        """A fixed-shape decoder (``bytelm.nn.static_decoder``: prefill, step, capacity) for
        ``batch_size`` streams, equal to ``step``; None when the family has none.

        Args:
            dtype: dtype of cached keys/values (the dtype under the caller's autocast).
            compile: None (eager) or a ``torch.compile`` mode ("reduce-overhead": CUDA graphs).
            capacity: bytes per stream the decoder must hold (prompt + new bytes); a bounded
                cache may be sized to it instead of the context (None: the context).
        """
        return None

    @property
    def has_static_decoder(self) -> bool:
        """Whether the family implements ``build_static_decoder``."""
        return type(self).build_static_decoder is not ByteLM.build_static_decoder

    def static_decoder(self, batch_size: int, dtype: torch.dtype | None = None,
                       compile: str | None = None, capacity: int | None = None):
        """``build_static_decoder``, reused for the same arguments (``prefill`` resets it), so
        repeated generations compile once; ``drop_static_decoders`` frees them."""
        cache = self.__dict__.setdefault("_static_decoders", {})  # not a submodule: never saved
        key = (batch_size, dtype, compile, capacity, next(self.parameters()).device)
        if key not in cache:
            dec = self.build_static_decoder(batch_size, dtype=dtype, compile=compile,
                                            capacity=capacity)
            if dec is None:
                return None
            cache[key] = dec
        return cache[key]

    def drop_static_decoders(self) -> None:
        """Frees the buffers of every decoder ``static_decoder`` kept."""
        self.__dict__.pop("_static_decoders", None)

    def flops_per_byte(self, seq_len: int | None = None) -> float:  # pragma: no cover
        """Training FLOPs (forward + backward) per byte at sequence length seq_len."""
        raise NotImplementedError

    def patch_ends(self, x: torch.Tensor) -> torch.Tensor | None:
        """Where this model's own forward on x (B, T) closes a patch or chunk.

        Returns (B, T) bool, True at byte t when a patch ends at t, exactly as ``forward(x)``
        groups the bytes; None for a model without patches (the default). Patching and chunking
        families override it; ``bytelm serve`` draws it.
        """
        return None

    # --- shared helpers ------------------------------------------------------------------
    @property
    def context(self) -> int:
        return self.config.context

    def n_params(self, non_embedding: bool = False) -> int:
        """Exact number of parameters (optionally excluding embedding tables)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Embedding))
        return n

    def param_groups(self, weight_decay: float) -> list[dict]:
        """AdamW groups: decay on matrices of linear layers; none on norms, biases, embeddings."""
        emb = {id(m.weight) for m in self.modules() if isinstance(m, nn.Embedding)}
        decay, no_decay = [], []
        for p in self.parameters():
            if not p.requires_grad:
                continue
            (decay if p.dim() >= 2 and id(p) not in emb else no_decay).append(p)
        return [{"params": decay, "weight_decay": weight_decay},
                {"params": no_decay, "weight_decay": 0.0}]

    def save(self, path) -> None:
        """Writes ``config.json`` + ``model.safetensors`` into directory ``path`` (atomically)."""
        from bytelm.io import save_model
        save_model(self, path)
