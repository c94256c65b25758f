import pytest
import torch
from hypothesis import given, strategies as st

from bytelm.errors import UserError
from bytelm.patching import OVERFLOW_MODES, char_end_mask, constrain_ends, naive_constrain_ends, size_limits

from .strategies import FAST, byte_batches, patches_of


@st.composite
def problems(draw):
    B, T = draw(st.integers(1, 3)), draw(st.integers(1, 150))
    p = draw(st.floats(0, 1))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    cand = torch.rand(B, T, generator=g) < p
    allowed = None if draw(st.booleans()) else torch.rand(B, T, generator=g) < draw(st.floats(0, 1))
    m = draw(st.integers(1, 8))
    soft = draw(st.one_of(st.none(), st.integers(m, 20)))
    hard = draw(st.one_of(st.none(), st.integers(max(m, soft or m), 24)))
    return cand, allowed, m, soft, hard


@FAST
@given(problems())
def test_constrain_ends_matches_naive(problem):
    assert torch.equal(constrain_ends(*problem), naive_constrain_ends(*problem))


@FAST
@given(problems())
def test_constrain_ends_rules(problem):
    cand, allowed, m, soft, hard = problem
    ends = constrain_ends(*problem)
    a = torch.ones_like(cand) if allowed is None else allowed
    for b in range(cand.shape[0]):
        lengths, tail = patches_of(ends[b].tolist())
        assert all(n >= m for n in lengths)
        if hard is not None:
            assert all(n <= hard for n in lengths) and tail < hard
        # an end off the allowed positions is only ever the raw cut at hard_max
        prev = -1
        for t in ends[b].nonzero().flatten().tolist():
            if not a[b, t]:
                assert t - prev == hard
                assert soft is None or not a[b, prev + soft:t].any()
            prev = t


@FAST
@given(byte_batches(), st.sampled_from(OVERFLOW_MODES), st.integers(1, 4), st.integers(0, 12))
def test_size_limits_overflow_modes(x, mode, m, extra):
    M = m + extra
    soft, hard = size_limits(m, M, mode, utf8=True)
    ends = constrain_ends(torch.zeros_like(x, dtype=torch.bool), char_end_mask(x), m, soft, hard)
    for b in range(x.shape[0]):
        lengths, tail = patches_of(ends[b].tolist())
        assert all(m <= n <= hard for n in lengths) and tail < hard
    assert hard == {"reserve": M, "extend": M + 3, "cut": M}[mode]


def test_reserve_keeps_valid_characters_whole():
    x = torch.tensor([list(("ab😀" * 20).encode())])
    for m, M in [(1, 4), (2, 5), (1, 16)]:
        ends = constrain_ends(torch.zeros_like(x, dtype=torch.bool), char_end_mask(x), m,
                              *size_limits(m, M, "reserve", True))
        assert not ends[char_end_mask(x) == 0].any()
        assert max(patches_of(ends[0].tolist())[0]) <= M


def test_modes_on_a_straddling_character():
    # 15 ASCII bytes then a 4-byte emoji straddling max_size 16
    x = torch.tensor([list(("a" * 15 + "😀" + "b" * 10).encode())])
    none = torch.zeros_like(x, dtype=torch.bool)

    def first_patch(mode):
        ends = constrain_ends(none, char_end_mask(x), 1, *size_limits(1, 16, mode, True))
        return patches_of(ends[0].tolist())[0][0]
    assert first_patch("reserve") == 13
    assert first_patch("extend") == 19
    assert first_patch("cut") == 16


def test_no_limits_and_empty():
    c = torch.tensor([[True, False, True, True]])
    assert torch.equal(constrain_ends(c, None, 1), c)
    assert constrain_ends(torch.zeros(2, 0, dtype=torch.bool), None, 1).shape == (2, 0)
    assert not constrain_ends(torch.ones(1, 3, dtype=torch.bool), None, 5, 5, 5).any()
    with pytest.raises(UserError, match="overflow"):
        size_limits(1, 4, "wrap", True)
