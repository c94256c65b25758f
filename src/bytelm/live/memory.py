"""The live learner's context memory: per-context metadata in a bounded LRU map.

Key of a context: blake2b of its bytes (16-byte digest), or, with ``sketch=True``, one LSH band
of MinHash values over its byte n-grams, so near-duplicate contexts (the same text shifted by a
few bytes, a changed word) share a key: two contexts whose n-gram sets have Jaccard similarity J
collide with probability J ** n_hashes.

Importance is a recency-weighted repetition count, decaying with *steps* (chunks seen by the
learner), never wall-clock time:

    importance(t) = importance(t_last) * 2 ** (-(t - t_last) / half_life)      (decay)
    on a visit at t: importance <- importance(t) + 1                              (repetition)

Gradient scale of a visit, from the importance the context had just before it:

    scale = max(min_scale, 1 / (1 + importance(t)))       in [min_scale, 1]

A novel context (or one not seen for many half-lives) learns at the full rate; a context seen n
times in the recent past has already contributed about n updates, so its n+1-th update is scaled
by ~1/(1 + n). The cumulative weight of a context repeated n times then grows like log(n) instead
of n (the 1/n step size of a running mean), which limits overfitting to repeated content in the
stream while new content is learned at full speed. The floor min_scale keeps a frequent context
from being frozen out entirely. (The original kept importance at 1 forever and scaled by wall-clock
age, so its scale was always 1: original_code_study.md section 2.10.)

Decay is computed exactly when an entry is read, so results do not depend on when the periodic
``prune`` pass runs; ``prune`` only drops entries whose decayed importance fell below
``prune_below`` (they would get scale ~1 anyway). The map holds at most ``capacity`` entries; a
visit moves an entry to the most-recent end and an insert beyond capacity evicts the least
recently visited one, both O(1) (``collections.OrderedDict``).
"""
import hashlib
from collections import OrderedDict

import numpy as np

from bytelm.errors import UserError

MEMORY_FORMAT = "bytelm-live-memory/1"
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def context_hash(context: bytes) -> bytes:
    """blake2b digest (16 bytes) of the context bytes."""
    return hashlib.blake2b(bytes(context), digest_size=16).digest()


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (wrapping uint64 arithmetic): a good 64-bit hash of each element."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def minhash_key(context: bytes, ngram: int = 5, n_hashes: int = 4) -> bytes:
    """One LSH band: blake2b (16 bytes) of the ``n_hashes`` min-hashes of the byte ``ngram``s.

    Args:
        context: the bytes.
        ngram: shingle length in bytes (1..8); shorter contexts are one shingle.
        n_hashes: min-hashes in the band; more means only closer contexts collide.
    """
    b = np.frombuffer(bytes(context), dtype=np.uint8).astype(np.uint64)
    n = min(ngram, max(1, len(b)))
    if len(b) == 0:
        shingles = np.zeros(1, dtype=np.uint64)
    else:
        # shingle i = bytes i..i+n-1 packed little-endian into one uint64
        shingles = np.zeros(len(b) - n + 1, dtype=np.uint64)
        for j in range(n):
            shingles |= b[j:len(b) - n + 1 + j] << np.uint64(8 * j)
    salts = _mix64(np.arange(1, n_hashes + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    mins = np.array([_mix64(shingles ^ s).min() for s in salts], dtype=np.uint64)
    return hashlib.blake2b(mins.tobytes(), digest_size=16, person=b"bytelm-minhash").digest()


def grad_scale(importance: float, min_scale: float = 0.1) -> float:
    """max(min_scale, 1 / (1 + importance)): 1 for a novel context, ~1/(1+n) after n recent visits."""
    return max(min_scale, 1.0 / (1.0 + importance))


class _Entry:
    __slots__ = ("last_step", "count", "importance")

    def __init__(self, last_step: int, count: int, importance: float):
        self.last_step, self.count, self.importance = last_step, count, importance


class ContextMemory:
    """Bounded LRU map context key -> (last step seen, count, importance); see the module docstring.

    Args:
        capacity: most entries kept (>= 1).
        half_life: steps for an unseen context's importance to halve (> 0).
        min_scale: floor of the gradient scale, in (0, 1].
        prune_below: ``prune`` drops entries whose decayed importance is below this.
        sketch: key contexts by a MinHash band (near-duplicates collide) instead of blake2b.
        ngram, n_hashes: MinHash parameters.
    """

    def __init__(self, capacity: int = 4096, half_life: float = 2000.0, min_scale: float = 0.1,
                 prune_below: float = 0.01, sketch: bool = False, ngram: int = 5,
                 n_hashes: int = 4):
        if capacity < 1:
            raise UserError(f"memory capacity must be >= 1, got {capacity}")
        if not half_life > 0:
            raise UserError(f"half-life must be > 0 steps, got {half_life}")
        if not 0 < min_scale <= 1:
            raise UserError(f"min scale must be in (0, 1], got {min_scale}")
        if prune_below < 0:
            raise UserError(f"prune threshold must be >= 0, got {prune_below}")
        if not (1 <= ngram <= 8 and n_hashes >= 1):
            raise UserError("sketch needs 1 <= ngram <= 8 and n_hashes >= 1")
        self.capacity, self.half_life = int(capacity), float(half_life)
        self.min_scale, self.prune_below = float(min_scale), float(prune_below)
        self.sketch, self.ngram, self.n_hashes = bool(sketch), int(ngram), int(n_hashes)
        self._entries: "OrderedDict[bytes, _Entry]" = OrderedDict()
        self.evicted = 0
        self.pruned = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: bytes) -> bool:
        return key in self._entries

    def keys(self) -> list[bytes]:
        """Keys from least to most recently visited (the eviction order)."""
        return list(self._entries)

    def key(self, context: bytes) -> bytes:
        return (minhash_key(context, self.ngram, self.n_hashes) if self.sketch
                else context_hash(context))

    def _decayed(self, e: _Entry, step: int) -> float:
        # importance * 2^(-(step - last) / half_life)
        return e.importance * 2.0 ** (-max(0, step - e.last_step) / self.half_life)

    def importance(self, key: bytes, step: int) -> float:
        """Decayed importance of ``key`` at ``step`` (0 if absent); does not touch LRU order."""
        e = self._entries.get(key)
        return 0.0 if e is None else self._decayed(e, step)

    def entry(self, key: bytes) -> dict | None:
        """{"last_step", "count", "importance" (as of last_step)} or None."""
        e = self._entries.get(key)
        return None if e is None else {"last_step": e.last_step, "count": e.count,
                                       "importance": e.importance}

    def visit(self, key: bytes, step: int) -> tuple[float, bool]:
        """Records a visit at ``step``. Returns (gradient scale from the importance before this
        visit, whether the key was absent)."""
        e = self._entries.get(key)
        if e is None:
            self._entries[key] = _Entry(step, 1, 1.0)
            if len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
                self.evicted += 1
            return 1.0, True
        imp = self._decayed(e, step)
        e.importance, e.last_step, e.count = imp + 1.0, max(step, e.last_step), e.count + 1
        self._entries.move_to_end(key)
        return grad_scale(imp, self.min_scale), False

    def prune(self, step: int) -> int:
        """Drops entries whose decayed importance at ``step`` is below prune_below; returns how many."""
        dead = [k for k, e in self._entries.items() if self._decayed(e, step) < self.prune_below]
        for k in dead:
            del self._entries[k]
        self.pruned += len(dead)
        return len(dead)

    def resize(self, capacity: int) -> None:
        """Changes the capacity, evicting least recently visited entries if it shrinks."""
        if capacity < 1:
            raise UserError(f"memory capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
            self.evicted += 1

    def to_dict(self) -> dict:
        """JSON-able: parameters and entries [hex key, last_step, count, importance] in LRU order."""
        return {"format": MEMORY_FORMAT, "capacity": self.capacity, "half_life": self.half_life,
                "min_scale": self.min_scale, "prune_below": self.prune_below,
                "sketch": self.sketch, "ngram": self.ngram, "n_hashes": self.n_hashes,
                "evicted": self.evicted, "pruned": self.pruned,
                "entries": [[k.hex(), e.last_step, e.count, e.importance]
                            for k, e in self._entries.items()]}

    @classmethod
    def from_dict(cls, d: dict, where: str = "memory") -> "ContextMemory":
        """Inverse of ``to_dict``; a malformed dict is a UserError naming ``where``."""
        try:
            if d.get("format") != MEMORY_FORMAT:
                raise ValueError(f"format {d.get('format')!r}")
            mem = cls(capacity=d["capacity"], half_life=d["half_life"], min_scale=d["min_scale"],
                      prune_below=d["prune_below"], sketch=d["sketch"], ngram=d["ngram"],
                      n_hashes=d["n_hashes"])
            mem.evicted, mem.pruned = int(d.get("evicted", 0)), int(d.get("pruned", 0))
            for k, last, count, imp in d["entries"]:
                mem._entries[bytes.fromhex(k)] = _Entry(int(last), int(count), float(imp))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise UserError(f"corrupted live memory in {where}: {e}") from None
        return mem
