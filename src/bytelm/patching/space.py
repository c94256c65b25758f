"""SpaceByte-style patches: a patch ends after whitespace or ASCII punctuation, so the next patch
starts with the character after it (a word, usually)."""
import string
from dataclasses import dataclass

import torch

from bytelm.patching.base import Patcher, PatcherConfig, register_patcher

SPACELIKE = (string.whitespace + string.punctuation).encode("ascii")


@dataclass(kw_only=True)
class SpaceConfig(PatcherConfig):
    """Ends after ASCII whitespace or punctuation, within the size limits. Scripts without ASCII
    spaces (CJK) fall back to max_size patches."""


@register_patcher
class SpacePatcher(Patcher):
    """Candidate end at t iff x[t] is ASCII whitespace or punctuation."""

    name = "space"
    config_class = SpaceConfig
    config: SpaceConfig
    lookback = 1

    def candidates(self, x: torch.Tensor) -> torch.Tensor:
        table = torch.zeros(256, dtype=torch.bool, device=x.device)
        table[torch.tensor(list(SPACELIKE), device=x.device)] = True
        return table[x]
