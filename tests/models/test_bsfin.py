import torch

import bytelm
from bytelm.models.bsfin.local import ngram_hash
from bytelm.models.bsfin.model import pack_patches
from bytelm.nn.loss import byte_cross_entropy
from tests.contracts import contract_tests

CONFIGS = [
    "bsfin-tiny",
    "bsfin-tiny[patcher=fixed]",
    "bsfin-tiny[patcher=space]",
    "bsfin-tiny[scores=magnitude,to_real=magnitude]",
    "bsfin-tiny[scores=classical]",
    "bsfin-tiny[min_patch=1,max_patch=2]",
]
test_contract, test_save_load = contract_tests(CONFIGS)


def test_param_count_near_readme():
    m = bytelm.create_model("bsfin-35m")
    assert 30e6 < m.n_params() < 40e6, m.n_params()


def test_ngram_hash_is_causal_and_order_sensitive():
    x = torch.tensor([[1, 2, 3, 4, 5, 6]])
    y = x.clone()
    y[0, 5] = 9
    assert torch.equal(ngram_hash(x, 3, 1000)[:, :5], ngram_hash(y, 3, 1000)[:, :5])
    a = ngram_hash(torch.tensor([[7, 8, 9]]), 3, 10**6)[0, -1]
    b = ngram_hash(torch.tensor([[9, 8, 7]]), 3, 10**6)[0, -1]
    assert a != b


def test_pack_patches_matches_naive():
    ends = torch.tensor([[0, 1, 0, 0, 1, 1, 0, 0], [1, 0, 0, 0, 0, 0, 0, 1]], dtype=torch.bool)
    pid, off, closed, end_pos = pack_patches(ends, n_slots=8, max_len=16)
    assert pid.tolist() == [[0, 0, 1, 1, 1, 2, 3, 3], [0, 1, 1, 1, 1, 1, 1, 1]]
    assert off.tolist() == [[0, 1, 0, 1, 2, 0, 0, 1], [0, 0, 1, 2, 3, 4, 5, 6]]
    assert closed.tolist() == [[True] * 6 + [False] * 2, [True] * 8]
    assert end_pos[0, :3].tolist() == [1, 4, 5] and end_pos[0, 3].item() == 8
    assert end_pos[1, :2].tolist() == [0, 7]


def test_many_patches_grads_finite_and_reach_every_complex_group():
    torch.manual_seed(0)
    m = bytelm.create_model("bsfin-tiny", min_patch=1, max_patch=2).train()
    x = torch.randint(0, 256, (2, 97))
    out = m(x[:, :-1])
    assert out.stats["patches_per_row"] > 40
    byte_cross_entropy(out.logits, x[:, 1:]).backward()
    groups = {}
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if name.startswith(("layers.", "to_complex", "pos.", "cnorm", "to_real")):
            key = ".".join(n for n in name.split(".") if not n.isdigit())
            groups[key] = groups.get(key, 0.0) + p.grad.abs().sum().item()
    dead = [k for k, v in groups.items() if v == 0]
    assert not dead, f"no gradient reaches {dead}"
    assert any("phi_q" in k for k in groups) and any("mix" in k for k in groups)


def test_entropy_model_patcher(tmp_path):
    small = bytelm.create_model("transformer-tiny")
    small.save(tmp_path / "lm")
    from tests.contracts import check_causality, check_cached_equals_full
    spec = f"bsfin-tiny[patcher=entropy-model,patcher_model={tmp_path / 'lm'},patch_threshold=7.9]"
    check_causality(spec)
    check_cached_equals_full(spec)


def test_complex_linear_block_form_equals_four_matmuls():
    """The one-GEMM block form equals the four-matmul reference: outputs and all gradients."""
    from bytelm.models.bsfin.interference import ComplexLinear, complex_linear_reference
    torch.manual_seed(0)
    lin = ComplexLinear(6, 5).double()
    r, i = (torch.randn(3, 7, 6, dtype=torch.float64, requires_grad=True) for _ in range(2))
    out = lin(r, i)
    ref = complex_linear_reference(r, i, lin.re.weight, lin.im.weight)
    g = [torch.randn_like(o) for o in ref]
    for o, e in zip(out, ref):
        assert o.shape == e.shape == (3, 7, 5)
        torch.testing.assert_close(o, e)
    got = torch.autograd.grad(out, (r, i, lin.re.weight, lin.im.weight), g)
    want = torch.autograd.grad(ref, (r, i, lin.re.weight, lin.im.weight), g)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
