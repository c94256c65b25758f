"""BatchedMuon (same-shaped matrices stacked) == torch.optim.Muon: updates, momentum states, the
Newton-Schulz output itself, and checkpoints that load across the two."""
import copy

import pytest
import torch
from torch.optim._muon import _zeropower_via_newtonschulz

import bytelm
from bytelm.config import OptimConfig
from bytelm.optim import build_optimizer
from bytelm.optim.batched_muon import BatchedMuon, newton_schulz_batched, newton_schulz_flops

COEF = (3.4445, -4.7750, 2.0315)


@pytest.mark.parametrize("shape", [(8, 8), (6, 16), (16, 6)])
def test_newton_schulz_batched_equals_reference(shape):
    torch.manual_seed(0)
    g = torch.randn(3, *shape)
    got = newton_schulz_batched(g, COEF, 5, 1e-7)
    want = torch.stack([_zeropower_via_newtonschulz(x, COEF, 5, 1e-7) for x in g])
    assert got.shape == want.shape and got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want.float(), rtol=0, atol=2e-2)
    # and it orthogonalises: singular values within the quintic's band, not the input's
    s = torch.linalg.svdvals(got.float())
    assert s.max() < 1.5 and s.min() > 0.3, s


def test_flops_hand_count():
    assert newton_schulz_flops((4, 6), steps=1) == 4 * 16 * 6 + 2 * 64
    assert newton_schulz_flops((6, 4), steps=2) == 2 * (4 * 16 * 6 + 2 * 64)


def _params(seed):
    torch.manual_seed(seed)
    shapes = [(8, 8), (8, 8), (6, 16), (16, 6), (8, 8)]
    return [torch.nn.Parameter(torch.randn(*s)) for s in shapes]


@pytest.mark.parametrize("nesterov", [True, False])
def test_steps_equal_torch_muon(nesterov):
    """Three steps with two groups (different lr and weight decay): parameters within bf16
    rounding of the update, momentum buffers exactly."""
    a, b = _params(0), _params(0)
    kw = dict(momentum=0.9, nesterov=nesterov, adjust_lr_fn="match_rms_adamw")
    groups = lambda ps: [{"params": ps[:3], "lr": 0.02, "weight_decay": 0.1},  # noqa: E731
                         {"params": ps[3:], "lr": 0.01, "weight_decay": 0.0}]
    ref, got = torch.optim.Muon(groups(a), **kw), BatchedMuon(groups(b), **kw)
    for step in range(3):
        torch.manual_seed(10 + step)
        gs = [torch.randn_like(p) for p in a]
        for p, q, g in zip(a, b, gs):
            p.grad, q.grad = g.clone(), g.clone()
        ref.step()
        got.step()
    for p, q in zip(a, b):
        torch.testing.assert_close(q, p, rtol=0, atol=2e-3)
        torch.testing.assert_close(got.state[q]["momentum_buffer"], ref.state[p]["momentum_buffer"],
                                   rtol=0, atol=0)


def test_trainer_option_and_checkpoint_cross_load():
    """optim.muon_impl=batched reaches MuonAdamW; a state dict of one impl loads into the other
    and the next step agrees."""
    torch.manual_seed(0)
    m = bytelm.create_model("transformer-tiny")
    m2 = copy.deepcopy(m)
    cfg = OptimConfig(name="muon", lr=1e-2, weight_decay=0.1)
    o_t = build_optimizer(m, cfg)
    o_b = build_optimizer(m2, OptimConfig(name="muon", lr=1e-2, weight_decay=0.1, muon_impl="batched"))
    assert isinstance(o_b._muon, BatchedMuon) and not isinstance(o_t._muon, BatchedMuon)
    x = torch.randint(0, 256, (2, 32))
    for model, opt in ((m, o_t), (m2, o_b)):
        model(x).logits.float().mean().backward()
        opt.step()
        opt.zero_grad()
    o_b.load_state_dict(copy.deepcopy(o_t.state_dict()))
    m2.load_state_dict(m.state_dict())
    for model, opt in ((m, o_t), (m2, o_b)):
        model(x).logits.float().pow(2).mean().backward()
        opt.step()
    for (n, p), q in zip(m.named_parameters(), m2.parameters()):
        torch.testing.assert_close(q, p, rtol=0, atol=2e-3, msg=n)
    with pytest.raises(ValueError, match="muon impl"):
        from bytelm.optim.muon import MuonAdamW
        MuonAdamW(m.param_groups(0.1), {id(next(m.parameters()))}, 1e-3, (0.9, 0.95), 1e-8, impl="fast")
