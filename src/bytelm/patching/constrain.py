"""Min/max patch size and the UTF-8 rule on top of per-byte candidate ends, without a loop over T.

The rule is sequential: with p the previous end (-1 at the start of the row) and n = t - p the
length of the patch if it ends at t, a patch ends at t iff

    (cand[t] and allowed[t] and n >= min_size)   # a natural end, after the minimum size
    or (allowed[t] and n >= soft_max)            # forced, at a character boundary
    or n >= hard_max                             # forced, raw cut (only if no boundary came)

Every term depends on bytes <= t, so the result is causal whenever cand and allowed are.
``constrain_ends`` evaluates it exactly in O(log T) parallel steps: the next end after p is a
fixed function f(p) of precomputed "next allowed position" tables, and the ends are the orbit
p, f(p), f(f(p)), ... from p = -1, found for all jump counts at once by pointer doubling
(O(B * T/min_size * log T) work). See README.md. ``naive_constrain_ends`` is the reference.
"""
import torch

from bytelm.errors import UserError

MAX_CHAR_BYTES = 4
OVERFLOW_MODES = ("reserve", "extend", "cut")


def size_limits(min_size: int, max_size: int, overflow: str, utf8: bool) -> tuple[int | None, int | None]:
    """(soft_max, hard_max) for ``constrain_ends`` from the user-facing size options.

    A causal patcher cannot move a forced end back when it finds itself inside a character at
    max_size (that would change an earlier, already emitted decision), so ``overflow`` picks
    what gives way when a multi-byte character straddles max_size:

    - "reserve": max_size stays a hard limit; a patch that has reached
      max(min_size, max_size - 3) bytes ends at the next character boundary, so no character
      (<= 4 bytes) can straddle max_size when max_size >= min_size + 3. Cost: forced patches
      are up to 3 bytes shorter than max_size (13 for ASCII text with max_size 16).
    - "extend": the patch ends at the first character boundary at or after max_size bytes;
      patches reach max_size + 3 bytes.
    - "cut": the patch ends at exactly max_size bytes, even inside a character.

    In every mode a patch that meets no character boundary by the hard limit (only possible for
    invalid UTF-8, e.g. a run of lead bytes) is cut there. Without the UTF-8 rule all three
    cut at max_size. max_size 0 means no maximum: (None, None).
    """
    if overflow not in OVERFLOW_MODES:
        raise UserError(f"overflow must be one of {', '.join(OVERFLOW_MODES)}, got {overflow!r}")
    if not max_size:
        return None, None
    if not utf8 or overflow == "cut":
        return max_size, max_size
    if overflow == "reserve":
        return max(min_size, max_size - (MAX_CHAR_BYTES - 1)), max_size
    return max_size, max_size + MAX_CHAR_BYTES - 1


def constrain_ends(cand: torch.Tensor, allowed: torch.Tensor | None, min_size: int,
                   soft_max: int | None = None, hard_max: int | None = None) -> torch.Tensor:
    """Patch ends from candidates under the size limits and the UTF-8 rule (module docstring).

    Args:
        cand: (B, T) bool, candidate ends (e.g. an entropy rise at t).
        allowed: (B, T) bool, positions where a patch may end (``char_end_mask``); None: all.
        min_size: >= 1; no end less than min_size bytes after the previous one.
        soft_max: forced end at the first allowed position this many bytes in (None: never).
        hard_max: forced end at this many bytes whatever the position (None: never).
    Returns:
        (B, T) bool ends, identical to ``naive_constrain_ends``.
    """
    B, T = cand.shape
    dev = cand.device
    if T == 0:
        return cand.bool().clone()
    cand = cand.bool()
    allowed = torch.ones_like(cand) if allowed is None else allowed.bool()
    none = T  # "no such position"
    idx = torch.arange(T, device=dev)

    def next_true(mask: torch.Tensor) -> torch.Tensor:
        # (B, T+1): smallest t' >= q with mask[t'] (none if there is none); column T is none
        v = torch.cat([torch.where(mask, idx, none), torch.full((B, 1), none, device=dev)], 1)
        return v.flip(1).cummin(1).values.flip(1)

    # p = previous end, -1..T-1; every offset is >= 1, so p + offset >= 0
    p = torch.arange(-1, T, device=dev)

    def first_from(table: torch.Tensor, offset: int | None) -> torch.Tensor:
        if offset is None:
            return torch.full((B, T + 1), none, device=dev)
        return table[:, (p + offset).clamp(max=T)]

    nxt = first_from(next_true(cand & allowed), min_size)
    if soft_max is not None:
        nxt = torch.minimum(nxt, first_from(next_true(allowed), soft_max))
    if hard_max is not None:
        nxt = torch.minimum(nxt, (p + hard_max).clamp(max=none).expand(B, T + 1))
    # nodes: j = p + 1 in 0..T ("previous end at j-1"), plus an absorbing node T+1 ("no more ends")
    absorb = T + 1
    jump = torch.cat([torch.where(nxt < T, nxt + 1, absorb),
                      torch.full((B, 1), absorb, device=dev)], 1)  # (B, T+2)
    # ends are at most one per min_size bytes: node after n jumps from node 0, n = 1..N, at once
    n_max = T // min_size
    n = torch.arange(1, n_max + 1, device=dev)
    node = torch.zeros(B, n_max, dtype=torch.long, device=dev)
    for k in range(n_max.bit_length()):
        node = torch.where(((n >> k) & 1).bool(), jump.gather(1, node), node)
        if k + 1 < n_max.bit_length():
            jump = jump.gather(1, jump)  # now jumps 2^(k+1) steps
    ends = torch.zeros(B, T + 2, dtype=torch.bool, device=dev)
    ends.scatter_(1, node, True)
    return ends[:, 1:T + 1]


def naive_constrain_ends(cand: torch.Tensor, allowed: torch.Tensor | None, min_size: int,
                         soft_max: int | None = None, hard_max: int | None = None) -> torch.Tensor:
    """Reference for ``constrain_ends``: the rule applied byte by byte in Python (slow)."""
    inf = float("inf")
    soft = inf if soft_max is None else soft_max
    hard = inf if hard_max is None else hard_max
    c = cand.bool().tolist()
    a = [[True] * len(r) for r in c] if allowed is None else allowed.bool().tolist()
    out = []
    for crow, arow in zip(c, a):
        last, row = -1, []
        for t, (ct, at) in enumerate(zip(crow, arow)):
            n = t - last
            end = (ct and at and n >= min_size) or (at and n >= soft) or n >= hard
            row.append(end)
            if end:
                last = t
        out.append(row)
    return torch.tensor(out, dtype=torch.bool, device=cand.device).reshape(cand.shape)
