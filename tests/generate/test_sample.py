import pytest
import torch

import bytelm
from bytelm.generate import Utf8Stream, generate_bytes, sample_next
from tests.contracts import full_recompute_greedy


def test_generate_cached_equals_full_recompute():
    torch.manual_seed(0)
    m = bytelm.create_model("transformer-tiny").eval()
    prompt = b"The quick brown fox"
    got = generate_bytes(m, prompt, max_bytes=40, temperature=0)
    assert got == full_recompute_greedy(m, prompt, 40)


@pytest.mark.parametrize("preset", ["transformer-tiny", "bsfin-tiny"])
def test_generate_past_context_equals_cropped_recompute(preset):
    torch.manual_seed(0)
    m = bytelm.create_model(preset, context=32).eval()
    prompt = b"abcdefghij"
    got = generate_bytes(m, prompt, max_bytes=70, temperature=0)
    assert got == full_recompute_greedy(m, prompt, 70)


def test_sampling_is_seeded_and_filters():
    torch.manual_seed(0)
    m = bytelm.create_model("transformer-tiny").eval()
    a = generate_bytes(m, "hi", max_bytes=30, temperature=1.0, seed=3)
    b = generate_bytes(m, "hi", max_bytes=30, temperature=1.0, seed=3)
    assert a == b
    logits = torch.randn(64, 256)
    top1 = logits.argmax(-1)
    assert torch.equal(sample_next(logits, top_k=1), top1)
    assert torch.equal(sample_next(logits, top_p=1e-6), top1)
    picks = sample_next(logits.repeat(20, 1), top_k=5, generator=torch.Generator().manual_seed(0))
    allowed = torch.topk(logits.repeat(20, 1), 5, -1).indices
    assert (picks[:, None] == allowed).any(-1).all()


def test_utf8_stream_holds_back_and_replaces():
    s = Utf8Stream()
    data = "ğüşé€𝄞".encode()
    out = "".join(s.push(data[i:i + 1]) for i in range(len(data))) + s.flush()
    assert out == "ğüşé€𝄞"
    s = Utf8Stream()
    assert s.push(b"\xc4") == ""  # incomplete: held back
    assert s.push(b"\x9f") == "ğ"
    assert s.push(b"a\xffb") == "a\ufffdb"
    assert s.push(b"\xe2\x82") == "" and s.flush() == "\ufffd"


def test_entropy_aware_sampling_bands():
    from bytelm.generate.sample import entropy_bits, sample_entropy_aware
    confident = torch.full((1, 256), -30.0)
    confident[0, 65] = 10.0
    uniform = torch.zeros(1, 256)
    assert entropy_bits(confident).item() < 0.01 and abs(entropy_bits(uniform).item() - 8) < 1e-4
    g = torch.Generator().manual_seed(0)
    assert sample_entropy_aware(confident, generator=g).item() == 65
    picks = {sample_entropy_aware(uniform, generator=g).item() for _ in range(50)}
    assert len(picks) > 20  # full sampling when uncertain
    mid = torch.full((1, 256), -30.0)
    mid[0, :3] = torch.tensor([2.0, 1.5, 1.0])  # ~1.4 bits: the top-k band (k=2)
    assert 0.3 < entropy_bits(mid).item() < 1.6
    picks = {sample_entropy_aware(mid, high=1.6, top_k=2, generator=g).item() for _ in range(50)}
    assert picks <= {0, 1} and len(picks) == 2


def test_generate_entropy_mode_runs():
    torch.manual_seed(0)
    m = bytelm.create_model("transformer-tiny").eval()
    a = generate_bytes(m, "hi", max_bytes=20, mode="entropy", seed=1)
    assert a == generate_bytes(m, "hi", max_bytes=20, mode="entropy", seed=1) and len(a) == 20


def test_compiled_decoding_gives_the_same_bytes():
    """generate(compile=True) (AGIFORMER's compiled fixed-shape decoder) samples the same bytes
    as the reference path, greedy and with a seed, past the context; the decoder is reused."""
    torch.manual_seed(0)
    m = bytelm.create_model("agiformer-tiny", context=32).eval()
    for kw in ({"temperature": 0}, {"temperature": 0.9, "top_k": 40, "seed": 3}):
        ref = generate_bytes(m, b"abcdefghij", max_bytes=50, **kw)
        assert generate_bytes(m, b"abcdefghij", max_bytes=50, compile=True, **kw) == ref
    assert len(m.__dict__["_static_decoders"]) == 1
    assert "_static_decoders" not in "".join(m.state_dict())


def test_generate_api_callable_twice():
    """``bytelm.generate`` stays callable once the ``bytelm.generate`` subpackage is imported
    (importing it replaces the attribute; the README's headline API)."""
    import importlib
    importlib.import_module("bytelm.generate.sample")
    model = bytelm.create_model("transformer-tiny", n_layers=1)
    a = bytelm.generate(model, "Hello", max_bytes=4, temperature=0)
    b = bytelm.generate(model, b"Hello", max_bytes=4, temperature=0)
    assert a == b and len(a) == 4 and isinstance(a, bytes)


def test_fixed_shape_decoding_needs_a_family_that_has_one():
    from bytelm.models.base import ByteLM
    from bytelm.models.gpt import GPT

    class NoFastPath(GPT):
        build_static_decoder = ByteLM.build_static_decoder

    m = NoFastPath(bytelm.create_model("transformer-tiny").config).eval()
    assert not m.has_static_decoder
    for decode in ("static", "compiled"):
        with pytest.raises(bytelm.errors.UserError, match="fixed-shape decoder"):
            generate_bytes(m, b"ab", max_bytes=2, decode=decode)
    # auto falls back to the model's own step
    assert len(generate_bytes(m, b"ab", max_bytes=2, decode="auto")) == 2
