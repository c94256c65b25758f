import pytest
import torch

import bytelm
from bytelm.models.bsfin.local import ngram_hash
from bytelm.models.bsfin.model import pack_patches
from bytelm.nn.loss import byte_cross_entropy
from tests.contracts import check_static_decoder, contract_tests

CONFIGS = [
    "bsfin-tiny",
    "bsfin-tiny[patcher=fixed]",
    "bsfin-tiny[patcher=space]",
    "bsfin-tiny[scores=magnitude,to_real=magnitude]",
    "bsfin-tiny[scores=classical]",
    "bsfin-tiny[min_patch=1,max_patch=2]",
    "bsfin-tiny[qk_norm=false,mem_norm=false]",
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


def _blown_up_attention(kind: str, qk_norm: bool):
    """An interference attention with huge query/key weights and a non-identity head mixing."""
    import math
    from bytelm.models.bsfin.interference import EntangledInterferenceAttention
    torch.manual_seed(0)
    a = EntangledInterferenceAttention(32, 4, kind, qk_norm=qk_norm)
    with torch.no_grad():
        for lin in (a.q, a.k):
            for w in (lin.re.weight, lin.im.weight):
                w.normal_(0, 1e3 / math.sqrt(32))
        a.mix.copy_(10 * torch.randn(4, 4))
        if qk_norm:  # gains other than 1: the bound scales with them
            for n in (a.q_norm, a.k_norm):
                n.g_re.uniform_(-2, 2)
                n.g_im.uniform_(-2, 2)
    return a


def test_qk_norm_bounds_interference_logits():
    """|logit| <= max|g_q| max|g_k| sqrt(d/2) (quantum, magnitude) or sqrt(d) (classical) with
    qk_norm, whatever the weights; without it the same weights give far larger logits."""
    import math
    r, i = (torch.randn(2, 9, 32) for _ in range(2))
    for kind, c in (("quantum", 0.5), ("magnitude", 0.5), ("classical", 1.0)):
        a = _blown_up_attention(kind, qk_norm=True)
        gq = torch.complex(a.q_norm.g_re, a.q_norm.g_im).abs().max().item()
        gk = torch.complex(a.k_norm.g_re, a.k_norm.g_im).abs().max().item()
        bound = gq * gk * math.sqrt(c * a.Dh)
        s = a.attention_logits(r, i)
        assert s.shape == (2, 4, 9, 9)
        assert s.abs().max().item() <= bound * (1 + 1e-5) + 1e-3, (kind, s.abs().max().item(), bound)
        free = _blown_up_attention(kind, qk_norm=False).attention_logits(r, i)
        assert free.abs().max().item() > 100 * bound, kind


def test_attention_logits_are_the_scores_attend_uses():
    """softmax(attention_logits, causal) @ V == attend's output before its output map, for every
    score kind, with and without qk_norm (the diagnostic measures what the layer computes)."""
    from bytelm.models.bsfin.interference import EntangledInterferenceAttention
    r, i = (torch.randn(2, 7, 16) for _ in range(2))
    causal = torch.ones(7, 7, dtype=torch.bool).tril()
    for kind in ("quantum", "magnitude", "classical"):
        for qk_norm in (False, True):
            torch.manual_seed(1)
            a = EntangledInterferenceAttention(16, 2, kind, qk_norm=qk_norm)
            p = torch.softmax(a.attention_logits(r, i).masked_fill(~causal, float("-inf")), -1)
            _, _, vr, vi = a.project_kv(r, i, 0)
            want = [(p @ v).transpose(1, 2).reshape(2, 7, 16) for v in (vr, vi)]
            want = a.o(*want)
            got = a(r, i)
            for g, w in zip(got, want):
                torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)


def test_mem_norm_fixes_the_memory_scale():
    """With mem_norm the memories the decoder reads have rms |gain| (1 at init) however large
    to_real and mem_proj grow; without it they scale with the weights."""
    x = torch.randint(0, 256, (2, 64))
    for mem_norm in (False, True):
        torch.manual_seed(0)
        m = bytelm.create_model("bsfin-tiny", mem_norm=mem_norm).eval()
        with torch.no_grad():
            m.to_real.weight.mul_(100)
            m.mem_proj.weight.mul_(100)
            mem, _ = m.patch_memories(m.embed(x), m.boundaries(x), 32)
        rms = mem.pow(2).mean(-1).sqrt()
        if mem_norm:
            torch.testing.assert_close(rms, torch.ones_like(rms), atol=1e-4, rtol=1e-4)
        else:
            assert rms.min() > 10


def test_stability_options_add_only_undecayed_gains():
    """qk_norm and mem_norm add 1-D gains only (no weight decay in param_groups), and a
    checkpoint config without the fields builds the model without them (old checkpoints, saved
    before the fields existed, load), while a new config has them on by default."""
    from bytelm.registry import config_from_dict
    base = bytelm.create_model("bsfin-tiny", qk_norm=False, mem_norm=False)
    m = bytelm.create_model("bsfin-tiny")
    assert m.config.qk_norm and m.config.mem_norm
    new = {n for n, _ in m.named_parameters()} - {n for n, _ in base.named_parameters()}
    assert new and all(("q_norm" in n or "k_norm" in n or n.startswith("mem_norm")) for n in new), new
    decayed = {id(p) for p in m.param_groups(0.1)[0]["params"]}
    assert not any(id(p) in decayed for n, p in m.named_parameters() if n in new)
    d = base.config.to_dict()
    d.pop("qk_norm"), d.pop("mem_norm")
    assert config_from_dict(d) == base.config
    assert config_from_dict(m.config.to_dict()) == m.config


@pytest.mark.parametrize("spec", ["bsfin-tiny", "bsfin-tiny[patcher=space,scores=magnitude]",
                                  "bsfin-tiny[patcher=fixed,patch_stride=3,scores=classical]"])
def test_static_decoder_equals_full_forward(spec, one_thread):
    """Incremental patching, the complex stack once per closed patch over position tensors,
    cached memory keys/values == the full forward (logits; for the preset also greedy bytes
    past the context)."""
    check_static_decoder(spec, n=40, greedy=spec == "bsfin-tiny")


def test_complex_linear_block_weight_follows_updates():
    """The block matrix kept for inference is rebuilt after an in-place weight update."""
    from bytelm.models.bsfin.interference import ComplexLinear, complex_linear_reference
    lin = ComplexLinear(3, 2)
    r, i = torch.randn(4, 3), torch.randn(4, 3)
    with torch.no_grad():
        lin(r, i)
        lin.im.weight.add_(1.0)  # e.g. an optimizer step
        lin.double().float()  # a .to() swaps the storage, not the version
        got = lin(r, i)
    ref = complex_linear_reference(r, i, lin.re.weight, lin.im.weight)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b)
