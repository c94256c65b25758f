"""The fixed-shape KV cache's write: the same slots as the scatter reference, and a compiled
write that touches the new entries only (no pass over the whole buffer)."""
import pytest
import torch

from bytelm.nn.static_cache import StaticKVCache, write_slots


def scatter_reference(buf, at, x):
    B, H, L, D = x.shape
    idx = at.expand(B, L)[:, None, :, None].expand(B, H, L, D)
    return buf.scatter(2, idx, x.to(buf.dtype))


@pytest.mark.parametrize("rows_own_pos", [False, True])
def test_write_slots_equals_scatter(rows_own_pos):
    g = torch.Generator().manual_seed(0)
    B, H, C, D, L = 3, 2, 9, 4, 2
    buf = torch.randn(B, H, C, D, generator=g)
    x = torch.randn(B, H, L, D, generator=g)
    pos = torch.tensor([0, 3, 7]) if rows_own_pos else torch.tensor(4)
    at = pos.reshape(-1, 1) + torch.arange(L)
    want = scatter_reference(buf, at, x)
    write_slots(buf, at, x)
    torch.testing.assert_close(buf, want, rtol=0, atol=0)


def test_append_returns_written_buffers_and_mask():
    B, H, C, D = 2, 1, 5, 3
    cache = StaticKVCache(torch.zeros(B, H, C, D), torch.zeros(B, H, C, D), torch.tensor([1, 3]))
    k = torch.ones(B, H, 1, D)
    keys, values, mask = cache.append(k, 2 * k)
    assert keys[0, 0, 1].eq(1).all() and keys[1, 0, 3].eq(1).all()
    assert keys.sum() == 2 * D and values.sum() == 4 * D
    assert mask.shape == (B, 1, 1, C)
    assert mask[0, 0, 0].tolist() == [True, True, False, False, False]
    assert mask[1, 0, 0].tolist() == [True, True, True, True, False]


def test_compiled_append_writes_in_place():
    """Under torch.compile the write must not copy the buffer: the generated code holds no
    scatter over it and no copy back (scatter_ on a graph input compiles to both)."""
    from torch._inductor.utils import run_and_get_code

    B, H, C, D = 2, 2, 64, 8
    cache = StaticKVCache(torch.zeros(B, H, C, D), torch.zeros(B, H, C, D), torch.tensor(3))

    def step(q, k, v):
        keys, values, mask = cache.append(k, v)
        return torch.nn.functional.scaled_dot_product_attention(q, keys, values, attn_mask=mask)

    torch._dynamo.reset()
    q, k, v = (torch.randn(B, H, 1, D) for _ in range(3))
    with torch.no_grad():  # as decoding runs
        out, codes = run_and_get_code(torch.compile(step, backend="inductor"), q, k, v)
    code = "\n".join(codes)
    assert "scatter" not in code and "fused_copy_" not in code, code[:2000]
    torch.testing.assert_close(cache.k[:, :, 3:4], k)
    torch.testing.assert_close(cache.k[:, :, :3], torch.zeros(B, H, 3, D))
    torch._dynamo.reset()
    cache.k.zero_(), cache.v.zero_()
    with torch.no_grad():
        want = step(q, k, v)
    torch.testing.assert_close(out, want)
