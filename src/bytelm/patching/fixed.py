"""Fixed-stride patches: ends at t = P-1, 2P-1, ... (the ablation baseline)."""
from dataclasses import asdict, dataclass

import torch

from bytelm.errors import UserError
from bytelm.patching.base import Patcher, register_patcher
from bytelm.patching.constrain import MAX_CHAR_BYTES, constrain_ends
from bytelm.patching.utf8 import char_end_mask


@dataclass(kw_only=True)
class FixedConfig:
    """A fixed stride, optionally moved forward to the next character boundary."""

    patch_size: int = 4
    """stride P in bytes."""
    utf8: bool = False
    """end each patch at the first character boundary at least patch_size bytes in (so patches
    are P..P+3 bytes and the grid drifts); off by default, as fixed stride is for ablations."""

    def __post_init__(self) -> None:
        if self.patch_size < 1:
            raise UserError(f"patch_size must be >= 1, got {self.patch_size}")

    def to_dict(self) -> dict:
        return asdict(self)


@register_patcher
class FixedPatcher(Patcher):
    """ends[t] = (t + 1) % P == 0; with utf8, the first character boundary >= P bytes in."""

    name = "fixed"
    config_class = FixedConfig
    config: FixedConfig

    def candidates(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.arange(x.shape[1], device=x.device)
        return ((t + 1) % self.config.patch_size == 0).expand(x.shape)

    def _ends(self, x: torch.Tensor) -> torch.Tensor:
        P = self.config.patch_size
        if not self.config.utf8:
            return self.candidates(x).clone()
        return constrain_ends(torch.zeros_like(x, dtype=torch.bool), char_end_mask(x), P,
                              soft_max=P, hard_max=P + MAX_CHAR_BYTES - 1)

    lookback = 1

    def stream_rule(self) -> tuple[int, int | None, int | None, bool]:
        """Every end is forced: P bytes after the previous one (utf8: the first character
        boundary from there, cut at P + 3)."""
        P = self.config.patch_size
        if not self.config.utf8:
            return P, P, P, False
        return P, P, P + MAX_CHAR_BYTES - 1, True

    def last_candidate(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)

    @property
    def max_len(self) -> int:
        return self.config.patch_size + (MAX_CHAR_BYTES - 1 if self.config.utf8 else 0)
