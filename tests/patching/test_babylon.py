import torch
from hypothesis import given, strategies as st

from bytelm.patching import BabylonPatcher, window_entropy
from bytelm.patching import babylon as babylon_mod

from .strategies import FAST, ROWS, byte_batches, ref_window_entropy


@FAST
@given(byte_batches(), st.integers(1, 40))
def test_window_entropy_matches_naive(x, w):
    h = window_entropy(x, w)
    assert h.dtype == torch.float64
    for b in range(x.shape[0]):
        ref = torch.tensor(ref_window_entropy(bytes(x[b].tolist()), w), dtype=torch.float64)
        torch.testing.assert_close(h[b], ref, rtol=0, atol=1e-12)


def test_window_entropy_chunked(monkeypatch):
    # chunks of T (here 3 positions) give the same values as one pass
    x = torch.randint(0, 256, (2, 100))
    whole = window_entropy(x, 16)
    monkeypatch.setattr(babylon_mod, "CHUNK_ELEMS", 2 * 3)
    torch.testing.assert_close(window_entropy(x, 16), whole, rtol=0, atol=1e-12)


def test_window_entropy_values():
    h = window_entropy(torch.tensor([list(b"aaaabcd")]), 4)[0].tolist()
    # windows: a, aa, aaa, aaaa, aaab, aabc, abcd
    want = [0, 0, 0, 0, 0.811278124459, 1.5, 2.0]
    assert all(abs(a - b) < 1e-9 for a, b in zip(h, want))


@FAST
@given(ROWS)
def test_babylon_candidates_are_entropy_rises(row):
    p = BabylonPatcher(window=8, threshold=0.3)
    x = torch.tensor([list(row)])
    h = ref_window_entropy(row, 8)
    want = [False] + [h[t] - h[t - 1] > 0.3 for t in range(1, len(row))]
    assert p.candidates(x)[0].tolist() == want


def test_babylon_finds_more_than_one_patch():
    # the original BabylonIndex made one patch of almost every 256-byte context
    text = ("The Babylon index marks entropy rises: when a new word starts, unseen bytes "
            "enter the window. ") * 3
    x = torch.tensor([list(text.encode()[:256])])
    n = int(BabylonPatcher()(x).sum())
    assert 256 / 16 <= n <= 256 / 2
