"""ContextMemory: LRU capacity and eviction order, importance rising with repetition and decaying
with steps, grad-scale bounds, pruning, the MinHash sketch, JSON round trip; the replay
reservoir; the stream chunker."""
import io
import math
import random

import numpy as np
import pytest

from bytelm.errors import UserError
from bytelm.live import ContextMemory, ReplayBuffer, context_hash, grad_scale, iter_chunks, minhash_key


def test_lru_capacity_and_eviction_order():
    mem = ContextMemory(capacity=3)
    for step, k in enumerate([b"a", b"b", b"c"]):
        mem.visit(k, step)
    mem.visit(b"a", 3)  # a becomes most recent: b is now the oldest
    mem.visit(b"d", 4)
    assert mem.keys() == [b"c", b"a", b"d"] and b"b" not in mem and mem.evicted == 1
    mem.visit(b"e", 5)
    assert mem.keys() == [b"a", b"d", b"e"] and len(mem) == 3
    mem.resize(2)
    assert mem.keys() == [b"d", b"e"] and mem.evicted == 3


def test_eviction_is_constant_time():
    """The cost of a visit that evicts does not grow with the capacity (an O(n) list/deque
    removal, as in the original, would be ~30x slower at capacity 30,000 than at 1,000)."""
    import time
    keys = [i.to_bytes(4, "little") for i in range(60_000)]

    def per_visit(capacity: int) -> float:
        mem = ContextMemory(capacity=capacity)
        t = time.perf_counter()
        for i, k in enumerate(keys):
            mem.visit(k, i)
        assert mem.evicted == len(keys) - capacity
        return time.perf_counter() - t
    small = min(per_visit(1_000) for _ in range(2))
    large = min(per_visit(30_000) for _ in range(2))
    assert large < 3 * small


def test_importance_rises_with_repetition_and_decays_with_steps():
    mem = ContextMemory(half_life=100.0, min_scale=0.1)
    scales = [mem.visit(b"k", step)[0] for step in range(4)]  # seen at steps 0, 1, 2, 3
    assert scales[0] == 1.0
    assert scales == sorted(scales, reverse=True) and scales[1] == pytest.approx(1 / (1 + 2 ** -0.01))
    imp = mem.importance(b"k", 3)
    assert imp == pytest.approx(sum(2 ** (-i / 100) for i in range(4)))
    # no visits: halves every half_life steps, whatever the wall clock
    assert mem.importance(b"k", 103) == pytest.approx(imp / 2)
    assert mem.importance(b"k", 1003) == pytest.approx(imp / 1024)
    assert mem.entry(b"k")["count"] == 4
    # long unseen: learns at (nearly) the full rate again
    assert mem.visit(b"k", 5000)[0] > 0.99
    assert mem.visit(b"new", 5000) == (1.0, True)


def test_grad_scale_bounds():
    rng = random.Random(0)
    for imp in [0.0, 1e-9, 1.0, 9.0, 1e9, math.inf] + [rng.expovariate(0.3) for _ in range(200)]:
        s = grad_scale(imp, 0.1)
        assert 0.1 <= s <= 1.0
    assert grad_scale(0.0) == 1.0 and grad_scale(1.0) == 0.5 and grad_scale(100.0) == 0.1
    mem = ContextMemory(min_scale=0.2)
    scales = [mem.visit(b"x", 0)[0] for _ in range(50)]
    assert min(scales) == 0.2 and max(scales) == 1.0


def test_prune():
    mem = ContextMemory(half_life=10.0, prune_below=0.1)
    mem.visit(b"old", 0)
    mem.visit(b"new", 30)
    assert mem.prune(31) == 0  # 2^-3.1 = 0.117 >= 0.1
    assert mem.prune(40) == 1 and mem.keys() == [b"new"] and mem.pruned == 1


def test_json_roundtrip_and_corruption():
    import json
    mem = ContextMemory(capacity=5, half_life=7.0, sketch=True)
    for step in range(9):
        mem.visit(mem.key(bytes([step % 4]) * 40), step)
    d = json.loads(json.dumps(mem.to_dict()))
    back = ContextMemory.from_dict(d)
    assert back.to_dict() == mem.to_dict() and back.keys() == mem.keys()
    d["entries"][0] = ["zz", 1, 1, 1.0]
    with pytest.raises(UserError, match="corrupted live memory"):
        ContextMemory.from_dict(d)
    with pytest.raises(UserError):
        ContextMemory.from_dict({"format": "other"})


@pytest.mark.parametrize("kw", [dict(capacity=0), dict(half_life=0), dict(min_scale=0),
                                dict(min_scale=1.5), dict(prune_below=-1)])
def test_bad_memory_options(kw):
    with pytest.raises(UserError):
        ContextMemory(**kw)


def test_sketch_makes_near_duplicates_collide():
    rng = np.random.default_rng(0)
    words = [bytes(rng.integers(97, 123, size=rng.integers(2, 9)).astype(np.uint8)) for _ in range(400)]
    exact = sketch = 0
    for t in range(30):
        text = b" ".join(words[i] for i in rng.integers(0, 400, size=60))[:256]
        near = bytearray(text)
        near[rng.integers(0, len(near))] ^= 0x20  # one changed byte
        exact += context_hash(text) == context_hash(bytes(near))
        sketch += minhash_key(text) == minhash_key(bytes(near))
        assert minhash_key(text) == minhash_key(text)
    assert exact == 0 and sketch >= 15
    other = b" ".join(words[i] for i in rng.integers(0, 400, size=60))[:256]
    assert minhash_key(other) != minhash_key(text)
    assert len(minhash_key(b"")) == len(minhash_key(b"ab")) == 16


def test_replay_reservoir():
    buf = ReplayBuffer(capacity=8, seed=1)
    for i in range(100):
        buf.add(bytes([i]) * 3)
    assert len(buf) == 8 and buf.n_seen == 100
    assert len(set(buf.sample(5))) == 5 and len(buf.sample(50)) == 8
    meta, tensors = buf.state()
    back = ReplayBuffer(capacity=8, seed=99)
    back.load(meta, tensors)
    assert back.items == buf.items and back.sample(3) == buf.sample(3)
    assert ReplayBuffer(4).sample(2) == []
    n = buf.prefill(np.arange(50, dtype=np.uint8), 10, n=5)
    assert n == 5 and buf.n_seen == 105


def test_iter_chunks_covers_every_byte_once():
    data = bytes(np.random.default_rng(2).integers(0, 256, size=1000, dtype=np.uint8))
    chunks = list(iter_chunks(io.BytesIO(data), 64))
    assert all(len(c) == 65 for c in chunks[:-1]) and 2 <= len(chunks[-1]) <= 65
    targets = b"".join(c[1:] for c in chunks)
    assert targets == data[1:]
    assert sum(len(c) - 1 for c in chunks) == len(data) - 1
    # resuming after n learned chunks skips sum(len - 1) bytes and continues with chunk n
    skip = sum(len(c) - 1 for c in chunks[:5])
    assert list(iter_chunks(io.BytesIO(data), 64, skip=skip)) == chunks[5:]

    class Trickle(io.RawIOBase):  # a pipe that returns one byte per read
        def __init__(self, b):
            self.b, self.i = b, 0

        def readable(self):
            return True

        def read(self, n=-1):
            if self.i >= len(self.b):
                return b""
            self.i += 1
            return self.b[self.i - 1:self.i]
    assert list(iter_chunks(Trickle(data), 64)) == chunks
    assert list(iter_chunks(io.BytesIO(b"x"), 8)) == []
    with pytest.raises(UserError):
        list(iter_chunks(io.BytesIO(data), 0))
