"""optim.name=muon: Muon on hidden matrices, AdamW on the rest, as one optimizer."""
import copy

import pytest
import torch

import bytelm
from bytelm.config import OptimConfig
from bytelm.optim import build_optimizer
from bytelm.optim.muon import muon_param_names

FAMILIES = ["transformer-tiny", "agiformer-tiny", "bsfin-tiny", "hnet-tiny"]


@pytest.mark.parametrize("preset", FAMILIES)
def test_muon_takes_hidden_matrices_only(preset):
    """Every 2-D weight but the embeddings and the logits layer goes to Muon."""
    m = bytelm.create_model(preset)
    names = muon_param_names(m)
    emb = {n for n, mod in m.named_modules() if isinstance(mod, torch.nn.Embedding)}
    for n, p in m.named_parameters():
        is_emb = n.rsplit(".", 1)[0] in emb
        is_logits = p.dim() == 2 and p.shape[0] == 256 and n.startswith("head.") and (
            n in ("head.weight", "head.out.weight"))
        want = p.dim() == 2 and not is_emb and not is_logits
        assert (n in names) == want, n
    assert names  # hidden layers exist


def _loss(model, x):
    return model(x).logits.float().logsumexp(-1).mean() - model(x).logits.float()[..., 0].mean()


def test_steps_equal_separate_muon_and_adamw():
    """MuonAdamW == torch.optim.Muon on the Muon set + torch.optim.AdamW on the rest, with the
    model's groups (weight decay, lr_mult) and per-group learning rates set as the trainer does."""
    torch.manual_seed(0)
    m = bytelm.create_model("hnet-tiny", byte_lr_mult=2.0)
    ref = copy.deepcopy(m)
    cfg = OptimConfig(name="muon", lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1)
    opt = build_optimizer(m, cfg)
    names = muon_param_names(ref)
    mu_g, ad_g = [], []
    for g in ref.param_groups(cfg.weight_decay):
        mu = [p for p in g["params"] if _name(ref, p) in names]
        ad = [p for p in g["params"] if _name(ref, p) not in names]
        for lst, ps in ((mu_g, mu), (ad_g, ad)):
            if ps:
                lst.append({"params": ps, "weight_decay": g["weight_decay"], "lr": cfg.lr * g["lr_mult"]})
    ref_opts = [torch.optim.Muon(mu_g, lr=cfg.lr, momentum=0.95, adjust_lr_fn="match_rms_adamw"),
                torch.optim.AdamW(ad_g, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)]
    x = torch.randint(0, 256, (2, 64))
    for _ in range(3):
        for g in opt.param_groups:
            g["lr"] = cfg.lr * g["lr_mult"]
        for model, opts in ((m, [opt]), (ref, ref_opts)):
            for o in opts:
                o.zero_grad()
            _loss(model, x).backward()
            for o in opts:
                o.step()
    for (n, a), (_, b) in zip(m.named_parameters(), ref.named_parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=n)
    assert any("momentum_buffer" in s for s in opt.state.values())
    assert any("exp_avg" in s for s in opt.state.values())


def _name(model, p):
    return next(n for n, q in model.named_parameters() if q is p)


def test_state_dict_round_trip_continues_identically():
    torch.manual_seed(0)
    m = bytelm.create_model("transformer-tiny")
    cfg = OptimConfig(name="muon", lr=1e-2)
    opt = build_optimizer(m, cfg)
    x = torch.randint(0, 256, (2, 32))
    for _ in range(2):
        opt.zero_grad()
        _loss(m, x).backward()
        opt.step()
    m2 = copy.deepcopy(m)
    opt2 = build_optimizer(m2, cfg)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    for model, o in ((m, opt), (m2, opt2)):
        o.zero_grad()
        _loss(model, x).backward()
        o.step()
    for a, b in zip(m.parameters(), m2.parameters()):
        assert torch.equal(a, b)
