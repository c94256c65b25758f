import pytest
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


def test_sdpa_equals_torch_sdpa():
    """bytelm.nn.sdpa is F.scaled_dot_product_attention (it only narrows the CUDA backends)."""
    import torch.nn.functional as F

    from bytelm.nn import sdpa
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, n, 8, generator=g) for n in (5, 7, 7))
    mask = torch.rand(5, 7, generator=g) > 0.3
    mask[:, 0] = True
    torch.testing.assert_close(sdpa(q, k, v, attn_mask=mask),
                               F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    torch.testing.assert_close(sdpa(q, k, k, is_causal=True)[..., :5, :],
                               F.scaled_dot_product_attention(q, k, k, is_causal=True))


@pytest.mark.gpu
def test_sdpa_eager_cuda_never_runs_cudnn():
    """Eager on CUDA, growing key lengths (what decoding does) never reach cuDNN attention,
    whose per-shape plan building cost BSFIN's decoder ~2 ms of host time per call."""
    from torch.profiler import ProfilerActivity, profile

    from bytelm.nn import sdpa
    q = torch.randn(1, 8, 1, 64, device="cuda", dtype=torch.bfloat16)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for m in range(100, 140):
            k = torch.randn(1, 8, m, 64, device="cuda", dtype=torch.bfloat16)
            mask = torch.ones(1, m, dtype=torch.bool, device="cuda")
            sdpa(q, k, k, attn_mask=mask)
        torch.cuda.synchronize()
    names = {e.name.lower() for e in prof.events()}
    assert not any("cudnn" in n for n in names), sorted(n for n in names if "cudnn" in n)
