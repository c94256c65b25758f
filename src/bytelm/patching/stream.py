"""Patch ends decided one byte at a time, for decoding: the same ends as the patcher on the
whole row, from the last ``lookback`` bytes per step instead of the whole history.

The end rule of ``constrain_ends`` is sequential in the previous end p: with n = t - p,
    end(t) = (cand[t] and allowed[t] and n >= min_size) or (allowed[t] and n >= soft_max)
             or n >= hard_max.
A stream keeps p per row and evaluates it at each new byte. cand[t] reads the last
``patcher.lookback`` bytes; allowed[t] (``char_end_mask``) reads at most the last 4: a run of
continuation bytes reaching further back than that stands alone whatever came before it.
"""
import torch

from bytelm.patching.base import Patcher
from bytelm.patching.constrain import MAX_CHAR_BYTES
from bytelm.patching.utf8 import char_end_mask


class PatchStream:
    """Incremental patch ends of B rows.

    Args:
        patcher: any patcher; one with ``lookback`` None reads the whole history every step
            (still exact, O(history) per byte).
        prev_end: (B,) long, the last end of each row so far (-1: none).
    """

    def __init__(self, patcher: Patcher, prev_end: torch.Tensor):
        self.patcher = patcher
        self.prev_end = prev_end
        self.min_size, self.soft, self.hard, self.utf8 = patcher.stream_rule()
        self.window = None if patcher.lookback is None else max(patcher.lookback, MAX_CHAR_BYTES)

    def window_start(self, n: int) -> int:
        """First byte of a history of n bytes that ``push`` reads."""
        return 0 if self.window is None else max(0, n - self.window)

    def push(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """Decides the ends at byte t of every row from x (B, k): bytes t-k+1 .. t (at least
        ``window`` of them, or all from 0). Returns (B,) bool and advances ``prev_end``."""
        end = self.ends_at(x, t)
        self.prev_end = torch.where(end, t, self.prev_end)
        return end

    def ends_at(self, x: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        """The rule at byte t (an int or a tensor) without advancing; (B,) bool."""
        n = t - self.prev_end
        cand = self.patcher.last_candidate(x)
        allowed = char_end_mask(x)[:, -1] if self.utf8 else torch.ones_like(cand)
        end = cand & allowed & (n >= self.min_size)
        if self.soft is not None:
            end = end | (allowed & (n >= self.soft))
        if self.hard is not None:
            end = end | (n >= self.hard)
        return end
