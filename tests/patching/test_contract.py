"""Properties every patcher must have: deterministic, row-independent, within its size limits,
causal, and never ending inside a valid UTF-8 character except by the documented raw cut."""
import pytest
import torch
from hypothesis import given, settings, strategies as st

from bytelm.patching import (BabylonPatcher, EntropyModelPatcher, FixedPatcher, SpacePatcher,
                             char_end_mask)

from .lm import tiny_lm
from .strategies import FAST, ROWS, UTF8_TEXT, byte_batches, inside_valid_char, patches_of

PATCHERS = {
    "fixed": lambda: FixedPatcher(patch_size=5),
    "fixed-utf8": lambda: FixedPatcher(patch_size=3, utf8=True),
    "space": lambda: SpacePatcher(),
    "space-min3-max6": lambda: SpacePatcher(min_size=3, max_size=6),
    "babylon": lambda: BabylonPatcher(),
    "babylon-extend": lambda: BabylonPatcher(window=6, threshold=0.1, max_size=8, overflow="extend"),
    "babylon-cut": lambda: BabylonPatcher(max_size=5, overflow="cut"),
    "entropy-model": lambda: EntropyModelPatcher(model=tiny_lm(), threshold=2.5),
}
ADVERSARIAL = [b"a", b"\x80", b"\xf0", b" " * 50, b"a" * 70, b"\xc3" * 40, b"\xbf" * 33,
               b"\xff" * 20, "😀".encode() * 15, "é".encode() * 30, "日本語".encode() * 10,
               b"\xf0" * 15 + "😀".encode(), bytes(range(256)), ("x" * 15 + "😀" + "yy").encode()]


def min_size(p):
    return getattr(p.config, "min_size", getattr(p.config, "patch_size", 1))


def check(p, x):
    ends = p(x)
    assert ends.dtype == torch.bool and ends.shape == x.shape
    assert torch.equal(p(x), ends)
    for b in range(x.shape[0]):
        assert torch.equal(p(x[b:b + 1]), ends[b:b + 1])
    allowed = char_end_mask(x)
    utf8 = p.config.utf8
    for b in range(x.shape[0]):
        row = ends[b].tolist()
        lengths, tail = patches_of(row)
        assert all(n >= min_size(p) for n in lengths)
        if p.max_len is not None:
            assert all(n <= p.max_len for n in lengths) and tail < p.max_len
        if utf8:
            # an end inside a character (never allowed) is only the raw cut at max_len
            prev = -1
            inside = inside_valid_char(bytes(x[b].tolist()))
            for t in ends[b].nonzero().flatten().tolist():
                if not allowed[b, t] or inside[t]:
                    assert t - prev == p.max_len, (t, prev)
                prev = t
    return ends


@pytest.mark.parametrize("name", [n for n in PATCHERS if n != "entropy-model"])
@FAST
@given(x=byte_batches())
def test_contract(name, x):
    check(PATCHERS[name](), x)


@settings(max_examples=20, deadline=None)  # each example runs the LM B + 2 times
@given(x=byte_batches())
def test_contract_entropy_model(x):
    check(PATCHERS["entropy-model"](), x)


@pytest.mark.parametrize("name", PATCHERS)
def test_contract_adversarial(name):
    p = PATCHERS[name]()
    for row in ADVERSARIAL:
        check(p, torch.tensor([list(row)], dtype=torch.uint8))


@pytest.mark.parametrize("name", [n for n in PATCHERS if PATCHERS[n]().config.utf8
                                  and getattr(PATCHERS[n]().config, "overflow", "") != "cut"])
@FAST
@given(row=UTF8_TEXT)
def test_contract_valid_utf8_never_split(name, row):
    ends = PATCHERS[name]()(torch.tensor([list(row)]))[0].tolist()
    assert not any(e and i for e, i in zip(ends, inside_valid_char(row)))


@pytest.mark.parametrize("name", PATCHERS)
@FAST
@given(x=byte_batches(), data=st.data())
def test_contract_causal(name, x, data):
    p = PATCHERS[name]()
    T = x.shape[1]
    t = data.draw(st.integers(0, T - 1))
    y = x.clone()
    y[:, t + 1:] = torch.tensor(list(data.draw(st.binary(min_size=T - t - 1, max_size=T - t - 1))),
                                dtype=torch.uint8)
    assert torch.equal(p(y)[:, :t + 1], p(x)[:, :t + 1])


@settings(max_examples=10, deadline=None)
@given(rows=st.lists(ROWS, min_size=1, max_size=2), length=st.integers(129, 330), data=st.data())
def test_entropy_model_causal_across_windows(rows, length, data):
    # longer than the LM's context (128): bytes are scored in overlapping windows
    x = torch.tensor([list((r * (length // len(r) + 1))[:length]) for r in rows], dtype=torch.uint8)
    p = PATCHERS["entropy-model"]()
    t = data.draw(st.integers(0, length - 2))
    y = x.clone()
    y[:, t + 1:] = torch.randint(0, 256, (x.shape[0], length - t - 1), dtype=torch.uint8)
    assert torch.equal(p(y)[:, :t + 1], p(x)[:, :t + 1])
    assert torch.equal(p.scores(y)[:, :t + 1], p.scores(x)[:, :t + 1])
