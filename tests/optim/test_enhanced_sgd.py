"""EnhancedSGD and its Q-learning controller: update math, bounds under adversarial inputs,
state/action/reward units, determinism, exact resume, one host read per window, checkpoints."""
import io
import math
import types

import pytest
import torch

from bytelm.optim import EnhancedSGD, QController, build_enhanced_sgd
from bytelm.optim import enhanced_sgd as esgd


pytestmark = pytest.mark.usefixtures("one_thread")


def _roundtrip(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def _regression(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 6, generator=g)
    y = x @ torch.randn(6, 1, generator=g) + 0.1 * torch.randn(64, 1, generator=g)
    return x, y


def _train(model, opt, x, y, steps: int, start: int = 0, clip: float = 1.0):
    """A trainer-shaped loop: loss, backward, pre-clip norm, step, observe."""
    for i in range(start, start + steps):
        xb, yb = x[(i * 8) % 64:(i * 8) % 64 + 8], y[(i * 8) % 64:(i * 8) % 64 + 8]
        loss = torch.nn.functional.mse_loss(model(xb), yb)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        opt.observe(loss=loss.detach(), grad_norm=gnorm)


# --- the update -------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_step(scale):
    """p <- p(1 - lr wd); b <- mu b + g; p <- p - lr b, with lr = scheduled lr x controller scale."""
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(5, 3))
    ctrl = QController(every=1000)
    opt = EnhancedSGD([p], lr=0.1, momentum=0.8, weight_decay=0.05, controller=ctrl)
    ctrl.lr_scale, ctrl.momentum = scale, 0.7
    ref = p.detach().clone()
    buf = torch.zeros_like(ref)
    for step in range(4):
        sched = 0.1 * (step + 1) / 4  # the trainer writes a warmup lr each step
        opt.param_groups[0]["lr"] = sched
        g = torch.randn(5, 3)
        p.grad = g.clone()
        opt.step()
        lr = sched * scale
        ref = ref * (1 - lr * 0.05)
        buf = 0.7 * buf + g
        ref = ref - lr * buf
        torch.testing.assert_close(p.detach(), ref, rtol=1e-6, atol=1e-7)
        assert opt.last_lr == pytest.approx(lr)


def test_step_without_controller_is_sgd():
    """With no controller: heavy-ball SGD (as torch.optim.SGD) plus decoupled decay."""
    torch.manual_seed(1)
    a = torch.nn.Parameter(torch.randn(4, 4))
    b = torch.nn.Parameter(a.detach().clone())
    ours = EnhancedSGD([a], lr=0.05, momentum=0.9, weight_decay=0.0)
    ref = torch.optim.SGD([b], lr=0.05, momentum=0.9)
    for _ in range(5):
        g = torch.randn(4, 4)
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    torch.testing.assert_close(a, b)
    assert not ours.observe(torch.tensor(1.0), torch.tensor(1.0))


def test_lr_max_caps_the_scheduled_lr():
    p = torch.nn.Parameter(torch.zeros(2))
    opt = EnhancedSGD([p], lr=0.1, lr_min=0.05, lr_max=0.2, controller=QController(every=10))
    opt.controller.lr_scale = 2.0
    opt.param_groups[0]["lr"] = 0.5  # a schedule above the cap
    p.grad = torch.ones(2)
    opt.step()
    assert opt.last_lr == pytest.approx(0.2)


@pytest.mark.parametrize("kw", [dict(lr=0.0), dict(lr=0.1, lr_min=0.2), dict(lr=0.1, lr_max=0.05),
                                dict(lr=0.1, momentum=1.0), dict(lr=0.1, weight_decay=-1)])
def test_bad_arguments(kw):
    with pytest.raises(ValueError):
        EnhancedSGD([torch.nn.Parameter(torch.zeros(1))], **kw)


@pytest.mark.parametrize("kw", [dict(every=1), dict(q_lr=0), dict(discount=1.0),
                                dict(epsilon=0.1, epsilon_min=0.2), dict(lr_factors=(0.5, 2.0))])
def test_bad_controller_arguments(kw):
    with pytest.raises(ValueError):
        QController(**kw)


# --- bounds -----------------------------------------------------------------------------------

@pytest.mark.parametrize("factor", [2.0, 0.5])
def test_bounds_under_compounding(factor):
    """The same action forever: the LR and momentum stop at their bounds, never beyond."""
    ctrl = QController(every=5)
    EnhancedSGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9, lr_min=0.01,
                lr_max=0.4, controller=ctrl)
    for _ in range(40):
        ctrl.apply_action(ctrl.action_index(factor, factor))
        assert 0.01 - 1e-12 <= ctrl.lr <= 0.4 + 1e-12
        assert 0.0 <= ctrl.momentum <= esgd.MOMENTUM_MAX
    assert ctrl.lr == pytest.approx(0.4 if factor > 1 else 0.01)
    assert ctrl.momentum == pytest.approx(esgd.MOMENTUM_MAX if factor > 1 else 0.0, abs=1e-9)


def test_bounds_under_adversarial_observations():
    """Pure exploration fed NaN, inf, huge spikes, zeros and negative losses: the effective LR
    stays <= lr_max, the peak LR in [lr_min, lr_max], momentum in [0, 0.999]; no exception."""
    g = torch.Generator().manual_seed(3)
    p = torch.nn.Parameter(torch.zeros(3))
    ctrl = QController(every=4, epsilon=1.0, epsilon_decay=1.0, epsilon_min=1.0, seed=5)
    opt = EnhancedSGD([p], lr=0.1, momentum=0.95, lr_min=0.02, lr_max=0.3, controller=ctrl)
    weird = [math.nan, math.inf, -math.inf, 1e30, 0.0, -5.0, 1e-30]
    for i in range(400):
        r = float(torch.rand((), generator=g))
        loss = weird[i % len(weird)] if r < 0.3 else 1.0 + r
        gn = weird[(i * 3) % len(weird)] if r > 0.7 else r * (1e6 if i % 13 == 0 else 1.0)
        p.grad = torch.ones(3)
        opt.step()
        assert opt.last_lr <= 0.3 + 1e-12
        opt.observe(torch.tensor(loss), torch.tensor(gn))
        assert 0.02 - 1e-12 <= ctrl.lr <= 0.3 + 1e-12
        assert 0.0 <= ctrl.momentum <= esgd.MOMENTUM_MAX
    assert len(ctrl.history["step"]) == 100
    assert torch.isfinite(ctrl.q).all()


# --- state, reward, Q-update ------------------------------------------------------------------

def test_q_update():
    """Q[s,a] += alpha (r + gamma max Q[s'] - Q[s,a]) on a hand-made transition."""
    ctrl = QController(q_lr=0.1, discount=0.9)
    ctrl.q[3, 2] = 0.5
    ctrl.q[7] = torch.tensor([0.0, 2.0, -1.0] + [0.0] * (ctrl.n_actions - 3), dtype=torch.float64)
    ctrl.q_update(3, 2, 1.0, 7)
    assert float(ctrl.q[3, 2]) == pytest.approx(0.5 + 0.1 * (1.0 + 0.9 * 2.0 - 0.5))


def test_state_encoding():
    for s in (0, 17, esgd.N_STATES - 1):
        assert esgd.encode_state(tuple(esgd.decode_state(s).values())) == s


def test_window_stats_and_reward():
    ctrl = QController(every=10, reward_scale=0.01, spike_penalty=0.5, nonfinite_penalty=1.0)
    ctrl.bind(0.1, 0.01, 1.0, 0.9)
    ctrl.gnorm_hist = [1.0] * 20
    ctrl.ema = ctrl.prev_smoothed = 2.0
    # loss falls to 1.9, one spike (5 > 3 x median 1), the rest at the running median
    st = ctrl.window_stats([1.9] * 10, [1.0] * 9 + [5.0])
    alpha = 2 / 11
    ema = 2.0
    for _ in range(10):
        ema += alpha * (1.9 - ema)
    assert ctrl.ema == pytest.approx(ema)
    assert st["improvement"] == pytest.approx((2.0 - ema) / 2.0)
    assert st["spikes"] == 1 and st["bad"] == 0 and st["gnorm_level"] == pytest.approx(0.0)
    assert ctrl.reward(st) == pytest.approx(math.tanh(st["improvement"] / 0.01) - 0.5 * 1.0)
    bins = ctrl.state_bins(st["trend"], st["gnorm_level"], st["cv"])
    assert bins[0] == 0  # improving fast (< -2% per window)
    assert bins[1] == 1  # grad norm level at the running median
    assert bins[3] == 2  # lr 0.1 in [0.01, 1]: log position 0.5 -> bin 2 of 4
    assert bins[4] == 2  # momentum 0.9 -> [0.9, 0.95)
    # a NaN anywhere: worst trend bin and the non-finite penalty, no Q poisoning
    st = ctrl.window_stats([1.0, math.nan] + [1.0] * 8, [1.0] * 10)
    assert st["bad"] == 1 and ctrl.state_bins(st["trend"], 0, 0)[0] == len(esgd.TREND_EDGES)
    assert ctrl.reward(st) == pytest.approx(math.tanh(0.0) - 1.0)


def test_greedy_and_ties():
    ctrl = QController(epsilon=0.0, epsilon_min=0.0)
    assert ctrl.greedy(5) == ctrl.keep_action  # all zero: keep
    a = ctrl.action_index(0.8, 2.0)
    ctrl.q[5, a] = 0.3
    assert ctrl.greedy(5) == a
    b = ctrl.action_index(1.25, 1.0)
    ctrl.q[5, b] = 0.3  # a tie: the action closer to (1, 1) wins
    assert ctrl.greedy(5) == b


def test_decisions_every_k_steps():
    x, y = _regression()
    model = torch.nn.Linear(6, 1)
    opt = EnhancedSGD(model.parameters(), lr=0.05, controller=QController(every=7, seed=1))
    _train(model, opt, x, y, 30)
    d = opt.controller.decisions()
    assert [r["step"] for r in d] == [7, 14, 21, 28]
    assert d[0]["reward"] is None and all(math.isfinite(r["reward"]) for r in d[1:])
    assert math.isnan(opt.controller.history["reward"][0])  # the state keeps NaN
    assert set(d[0]) >= {"step", "state", "state_bins", "action", "lr_factor", "horizon_factor",
                         "reward", "lr", "momentum", "epsilon"}
    assert opt.drain_decisions() == d and opt.drain_decisions() == []
    assert set(opt.log_fields()) == {"lr_effective", "lr_scale", "momentum", "q_epsilon"}


# --- determinism, resume, syncs, checkpoints --------------------------------------------------

def _run(seed: int, steps: int = 60):
    x, y = _regression()
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 1)
    opt = EnhancedSGD(model.parameters(), lr=0.05, weight_decay=0.01,
                      controller=QController(every=5, seed=seed, epsilon=0.5))
    _train(model, opt, x, y, steps)
    return model, opt


def test_determinism():
    m1, o1 = _run(seed=3)
    m2, o2 = _run(seed=3)
    assert o1.controller.history == o2.controller.history
    assert torch.equal(m1.weight, m2.weight)
    _, o3 = _run(seed=4)
    assert o3.controller.history["action"] != o1.controller.history["action"]


def test_exact_resume():
    """Stop mid-window (step 23 of K=5), save with torch.save, load with weights_only=True into a
    fresh model + optimizer, continue: decisions, Q-table and weights equal the unbroken run."""
    full_model, full_opt = _run(seed=9, steps=60)
    x, y = _regression()
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 1)
    opt = EnhancedSGD(model.parameters(), lr=0.05, weight_decay=0.01,
                      controller=QController(every=5, seed=9, epsilon=0.5))
    _train(model, opt, x, y, 23)
    saved = _roundtrip({"model": model.state_dict(), "optim": opt.state_dict()})
    model2 = torch.nn.Linear(6, 1)
    model2.load_state_dict(saved["model"])
    opt2 = EnhancedSGD(model2.parameters(), lr=0.05, weight_decay=0.01,
                       controller=QController(every=5, seed=9, epsilon=0.5))
    opt2.load_state_dict(saved["optim"])
    _train(model2, opt2, x, y, 37, start=23)
    a, b = full_opt.controller, opt2.controller
    assert str(a.history) == str(b.history)  # str: the first reward is NaN, and NaN != NaN
    assert torch.equal(a.q, b.q) and a.epsilon == b.epsilon
    assert torch.equal(a.generator.get_state(), b.generator.get_state())
    assert torch.equal(full_model.weight, model2.weight) and torch.equal(full_model.bias, model2.bias)
    # restored decisions were logged by the run that made them; only new ones are drained
    assert [d["step"] for d in opt2.drain_decisions()] == list(range(25, 61, 5))


def test_observe_reads_the_device_once_per_window(monkeypatch):
    """Between window ends observe() never reads a tensor's value; at each end exactly one
    batched read (``_to_host``) happens."""
    reads = {"n": 0}
    host = {"n": 0}
    real_to_host = esgd._to_host

    def counting_to_host(t):
        host["n"] += 1
        return real_to_host(t)
    monkeypatch.setattr(esgd, "_to_host", counting_to_host)
    for name in ("item", "tolist", "cpu", "__float__", "__bool__", "numpy"):
        real = getattr(torch.Tensor, name)

        def wrapper(self, *a, _real=real, **k):
            reads["n"] += 1
            return _real(self, *a, **k)
        monkeypatch.setattr(torch.Tensor, name, wrapper)
    ctrl = QController(every=6)
    opt = EnhancedSGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, controller=ctrl)
    for i in range(1, 31):
        before = reads["n"]
        decided = opt.observe(torch.tensor(2.0 - i / 100), torch.tensor(1.0 + (i % 3) / 10))
        assert decided == (i % 6 == 0)
        if not decided:
            assert reads["n"] == before, f"observe read a tensor at step {i}"
    assert host["n"] == 5


def test_state_dict_loads_with_weights_only():
    model, opt = _run(seed=2, steps=17)
    sd = _roundtrip(opt.state_dict())
    assert isinstance(sd["param_groups"][0]["controller"], str)
    fresh = EnhancedSGD(torch.nn.Linear(6, 1).parameters(), lr=0.05, weight_decay=0.01,
                        controller=QController(every=5, seed=2, epsilon=0.5))
    fresh.load_state_dict(sd)
    a, b = opt.controller.state_dict(), fresh.controller.state_dict()
    assert torch.equal(a["q"], b["q"]) and str(a) == str(b)
    assert "controller" not in fresh.param_groups[0]
    # a controller-less optimizer reads the same file
    EnhancedSGD(torch.nn.Linear(6, 1).parameters(), lr=0.05).load_state_dict(sd)


def test_trainer_checkpoint_roundtrip(tmp_path):
    """Through the trainer's own path: torch.distributed.checkpoint full state dicts,
    save_training (torch.save) and load_training (weights_only=True)."""
    from bytelm.registry import create_model, preset_config
    from bytelm.train import checkpoint as ckpt_io
    from bytelm.train.loop import _full_state, _load_optimizer

    def make():
        torch.manual_seed(0)
        m = create_model(preset_config("transformer-tiny"))
        return m, EnhancedSGD(m.param_groups(0.01), lr=0.1, weight_decay=0.01,
                              controller=QController(every=3, seed=4, epsilon=0.6))
    model, opt = make()
    for _ in range(8):
        x = torch.randint(0, 256, (2, 33))
        loss = torch.nn.functional.cross_entropy(model(x[:, :-1]).logits.reshape(-1, 256),
                                                 x[:, 1:].reshape(-1))
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        opt.zero_grad()
        opt.observe(loss.detach(), gn)
    msd, osd = _full_state(model, opt, None)
    ckpt_io.save_training(tmp_path / "ck", model, opt, {"step": 8}, msd, osd)
    _, osd2, _, weights = ckpt_io.load_training(tmp_path / "ck")
    model2, opt2 = make()
    ckpt_io.load_weights_into(model2, weights, "ck")
    _load_optimizer(model2, opt2, osd2)
    a, b = opt.controller.state_dict(), opt2.controller.state_dict()
    assert str(a) == str(b) and len(b["history"]["step"]) == 2 and len(b["pending_loss"]) == 2
    for p, q in zip(opt.state.values(), opt2.state.values()):
        assert torch.equal(p["momentum_buffer"], q["momentum_buffer"])


def test_build_enhanced_sgd():
    cfg = types.SimpleNamespace(lr=0.2, momentum=0.9, weight_decay=0.01, lr_min=0.0, lr_max=1.0,
                                q_every=25, q_lr=0.2, q_discount=0.8, q_epsilon=0.1,
                                q_epsilon_decay=0.99, q_epsilon_min=0.01, q_seed=7)
    opt = build_enhanced_sgd(torch.nn.Linear(2, 2).parameters(), cfg)
    c = opt.controller
    assert (c.every, c.q_lr, c.discount, c.seed, c.lr_min, c.lr_max) == (25, 0.2, 0.8, 7, 0.02, 1.0)
    cfg.q_every = 0
    assert build_enhanced_sgd(torch.nn.Linear(2, 2).parameters(), cfg).controller is None
