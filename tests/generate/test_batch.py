"""Batched generation of prompts of different lengths equals generating each alone."""
import pytest
import torch

import bytelm
from bytelm.generate import generate_bytes, generate_many, iter_batch

PROMPTS = [b"hi", b"The quick brown fox jumps", b"x"]


@pytest.mark.parametrize("preset", ["transformer-tiny", "agiformer-tiny", "bsfin-tiny"])
def test_generate_many_equals_each_alone(preset, one_thread):
    """Greedy, past the context (the cache rebuilt for every stream at once), on the eager and
    the fixed-shape decoder; bytelm.generate takes a list."""
    torch.manual_seed(0)
    m = bytelm.create_model(preset, context=32).eval()
    alone = [generate_bytes(m, p, max_bytes=40, temperature=0) for p in PROMPTS]
    assert generate_many(m, PROMPTS, max_bytes=40, temperature=0) == alone
    assert bytelm.generate(m, PROMPTS, max_bytes=40, temperature=0, decode="static") == alone
    assert bytelm.generate(m, PROMPTS[1], max_bytes=40, temperature=0) == alone[1]


def test_stop_ends_each_stream_alone(one_thread):
    torch.manual_seed(0)
    m = bytelm.create_model("transformer-tiny").eval()
    full = generate_many(m, PROMPTS, max_bytes=30, temperature=0)
    stop = full[0][3:5]
    got = generate_many(m, PROMPTS, max_bytes=30, temperature=0, stop=stop)
    assert got[0] == full[0][:5]
    steps = list(iter_batch(m, PROMPTS, max_bytes=3, temperature=0))
    assert [s[1] for s in steps[:23]] == [None] * 23  # the long prompt is still read
    with pytest.raises(bytelm.errors.UserError, match="prompt 2 is empty"):
        generate_many(m, [b"a", b""], max_bytes=2)


def test_greedy_blocks_give_the_same_bytes(one_thread, monkeypatch):
    """At temperature 0 the Transformer's fixed-shape decoder runs 8 bytes per call; the bytes
    equal the eager path's, for streams of different prompt lengths, past the context (cache
    rebuilt) and with a stop inside a block."""
    from bytelm.models.gpt.static_decode import GPTStaticDecoder
    calls = []
    real = GPTStaticDecoder.greedy
    monkeypatch.setattr(GPTStaticDecoder, "greedy",
                        lambda self, b: calls.append(self.greedy_block) or real(self, b))
    torch.manual_seed(0)
    m = bytelm.create_model("transformer-tiny", context=32).eval()
    eager = generate_many(m, PROMPTS, max_bytes=45, temperature=0)
    assert not calls
    assert generate_many(m, PROMPTS, max_bytes=45, temperature=0, decode="static") == eager
    assert calls and set(calls) == {8}
    stop = eager[1][10:12]  # inside the second block of stream 2
    got = generate_many(m, PROMPTS, max_bytes=45, temperature=0, decode="static", stop=stop)
    want = generate_many(m, PROMPTS, max_bytes=45, temperature=0, stop=stop)
    assert got == want and got[1].endswith(stop) and len(got[1]) <= 12
    # sampling keeps one byte per call (its draws equal the eager path's)
    calls.clear()
    s = generate_many(m, PROMPTS, max_bytes=20, temperature=1.0, seed=3, decode="static")
    assert not calls and s == generate_many(m, PROMPTS, max_bytes=20, temperature=1.0, seed=3)
