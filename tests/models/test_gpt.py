import pytest
import torch

import bytelm
from bytelm.errors import UserError
from tests.contracts import check_static_decoder, contract_tests

test_contract, test_save_load = contract_tests(["transformer-tiny"])


def test_param_count_30m():
    m = bytelm.create_model("transformer-30m")
    # the preset is the ~30M baseline for agiformer-31m: keep it within 5% of 30M
    assert abs(m.n_params() - 30e6) / 30e6 < 0.05
    assert m.n_params() == sum(p.numel() for p in m.parameters())


def test_overrides_and_validation():
    m = bytelm.create_model("transformer-tiny", n_layers=3)
    assert len(m.blocks) == 3
    with pytest.raises(UserError, match="n_heads"):
        bytelm.create_model("transformer-tiny", n_heads=3)
    with pytest.raises(UserError, match="did you mean"):
        bytelm.create_model("transformer-tiny", n_layer=3)


def test_longer_than_context_is_refused():
    m = bytelm.create_model("transformer-tiny")
    with pytest.raises(ValueError, match="context"):
        m(torch.zeros(1, m.config.context + 1, dtype=torch.long))


def test_weight_decay_groups():
    m = bytelm.create_model("transformer-tiny")
    decay, no_decay = m.param_groups(0.1)
    names = {id(p): n for n, p in m.named_parameters()}
    assert all(p.dim() == 2 for p in decay["params"])
    assert not any("embed" in names[id(p)] or "norm" in names[id(p)] for p in decay["params"])
    assert any("embed" in names[id(p)] for p in no_decay["params"])
    assert sum(p.numel() for g in (decay, no_decay) for p in g["params"]) == m.n_params()


def test_residual_init_scaled():
    m = bytelm.create_model("transformer-tiny", init_std=0.02)
    proj = m.blocks[0].attn.proj.weight.std().item()
    qkv = m.blocks[0].attn.qkv.weight.std().item()
    assert proj < qkv * 0.8


def test_static_decoder_equals_full_forward(one_thread):
    """The static KV cache + single-byte step (position tensor, masks) == the full forward,
    and its greedy bytes == full recomputation past the context (cache rebuilt)."""
    check_static_decoder("transformer-tiny")


def test_static_decoder_compiled_equals_full_forward(one_thread):
    """torch.compile'd (CPU, default mode: one graph for every position) it still equals."""
    from torch._dynamo.utils import counters
    torch._dynamo.reset()
    counters.clear()
    check_static_decoder("transformer-tiny[n_layers=1]", compile="default", n=12)
    # one graph for every position (what a CUDA graph replays), and one for the greedy block
    assert counters["stats"]["unique_graphs"] == 2
    torch._dynamo.reset()


def test_static_decoder_matmul_attention_equals_full_forward(one_thread, monkeypatch):
    """Reading the fixed-shape caches with two matmuls and a masked softmax
    (StaticKVCache.attention = "matmul") still equals the full forward."""
    from bytelm.nn.static_cache import StaticKVCache
    monkeypatch.setattr(StaticKVCache, "attention", "matmul")
    check_static_decoder("transformer-tiny")


def test_masked_decode_attention_equals_sdpa():
    """masked_decode_attention == sdpa with the same bool mask (per-row masks too)."""
    from bytelm.nn.attention import masked_decode_attention, sdpa
    g = torch.Generator().manual_seed(0)
    q = torch.randn(3, 2, 1, 8, generator=g)
    k, v = torch.randn(2, 3, 2, 10, 8, generator=g)
    mask = torch.arange(10)[None, None, None] <= torch.tensor([2, 5, 9])[:, None, None, None]
    ref = sdpa(q, k, v, attn_mask=mask)
    torch.testing.assert_close(masked_decode_attention(q, k, v, mask), ref, atol=1e-6, rtol=1e-5)
    # a masked-out key changes nothing; a visible one does
    k2 = k.clone()
    k2[:, :, 4] += 1.0  # row 0 reads keys <= 2, row 1 keys <= 5
    torch.testing.assert_close(masked_decode_attention(q, k2, v, mask)[0], ref[0])
    assert not torch.allclose(masked_decode_attention(q, k2, v, mask)[1], ref[1])
