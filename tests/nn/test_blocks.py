import torch

from bytelm.nn import RMSNorm, Rotary, apply_rotary, byte_cross_entropy


def test_rmsnorm_matches_formula_in_bf16():
    x = torch.randn(4, 7, 32) * 100
    n = RMSNorm(32)
    ref = x / x.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt()
    torch.testing.assert_close(n(x), ref)
    torch.testing.assert_close(n(x.bfloat16()).float(), ref, rtol=2e-2, atol=2e-2)


def test_rope_is_relative():
    rot = Rotary(16, 64)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)
    def score(i, j):
        ci, si = rot(i, 1)
        cj, sj = rot(j, 1)
        return (apply_rotary(q, ci, si) * apply_rotary(k, cj, sj)).sum()
    torch.testing.assert_close(score(10, 3), score(40, 33), rtol=1e-4, atol=1e-5)
    # the table grows past max_len on demand
    assert rot(100, 5)[0].shape == (5, 8)


def test_cross_entropy_mask_normalises_by_real_bytes():
    logits = torch.randn(2, 5, 256)
    y = torch.randint(0, 256, (2, 5))
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[0, :3] = True
    full = byte_cross_entropy(logits, y, reduction="none")
    torch.testing.assert_close(byte_cross_entropy(logits, y, mask), full[0, :3].mean())


def test_rotary_tensor_start_equals_the_table():
    """A 0-dim tensor start (compiled decoding) gives exactly the table's angles, also past
    the precomputed length."""
    from bytelm.nn import Rotary
    rot = Rotary(16, 32)
    for start, length in ((0, 5), (7, 1), (30, 4)):
        cos, sin = rot(start, length)
        tcos, tsin = rot(torch.tensor(start), length)
        assert torch.equal(cos, tcos) and torch.equal(sin, tsin)
