"""bytelm.ops.swa.flex: the sliding-window BlockMask built from block indices equals
create_block_mask's, and flex_attention on CPU with it equals the blocked form."""
import warnings

import pytest
import torch

flex_attention_mod = pytest.importorskip("torch.nn.attention.flex_attention")

from bytelm.ops.swa.blocked import blocked_sliding_window_attention  # noqa: E402
from bytelm.ops.swa.flex import _block_mask  # noqa: E402
from tests.ops import assert_close  # noqa: E402


def reference_mask(T, W):
    def sliding_window(b, h, q_idx, kv_idx):
        return (kv_idx <= q_idx) & (q_idx - kv_idx < W)

    return flex_attention_mod.create_block_mask(sliding_window, B=None, H=None, Q_LEN=T, KV_LEN=T,
                                                 device="cpu")


def assert_same_lists(num, idx, num_ref, idx_ref, name):
    """Same block count per row and the same set of block indices among the first count."""
    assert num.shape == num_ref.shape, name
    assert torch.equal(num, num_ref), f"{name}: counts {num.flatten().tolist()} != {num_ref.flatten().tolist()}"
    assert idx.shape == idx_ref.shape, name
    rows = idx.reshape(-1, idx.shape[-1])
    rows_ref = idx_ref.reshape(-1, idx_ref.shape[-1])
    for r, (n, row, row_ref) in enumerate(zip(num.flatten().tolist(), rows, rows_ref)):
        got, want = sorted(row[:n].tolist()), sorted(row_ref[:n].tolist())
        assert got == want, f"{name} row {r}: {got} != {want}"


@pytest.mark.parametrize("T,W", [(1000, 64), (1024, 512), (384, 1), (300, 1000), (1, 1), (128, 128),
                                 (129, 128), (300, 300), (1000, 129), (1000, 255), (1000, 257),
                                 (2048, 200), (640, 640)])
def test_block_mask_matches_create_block_mask(T, W):
    m, ref = _block_mask(T, W, "cpu"), reference_mask(T, W)
    assert m.shape == ref.shape == (1, 1, T, T)
    assert tuple(m.BLOCK_SIZE) == tuple(ref.BLOCK_SIZE) == (128, 128)
    assert_same_lists(m.kv_num_blocks, m.kv_indices, ref.kv_num_blocks, ref.kv_indices, "kv")
    assert_same_lists(m.full_kv_num_blocks, m.full_kv_indices,
                      ref.full_kv_num_blocks, ref.full_kv_indices, "full_kv")
    assert m.q_num_blocks is not None and m.full_q_num_blocks is not None
    assert_same_lists(m.q_num_blocks, m.q_indices, ref.q_num_blocks, ref.q_indices, "q")
    assert_same_lists(m.full_q_num_blocks, m.full_q_indices,
                      ref.full_q_num_blocks, ref.full_q_indices, "full_q")
    assert torch.equal(m.to_dense(), ref.to_dense())
    # the mask_mod is the window itself
    q_idx, kv_idx = torch.arange(T)[:, None], torch.arange(T)[None, :]
    assert torch.equal(m.mask_mod(0, 0, q_idx, kv_idx), (kv_idx <= q_idx) & (q_idx - kv_idx < W))


def test_block_mask_long_sequence():
    """T = 65536, W = 1024 (8 blocks): built without a T x T mask; every row past the first
    eight has the diagonal and the 8th-previous block partial and the 7 between full."""
    m = _block_mask(65536, 1024, "cpu")
    assert m.shape == (1, 1, 65536, 65536)
    n = 65536 // 128
    assert m.kv_indices.shape == (1, 1, n, n) and m.kv_indices.dtype == torch.int32
    assert m.kv_num_blocks[0, 0, 8:].eq(2).all() and m.full_kv_num_blocks[0, 0, 8:].eq(7).all()
    assert m.kv_num_blocks[0, 0, :8].eq(1).all()
    assert m.full_kv_num_blocks[0, 0, :8].tolist() == list(range(8))
    i = 300
    assert sorted(m.kv_indices[0, 0, i, :2].tolist()) == [i - 8, i]
    assert sorted(m.full_kv_indices[0, 0, i, :7].tolist()) == list(range(i - 7, i))


def _inputs(T, D=16):
    gen = torch.Generator().manual_seed(3)
    return [torch.randn(2, 3, T, D, generator=gen) for _ in "qkv"]


@pytest.mark.parametrize("T,W", [(300, 64), (300, 300)])
def test_flex_eager_cpu_matches_blocked(T, W):
    """Eager flex_attention evaluates the mask_mod densely (it does not read the block lists),
    so this checks the mask_mod and the BlockMask's lengths; the compiled test below reads them."""
    q, k, v = _inputs(T)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "called without torch.compile()"
        o = flex_attention_mod.flex_attention(q, k, v, block_mask=_block_mask(T, W, "cpu"))
    assert_close(o, blocked_sliding_window_attention(q, k, v, W), 1e-5, "o")


@pytest.mark.slow
@pytest.mark.parametrize("T,W", [(300, 64), (300, 300)])
def test_flex_compiled_cpu_matches_blocked(T, W):
    """Compiled flex_attention on CPU skips blocks not listed and skips the mask_mod on full
    blocks, so a wrong partial/full list changes its output (W = 300 has a full block)."""
    q, k, v = _inputs(T)
    # no_grad: conftest's NaN-filling torch.empty would fill_ inductor's requires_grad buffers
    with torch.no_grad():
        o = torch.compile(flex_attention_mod.flex_attention)(q, k, v, block_mask=_block_mask(T, W, "cpu"))
    assert_close(o, blocked_sliding_window_attention(q, k, v, W), 1e-5, "o")
