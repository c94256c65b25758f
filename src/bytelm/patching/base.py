"""The patcher contract, the shared size options, and ``register_patcher`` (lookup by name is
``bytelm.patching.registry``).

A patcher maps bytes x (B, T) to ends (B, T) bool: ends[b, t] is True iff a patch ends at byte
t. The last byte of a row is not forced to be an end (the stream may continue); a caller that
needs closed patches treats the tail after the last end as one more patch. ends[:, t] depends
only on x[:, :t+1], so a streaming model can close a patch as soon as byte t arrives.
"""
import difflib
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from bytelm.errors import UserError
from bytelm.patching.constrain import constrain_ends, size_limits
from bytelm.patching.utf8 import char_end_mask

_PATCHERS: dict[str, type["Patcher"]] = {}


@dataclass(kw_only=True)
class PatcherConfig:
    """Size limits and the UTF-8 rule, shared by the content-based patchers."""

    min_size: int = 1
    """no patch ends less than min_size bytes after the previous end."""
    max_size: int = 16
    """longest patch in bytes, see ``overflow`` (0: no maximum)."""
    utf8: bool = True
    """never end a patch inside a UTF-8 character (judged causally, see patching/utf8.py)."""
    overflow: str = "reserve"
    """what gives way when a character straddles max_size: reserve | extend | cut (constrain.py)."""

    def __post_init__(self) -> None:
        if self.min_size < 1:
            raise UserError(f"min_size must be >= 1, got {self.min_size}")
        if self.max_size < 0:
            raise UserError(f"max_size must be >= 0 (0: no maximum), got {self.max_size}")
        if self.max_size and self.max_size < self.min_size:
            raise UserError(f"max_size ({self.max_size}) must be >= min_size ({self.min_size})")
        size_limits(self.min_size, self.max_size, self.overflow, self.utf8)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Patcher:
    """Base class: ``__call__(x) -> ends``; subclasses define ``candidates`` (fully vectorised).

    Not an nn.Module on purpose: a model that keeps a patcher as an attribute must not adopt
    the parameters of an entropy model inside it.
    """

    name: str = ""
    config_class: type = PatcherConfig
    config: PatcherConfig
    lookback: int | None = None
    """bytes (t and those before it) that ``candidates`` at t reads; None: all of them.
    ``PatchStream`` decides each new end from this many bytes."""

    def __init__(self, config: PatcherConfig | None = None, **overrides: Any):
        self.config = make_config(self.config_class, config, overrides, self.name)

    def candidates(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """(B, T) long bytes -> (B, T) bool candidate ends, before size limits and UTF-8 rule."""
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Patch ends of x (B, T) (or (T,)), uint8 or integer bytes -> bool of the same shape."""
        xb = as_byte_batch(x)
        ends = self._ends(xb)
        return ends.reshape(x.shape)

    def _ends(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        soft, hard = size_limits(c.min_size, c.max_size, c.overflow, c.utf8)
        allowed = char_end_mask(x) if c.utf8 else None
        return constrain_ends(self.candidates(x), allowed, c.min_size, soft, hard)

    def stream_rule(self) -> tuple[int, int | None, int | None, bool]:
        """(min_size, soft_max, hard_max, utf8): the end rule of ``constrain_ends`` that
        ``_ends`` applies, for ``PatchStream`` to apply one byte at a time."""
        c = self.config
        soft, hard = size_limits(c.min_size, c.max_size, c.overflow, c.utf8)
        return c.min_size, soft, hard, c.utf8

    def last_candidate(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n) bytes -> (B,) bool: the candidate end at the last byte."""
        return self.candidates(x)[:, -1]

    @property
    def max_len(self) -> int | None:
        """Upper bound on the length of every patch (None: unbounded)."""
        c = self.config
        return size_limits(c.min_size, c.max_size, c.overflow, c.utf8)[1]

    def split(self, data: bytes) -> list[bytes]:
        """``data`` cut into its patches (the tail after the last end included)."""
        if not data:
            return []
        ends = self(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        cuts = [0] + (ends.nonzero().flatten() + 1).tolist()
        if cuts[-1] != len(data):
            cuts.append(len(data))
        return [data[a:b] for a, b in zip(cuts, cuts[1:])]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"


def as_byte_batch(x: torch.Tensor) -> torch.Tensor:
    """x (B, T) or (T,) of integer bytes -> (B, T) long; anything else is a ValueError."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a tensor of bytes, got {type(x).__name__}")
    if x.dtype == torch.bool or x.is_floating_point() or x.is_complex():
        raise ValueError(f"expected integer bytes (uint8 or long), got dtype {x.dtype}")
    if x.dim() not in (1, 2):
        raise ValueError(f"expected bytes of shape (B, T) or (T,), got {tuple(x.shape)}")
    x = x.long().unsqueeze(0) if x.dim() == 1 else x.long()
    if x.numel() and (x.min() < 0 or x.max() > 255):
        raise ValueError("byte values must be in 0..255")
    return x


def make_config(cls: type, config: Any, overrides: dict[str, Any], what: str):
    """``config`` (or the defaults of ``cls``) with ``overrides``; unknown keys are a UserError."""
    names = sorted(f.name for f in fields(cls) if f.init)
    for k in overrides:
        if k not in names:
            close = difflib.get_close_matches(k, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(names)}"
            raise UserError(f"unknown option {k!r} for patcher {what!r}{hint}")
    if config is None:
        return cls(**overrides)
    if not isinstance(config, cls):
        raise TypeError(f"patcher {what!r} takes a {cls.__name__}, got {type(config).__name__}")
    return cls(**{**asdict(config), **overrides}) if overrides else config


def register_patcher(cls: type["Patcher"]) -> type["Patcher"]:
    """Class decorator: makes ``cls`` available to ``bytelm.patching.get_patcher(cls.name)``."""
    _PATCHERS[cls.name] = cls
    return cls
