import torch
from hypothesis import given, strategies as st

from bytelm.patching import FixedPatcher, char_end_mask

from .strategies import FAST, UTF8_TEXT, byte_batches, patches_of


@FAST
@given(byte_batches(), st.integers(1, 9))
def test_fixed_stride(x, P):
    ends = FixedPatcher(patch_size=P)(x)
    t = torch.arange(x.shape[1])
    assert torch.equal(ends, ((t + 1) % P == 0).expand_as(ends))


@FAST
@given(byte_batches(), st.integers(1, 9))
def test_fixed_utf8(x, P):
    p = FixedPatcher(patch_size=P, utf8=True)
    ends = p(x)
    allowed = char_end_mask(x)
    for b in range(x.shape[0]):
        lengths, tail = patches_of(ends[b].tolist())
        assert all(P <= n <= p.max_len for n in lengths) and tail < p.max_len
        assert not (ends[b] & ~allowed[b]).any() or any(n == p.max_len for n in lengths)


@FAST
@given(UTF8_TEXT)
def test_fixed_utf8_valid_text(row):
    x = torch.tensor([list(row)])
    ends = FixedPatcher(patch_size=3, utf8=True)(x)
    assert not (ends & ~char_end_mask(x)).any()
    # the ends match the stride on ASCII
    if row.isascii():
        assert torch.equal(ends, FixedPatcher(patch_size=3)(x))
