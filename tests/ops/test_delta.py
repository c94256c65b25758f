"""bytelm.ops.delta: chunk against the naive fp32 loop (outputs, states, every grad), the step,
and the AGIFORMER memory with memory_rule="delta"."""
import math

import pytest
import torch
import torch.nn.functional as F

from bytelm.ops.delta import chunk_delta, delta, delta_step, naive_delta, select_impl
from tests.ops import assert_close, assert_same

ALPHAS = (0.1, 0.5, 1.0)


def make_inputs(B, T, H, K, V, alpha, lambda_min, with_state, dtype=torch.float32, seed=42):
    """q, k (unit rows), v, g = log(alpha) + log(lmin + (1 - lmin) sigmoid), beta in (0, 1), h0."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(B, T, H, K, generator=gen)
    k = F.normalize(torch.randn(B, T, H, K, generator=gen), dim=-1)
    v = torch.randn(B, T, H, V, generator=gen)
    s = torch.sigmoid(torch.randn(B, T, H, generator=gen))
    g = math.log(alpha) + torch.log(lambda_min + (1 - lambda_min) * s)
    beta = torch.sigmoid(2 * torch.randn(B, T, H, generator=gen))
    h0 = torch.randn(B, H, K, V, generator=gen) if with_state else None
    return [x.to(dtype) for x in (q, k, v)] + [g, beta, h0]


def run(fn, q, k, v, g, beta, h0, seed=1, **kw):
    """Forward with fresh leaves, backward of a random projection; returns outputs and grads."""
    leaves = [x.detach().clone().requires_grad_() if x is not None else None
              for x in (q, k, v, g, beta, h0)]
    o, s = fn(*leaves[:5], scale=0.5, initial_state=leaves[5], output_final_state=True, **kw)
    gen = torch.Generator().manual_seed(seed)
    do = torch.randn(o.shape, generator=gen)
    ds = torch.randn(s.shape, generator=gen)
    ((o.float() * do).sum() + (s * ds).sum()).backward()
    grads = {n: x.grad for n, x in zip(("q", "k", "v", "g", "beta", "h0"), leaves) if x is not None}
    return o, s, grads


@pytest.mark.parametrize("with_state", [False, True], ids=["h0=None", "h0"])
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("T", [1, 63, 64, 65, 200])
def test_chunk(T, alpha, with_state):
    inputs = make_inputs(2, T, 2, 8, 6, alpha, 0.9, with_state)
    ref = run(naive_delta, *inputs)
    for chunk_size in (16, 64):
        assert_same(run(chunk_delta, *inputs, chunk_size=chunk_size), ref, 1e-5)


def test_chunk_bf16():
    """bf16 inputs: o in bf16, state fp32, equal to the fp32 loop on the same rounded inputs."""
    q, k, v, g, beta, h0 = make_inputs(2, 100, 2, 16, 16, 0.5, 0.9, True, dtype=torch.bfloat16)
    o, s = chunk_delta(q, k, v, g, beta, scale=0.5, initial_state=h0, output_final_state=True)
    assert o.dtype == torch.bfloat16 and s.dtype == torch.float32
    ref = run(naive_delta, q.float(), k.float(), v.float(), g, beta, h0)
    assert_same(run(chunk_delta, q, k, v, g, beta, h0), ref, 1e-2)


@pytest.mark.parametrize("with_state", [False, True], ids=["h0=None", "h0"])
def test_delta_step(with_state):
    q, k, v, g, beta, h0 = make_inputs(2, 37, 3, 8, 5, 0.5, 0.9, with_state)
    o_ref, s_ref = naive_delta(q, k, v, g, beta, scale=0.5, initial_state=h0,
                               output_final_state=True)
    state, outs = h0, []
    for t in range(q.shape[1]):
        o_t, state = delta_step(q[:, t], k[:, t], v[:, t], g[:, t], beta[:, t], state, scale=0.5)
        outs.append(o_t)
    assert_close(torch.stack(outs, 1), o_ref, 1e-6, "o")
    assert_close(state, s_ref, 1e-6, "state")
    assert state.dtype == torch.float32


@pytest.mark.parametrize("split", [1, 64, 77])
def test_chunk_equivariance(split):
    """Two calls with the state carried equal one call (outputs, state and grads)."""
    inputs = make_inputs(2, 150, 2, 8, 6, 0.99, 0.9, True)

    def two_halves(q, k, v, g, beta, scale, initial_state, output_final_state, chunk_size=64):
        o1, s1 = chunk_delta(q[:, :split], k[:, :split], v[:, :split], g[:, :split],
                             beta[:, :split], scale, initial_state, True, chunk_size)
        o2, s2 = chunk_delta(q[:, split:], k[:, split:], v[:, split:], g[:, split:],
                             beta[:, split:], scale, s1, output_final_state, chunk_size)
        return torch.cat([o1, o2], 1), s2

    assert_same(run(two_halves, *inputs), run(chunk_delta, *inputs), 1e-5)


def test_chunk_causal():
    """Changing step t + 1.. never changes outputs <= t."""
    q, k, v, g, beta, _ = make_inputs(1, 130, 2, 8, 6, 0.9, 0.9, False)
    o, _ = chunk_delta(q, k, v, g, beta)
    for t in (0, 63, 64, 100):
        v2, k2 = v.clone(), k.clone()
        v2[:, t + 1:] += 1.0
        k2[:, t + 1:] = F.normalize(torch.randn_like(k2[:, t + 1:]), dim=-1)
        o2, _ = chunk_delta(q, k2, v2, g, beta)
        assert torch.equal(o2[:, :t + 1], o[:, :t + 1])
        assert not torch.equal(o2[:, t + 1:], o[:, t + 1:])


def test_recall_overwrites():
    """beta = 1, g = 0, orthonormal keys: reading key i returns exactly its LAST value (a Hebbian
    memory would return the sum of both writes)."""
    K = 4  # key and value width
    keys = torch.eye(K)
    k = torch.stack([keys[0], keys[1], keys[0]])[None, :, None]  # (1, 3, 1, K)
    v = torch.tensor([[1.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 3.0, 0]])[None, :, None]
    g, beta = torch.zeros(1, 3, 1), torch.ones(1, 3, 1)
    _, S = chunk_delta(k, k, v, g, beta, output_final_state=True)
    assert torch.allclose(keys[0] @ S[0, 0], v[0, 2, 0]) and torch.allclose(keys[1] @ S[0, 0], v[0, 1, 0])


def test_chunk_stable():
    """alpha = 0.1 over 4096 steps, bf16 autocast: finite outputs, state and grads."""
    q, k, v, g, beta, _ = make_inputs(1, 4096, 2, 16, 16, 0.1, 0.9, False)
    leaves = [x.requires_grad_() for x in (q, k, v, g, beta)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        o, s = delta(*leaves, scale=0.25, output_final_state=True, impl="chunk")
    (o.float().square().sum() + s.sum()).backward()
    for x in [o, s] + [x.grad for x in leaves]:
        assert torch.isfinite(x).all()
    with torch.no_grad():
        o_ref, s_ref = naive_delta(*(x.float() for x in (q, k, v, g, beta)), scale=0.25,
                                   output_final_state=True)
    assert_close(o.float(), o_ref, 1e-5, "o")
    assert_close(s, s_ref, 1e-5, "state")


def test_public_api_cpu():
    q, k, v, g, beta, h0 = make_inputs(1, 20, 2, 4, 3, 0.5, 0.9, True)
    assert select_impl("auto", "cpu") == "chunk"
    o_auto, s_auto = delta(q, k, v, g, beta, initial_state=h0, output_final_state=True)
    o_naive, s_naive = delta(q, k, v, g, beta, initial_state=h0, output_final_state=True,
                             impl="naive")
    assert_close(o_auto, o_naive, 1e-5, "o")
    assert_close(s_auto, s_naive, 1e-5, "state")
    assert delta(q, k, v, g, beta)[1] is None
    for bad in ("triton", "fast"):
        with pytest.raises(ValueError):
            delta(q, k, v, g, beta, impl=bad)


# the family contracts of agiformer-tiny[memory_rule=delta] run in tests/models/test_agiformer.py


def test_agiformer_memory_rule():
    import bytelm
    from bytelm.errors import UserError
    heb = bytelm.create_model("agiformer-tiny")
    dlt = bytelm.create_model("agiformer-tiny", memory_rule="delta")
    # the delta rule adds only the beta projection; the Hebbian model's weights are unchanged
    extra = set(dlt.state_dict()) - set(heb.state_dict())
    assert extra == {"memory.beta.weight", "memory.beta.bias"}
    assert set(heb.state_dict()) <= set(dlt.state_dict())
    with pytest.raises(UserError):
        bytelm.create_model("agiformer-tiny", memory_rule="oja")
