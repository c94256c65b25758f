"""Causal patchers: bytes (B, T) -> patch ends (B, T) bool, usable by any model.

ends[b, t] is True iff a patch ends at byte t, decided from bytes <= t only. Patchers, by name:
``fixed`` (stride), ``space`` (after whitespace/punctuation), ``babylon`` (sliding-window entropy
rise), ``entropy-model`` (a small byte LM's next-byte entropy). All but ``fixed`` share min/max
size limits and the causal UTF-8 rule; see README.md for the design.

    from bytelm.patching import get_patcher, pack_index, pack
    ends = get_patcher("babylon", threshold=0.3)(x)      # x (B, T) uint8
    p = pack_index(ends); patches = pack(x, p)           # (B, N, L) bytes + p.mask
"""
from bytelm.patching.babylon import BabylonConfig, BabylonPatcher, window_entropy
from bytelm.patching.base import Patcher, PatcherConfig, as_byte_batch, register_patcher
from bytelm.patching.constrain import OVERFLOW_MODES, constrain_ends, naive_constrain_ends, size_limits
from bytelm.patching.entropy import EntropyModelConfig, EntropyModelPatcher, fit_threshold, next_byte_entropy
from bytelm.patching.fixed import FixedConfig, FixedPatcher
from bytelm.patching.registry import get_patcher, list_patchers, patcher_class
from bytelm.patching.packing import Packing, pack, pack_index, patch_ids, patch_lengths, patch_offsets, unpack
from bytelm.patching.space import SpaceConfig, SpacePatcher
from bytelm.patching.utf8 import char_end_mask

__all__ = [
    "BabylonConfig", "BabylonPatcher", "EntropyModelConfig", "EntropyModelPatcher", "FixedConfig",
    "FixedPatcher", "OVERFLOW_MODES", "Packing", "Patcher", "PatcherConfig", "SpaceConfig",
    "SpacePatcher", "as_byte_batch", "char_end_mask", "constrain_ends", "fit_threshold",
    "get_patcher", "list_patchers", "naive_constrain_ends", "next_byte_entropy", "pack",
    "pack_index", "patch_ids", "patch_lengths", "patch_offsets", "patcher_class",
    "register_patcher", "size_limits", "unpack", "window_entropy",
]
