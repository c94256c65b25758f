"""bytelm.ops.swa: blocked and flex against the full masked softmax (outputs and grads)."""
import pytest
import torch

from bytelm.ops.swa import (blocked_sliding_window_attention, flex_sliding_window_attention,
                            naive_sliding_window_attention, select_impl, sliding_window_attention)
from tests.ops import assert_close


def run(fn, q, k, v, window, seed=1):
    leaves = [x.detach().clone().requires_grad_() for x in (q, k, v)]
    o = fn(*leaves, window)
    do = torch.randn(o.shape, generator=torch.Generator().manual_seed(seed)).to(o.device)
    (o.float() * do).sum().backward()
    return o, [x.grad for x in leaves]


def make_inputs(T, B=2, H=3, D=16, device="cpu", dtype=torch.float32):
    gen = torch.Generator().manual_seed(42)
    return [torch.randn(B, H, T, D, generator=gen).to(device=device, dtype=dtype) for _ in "qkv"]


def assert_same(res, ref, tol):
    assert_close(res[0].float(), ref[0].float(), tol, "o")
    for name, a, b in zip(("dq", "dk", "dv"), res[1], ref[1]):
        assert_close(a.float(), b.float(), tol, name)


@pytest.mark.parametrize("window", [1, 4, 16, 128])
@pytest.mark.parametrize("T", [1, 5, 128, 300])
def test_blocked(T, window):
    q, k, v = make_inputs(T)
    assert_same(run(blocked_sliding_window_attention, q, k, v, window),
                run(naive_sliding_window_attention, q, k, v, window), 1e-5)


def test_naive_window():
    """The reference itself: W = 1 returns v; W >= T is causal SDPA."""
    q, k, v = make_inputs(20)
    assert_close(naive_sliding_window_attention(q, k, v, 1), v, 1e-6, "W=1")
    sdpa = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert_close(naive_sliding_window_attention(q, k, v, 50), sdpa, 1e-5, "W>=T")


def test_public_api_cpu():
    q, k, v = make_inputs(33)
    assert select_impl("auto", "cpu") == "chunk"
    for impl in ("auto", "naive", "chunk", "blocked"):
        o = sliding_window_attention(q, k, v, 8, impl=impl)
        assert_close(o, naive_sliding_window_attention(q, k, v, 8), 1e-5, impl)
    assert sliding_window_attention(q.bfloat16(), k, v, 8).dtype == torch.bfloat16
    with pytest.raises(ValueError):
        sliding_window_attention(q, k, v, 0)
    with pytest.raises(ValueError):
        sliding_window_attention(q, k, v, 8, impl="flex")


@pytest.mark.gpu
@pytest.mark.parametrize("T,window", [(1, 4), (300, 16), (1000, 128), (2048, 128)])
def test_flex(T, window):
    assert select_impl("triton", "cuda") == "triton", "flex_attention is not importable"
    q, k, v = make_inputs(T, D=64, device="cuda", dtype=torch.bfloat16)
    ref = run(naive_sliding_window_attention, q.float(), k.float(), v.float(), window)
    res = run(flex_sliding_window_attention, q, k, v, window)
    assert res[0].dtype == torch.bfloat16
    assert_same(res, ref, 2e-2)
    assert_same(run(blocked_sliding_window_attention, q, k, v, window), ref, 2e-2)
