"""The one training step (bytelm.train.step): what it computes, and that it is the only one."""
import ast
import contextlib
from pathlib import Path

import pytest
import torch
from torch import nn

from bytelm.models.base import ModelOutput
from bytelm.nn.loss import byte_cross_entropy
from bytelm.optim import EnhancedSGD, FeedbackOptimizer
from bytelm.optim.feedback import drain_decisions, log_fields, wants_feedback
from bytelm.train.step import MicroLoss, StepConfig, TrainStep, set_lr

SRC = Path(__file__).resolve().parents[2] / "src" / "bytelm"
STEP = SRC / "train" / "step.py"


class TinyLM(nn.Module):
    """Embedding -> tanh -> logits: (B, T) ids -> ModelOutput(logits (B, T, 256)); aux_loss is
    ``aux_weight`` * mean squared hidden state (a differentiable aux term)."""

    def __init__(self, d: int = 8, aux_weight: float = 0.0):
        super().__init__()
        self.embed = nn.Embedding(256, d)
        self.head = nn.Linear(d, 256)
        self.aux_weight = aux_weight

    def forward(self, x):
        h = torch.tanh(self.embed(x))
        return ModelOutput(logits=self.head(h), aux_loss=self.aux_weight * h.pow(2).mean(),
                           stats={"h_mean": h.mean(), "n": 3, "skip": "text"})


def _model(seed: int = 0, **kw) -> TinyLM:
    torch.manual_seed(seed)
    return TinyLM(**kw)


def _batch(b: int = 4, t: int = 12, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 256, (b, t + 1), generator=torch.Generator().manual_seed(seed))


def _calls(name: str):
    """(path, line) of every call of a function or method named ``name`` under src/bytelm."""
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                f = node.func
                if (f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)) == name:
                    yield path, node.lineno


# --- there is one step --------------------------------------------------------------------------
def test_one_clip_grad_norm_call_site():
    """Gradient clipping (and so the step around it) is implemented once, in bytelm.train.step."""
    sites = list(_calls("clip_grad_norm_"))
    assert len(sites) == 1 and sites[0][0] == STEP, (
        "clip_grad_norm_ is called outside bytelm.train.step (route the update through "
        "TrainStep): " + ", ".join(f"{p.relative_to(SRC.parent)}:{n}" for p, n in sites))


def test_learning_rate_is_written_in_one_place():
    """``group["lr"] = ...`` only in bytelm.train.step (set_lr); no ``hasattr(optimizer, ...)``
    special cases (an optimizer declares feedback by subclassing FeedbackOptimizer)."""
    writes, probes = [], []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
            writes += [(path, node.lineno) for t in targets
                       if isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Constant)
                       and t.slice.value == "lr"]
            if (isinstance(node, ast.Call) and len(node.args) >= 2
                    and getattr(node.func, "id", None) in ("hasattr", "getattr") and isinstance(node.args[1], ast.Constant)
                    and node.args[1].value in ("observe", "log_fields", "drain_decisions")):
                probes.append(f"{path.relative_to(SRC.parent)}:{node.lineno}")
    assert [p for p, _ in writes] == [STEP], [f"{p.relative_to(SRC.parent)}:{n}" for p, n in writes]
    assert not probes, probes


# --- what the step computes ---------------------------------------------------------------------
def test_one_step_lowers_the_loss_and_returns_the_loss_before_it():
    model, x = _model(), _batch()
    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.5), StepConfig(grad_clip=1.0))
    with torch.no_grad():
        before = step.lm_loss(x).loss
    res = step(0.5, x)
    torch.testing.assert_close(res.loss, before)
    assert not res.skipped and res.grad_norm.ndim == 0 and res.grad_norm > 0
    assert all(p.grad is None for p in model.parameters())  # zeroed (set to None) after the update
    with torch.no_grad():
        assert step.lm_loss(x).loss < before - 1e-3
    # the last micro-batch's numeric stats, tensors detached copies
    assert set(res.stats) == {"h_mean", "n"} and not res.stats["h_mean"].requires_grad


def test_lr_mult_scales_each_group():
    """group lr = lr * lr_mult; an SGD update moves each group by -lr * lr_mult * grad."""
    model, x = _model(), _batch()
    ref = _model()
    opt = torch.optim.SGD([{"params": model.embed.parameters(), "lr_mult": 3.0},
                           {"params": model.head.parameters()}], lr=1.0)
    byte_cross_entropy(ref(x[:, :-1]).logits, x[:, 1:]).backward()  # the reference gradient
    TrainStep(model, opt)(0.1, x)  # no clipping
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(0.3), 0.1]
    for (name, p), r in zip(model.named_parameters(), ref.parameters()):
        mult = 3.0 if name.startswith("embed") else 1.0
        torch.testing.assert_close(p.detach(), r.detach() - 0.1 * mult * r.grad)


def test_set_lr_without_lr_mult_is_the_lr():
    opt = torch.optim.AdamW(_model().parameters(), lr=1.0)
    set_lr(opt, 2e-3)
    assert opt.param_groups[0]["lr"] == 2e-3


@pytest.mark.parametrize("as_fn", [False, True])
def test_grad_accumulation_of_two_halves_equals_one_batch(as_fn):
    """grad_accum=2 over two (2, T+1) halves = one step on the (4, T+1) batch: same loss,
    gradient norm and updated weights (to rounding), also with a differentiable aux loss."""
    x = _batch(4)
    results, models = [], []
    for accum in (1, 2):
        model = _model(aux_weight=0.1)
        step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9),
                         StepConfig(grad_accum=accum, grad_clip=0.5))
        halves = x.split(4 // accum)
        micro = (lambda i, s=step, h=halves: s.lm_loss(h[i])) if as_fn else x
        results.append(step(0.3, micro))
        models.append(model)
    a, b = results
    torch.testing.assert_close(b.loss, a.loss)
    torch.testing.assert_close(b.grad_norm, a.grad_norm)
    for p, q in zip(*(m.parameters() for m in models)):
        torch.testing.assert_close(q, p, atol=1e-6, rtol=1e-5)


def test_a_batch_that_does_not_split_is_refused():
    model = _model()
    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.1), StepConfig(grad_accum=3))
    with pytest.raises(ValueError, match="grad_accum=3"):
        step(0.1, _batch(4))
    with pytest.raises(ValueError, match="grad_accum"):
        StepConfig(grad_accum=0)


def test_clipping_returns_the_norm_before_it():
    model, x = _model(), _batch()
    before = [p.detach().clone() for p in model.parameters()]
    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=1.0), StepConfig(grad_clip=1e-3))
    res = step(1.0, x)
    moved = torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before)])
    assert res.grad_norm > 1e-2  # pre-clip
    torch.testing.assert_close(moved.norm(), torch.tensor(1e-3), rtol=1e-3, atol=0)


def test_aux_is_differentiated_not_logged():
    model = _model()
    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.1))
    w = next(model.parameters())
    res = step(0.1, lambda _: MicroLoss(loss=torch.tensor(2.0), aux=(w ** 2).sum()))
    assert res.loss.item() == 2.0 and res.grad_norm > 0


def test_no_sync_for_all_micro_batches_but_the_last():
    entered = []

    @contextlib.contextmanager
    def no_sync():
        entered.append(len(seen))
        yield
    seen = []
    model = _model()
    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.1),
                     StepConfig(grad_accum=3), no_sync=no_sync)

    def micro(i):
        seen.append(i)
        return step.lm_loss(_batch(2, seed=i))
    step(0.1, micro)
    assert seen == [0, 1, 2] and entered == [0, 1]


class RecordingSGD(torch.optim.SGD, FeedbackOptimizer):
    def __init__(self, params, **kw):
        super().__init__(params, **kw)
        self.seen = []

    def observe(self, loss, grad_norm) -> bool:
        self.seen.append((loss.clone(), grad_norm.clone()))
        return False


def test_a_feedback_optimizer_observes_the_reduced_loss_and_pre_clip_norm():
    model, x = _model(), _batch()
    opt = RecordingSGD(model.parameters(), lr=0.1)
    step = TrainStep(model, opt, StepConfig(grad_clip=1e-3), reduce=lambda t: t * 10)
    res = step(0.1, x)
    (loss, gnorm), = opt.seen
    torch.testing.assert_close(loss, res.loss * 10)
    torch.testing.assert_close(gnorm, res.grad_norm)
    assert gnorm > 1e-3  # before clipping
    assert wants_feedback(opt) and log_fields(opt) == {} and drain_decisions(opt) == []


def test_feedback_is_declared_not_guessed():
    m = _model()
    assert isinstance(EnhancedSGD(m.parameters(), lr=0.1), FeedbackOptimizer)
    adam = torch.optim.AdamW(m.parameters())
    assert not wants_feedback(adam) and log_fields(adam) == {} and drain_decisions(adam) == []
    with pytest.raises(TypeError):  # observe is required
        type("NoObserve", (torch.optim.SGD, FeedbackOptimizer), {})(m.parameters(), lr=0.1)


def test_skip_nonfinite_withholds_the_update():
    model = _model()
    opt = RecordingSGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    step = TrainStep(model, opt, StepConfig(skip_nonfinite=True))
    w = next(model.parameters())
    res = step(0.1, lambda _: MicroLoss(loss=w.sum() * float("nan")))
    assert res.skipped and not torch.isfinite(res.loss)
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    assert all(p.grad is None for p in model.parameters()) and opt.seen == []
    assert not step(0.1, _batch()).skipped and len(opt.seen) == 1
