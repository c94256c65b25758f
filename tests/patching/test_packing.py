import pytest
import torch
from hypothesis import given, strategies as st

from bytelm.patching import pack, pack_index, patch_ids, patch_lengths, patch_offsets, unpack

from .strategies import FAST


@st.composite
def ends_batches(draw):
    B, T = draw(st.integers(1, 4)), draw(st.integers(1, 80))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    return torch.rand(B, T, generator=g) < draw(st.floats(0, 1))


def ref_patches(row: list[bool]) -> list[list[int]]:
    out, cur = [], []
    for t, e in enumerate(row):
        cur.append(t)
        if e:
            out.append(cur)
            cur = []
    return out + ([cur] if cur else [])


@FAST
@given(ends_batches())
def test_patch_ids_lengths_offsets(ends):
    ids, offs = patch_ids(ends), patch_offsets(ends)
    lengths, n = patch_lengths(ends)
    for b in range(ends.shape[0]):
        ref = ref_patches(ends[b].tolist())
        assert n[b] == len(ref)
        assert lengths[b, :len(ref)].tolist() == [len(p) for p in ref]
        assert not lengths[b, len(ref):].any()
        for i, p in enumerate(ref):
            assert ids[b, p].tolist() == [i] * len(p)
            assert offs[b, p].tolist() == list(range(len(p)))


@FAST
@given(ends_batches(), st.integers(0, 3))
def test_pack_round_trip(ends, n_feat):
    B, T = ends.shape
    x = torch.randn(B, T, *([3] * n_feat))
    p = pack_index(ends)
    packed = pack(x, p, pad=-7.0)
    assert packed.shape[:3] == p.mask.shape
    assert torch.equal(unpack(packed, p), x)
    assert (packed[~p.mask] == -7.0).all()
    assert torch.equal(p.mask.sum(-1), p.lengths)
    for b in range(B):
        for i, patch in enumerate(ref_patches(ends[b].tolist())):
            assert p.index[b, i, :len(patch)].tolist() == patch
            assert torch.equal(packed[b, i, :len(patch)], x[b, patch])


def test_pack_index_max_len():
    ends = torch.tensor([[False, False, True, True]])
    p = pack_index(ends, max_len=5)
    assert p.index.shape == (1, 2, 5) and p.mask.sum() == 4
    with pytest.raises(ValueError, match="max_len"):
        pack_index(ends, max_len=2)


def test_pack_bytes():
    x = torch.tensor([list(b"ab|cde|f")], dtype=torch.uint8)
    ends = x == ord("|")
    p = pack_index(ends)
    assert [bytes(r[m].tolist()) for r, m in zip(pack(x, p)[0], p.mask[0])] == [b"ab|", b"cde|", b"f"]
    assert p.n_patches.tolist() == [3]
