"""The training loop: exact resume, metrics bookkeeping, NaN detection, time budget."""
import json
import math
import time

import pytest
import torch

from bytelm.errors import UserError
from bytelm.train import loop
from bytelm.train.loop import NonFiniteLossError, Trainer, train
from bytelm.train.metrics import read_metrics

from tests.train._helpers import assert_same_weights, ckpt_weights, logged_steps, step_losses

N = 6


def _resume_cfgs(make_cfg, tmp_path, extra):
    base = {"train.steps": 2 * N, "train.eval_every": N, "train.eval_bytes": 512, **extra}
    return (make_cfg(tmp_path / "A", base),
            make_cfg(tmp_path / "B", {**base, "train.stop_after": N}),
            make_cfg(tmp_path / "B", base))


@pytest.mark.parametrize("extra,from_old", [
    ({}, False),
    ({"train.grad_accum": 2}, False),
    ({"model.dropout": 0.1}, True),  # RNG state restored; resume from an interrupted swap
    ({"optim.name": "muon"}, False),  # Muon's momentum and AdamW's moments in one state
], ids=["plain", "grad_accum2", "dropout-from-old", "muon"])
def test_resume_is_exact(make_cfg, tmp_path, extra, from_old):
    cfg_a, cfg_b1, cfg_b2 = _resume_cfgs(make_cfg, tmp_path, extra)
    sa = train(cfg_a)
    assert sa["steps"] == 2 * N and not sa["stopped_early"]

    sb1 = train(cfg_b1)
    assert sb1["steps"] == N and sb1["stopped_early"]
    last = tmp_path / "B" / "ckpt" / "last"
    assert json.loads((last / "trainer_state.json").read_text())["step"] == N
    with pytest.raises(UserError, match="resume"):
        Trainer(cfg_b2)  # refuses to overwrite a run
    if from_old:
        last.rename(last.with_name("last.old"))
    sb2 = Trainer(cfg_b2, resume=True).run()
    assert sb2["steps"] == 2 * N and not sb2["stopped_early"]

    la, lb = step_losses(tmp_path / "A"), step_losses(tmp_path / "B")
    assert [s for s, _ in la] == list(range(1, 2 * N + 1))
    assert lb == la  # exact float equality, every step
    assert_same_weights(ckpt_weights(tmp_path / "A" / "ckpt" / "last"), ckpt_weights(last))
    assert sa["val_bpb"] == sb2["val_bpb"]
    # no duplicated records after the resume
    assert logged_steps(tmp_path / "B", "train") == list(range(1, 2 * N + 1))
    assert logged_steps(tmp_path / "B", "val") == [N, 2 * N]
    assert not last.with_name("last.old").exists()


def test_resume_after_crash_mid_metrics_line(make_cfg, tmp_path):
    """A process killed after the checkpoint leaves extra records and half a line; resume drops them."""
    _, cfg_b1, cfg_b2 = _resume_cfgs(make_cfg, tmp_path, {})
    train(cfg_b1)
    with open(tmp_path / "B" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"kind": "train", "step": N + 1, "losses": [9.0]}) + "\n")
        f.write('{"kind": "train", "step": ')
    Trainer(cfg_b2, resume=True).run()
    assert logged_steps(tmp_path / "B", "train") == list(range(1, 2 * N + 1))
    assert all(v != 9.0 for _, v in step_losses(tmp_path / "B"))


def test_fresh_run_does_not_append_to_stale_metrics(make_cfg, tmp_path):
    """A run that died before its first checkpoint is restarted without --resume."""
    cfg = make_cfg(tmp_path / "R", {"train.steps": 3})
    (tmp_path / "R").mkdir()
    (tmp_path / "R" / "metrics.jsonl").write_text(
        "".join(json.dumps({"kind": "train", "step": s, "losses": [1.0]}) + "\n" for s in (1, 2)))
    train(cfg)
    assert logged_steps(tmp_path / "R", "train") == [1, 2, 3]


def test_nothing_to_resume(make_cfg, tmp_path):
    with pytest.raises(UserError, match="nothing to resume"):
        Trainer(make_cfg(tmp_path / "empty", {}), resume=True)


def _assert_no_bad_checkpoint(run_dir):
    for d in (run_dir / "ckpt").glob("*") if (run_dir / "ckpt").exists() else []:
        if not d.is_dir():  # the swap lock
            continue
        for k, v in ckpt_weights(d).items():
            assert torch.isfinite(v).all(), f"{d.name} holds non-finite {k}"


def test_huge_lr_raises_nonfinite(make_cfg, tmp_path):
    cfg = make_cfg(tmp_path / "R", {"train.steps": 40, "optim.lr": 1e3, "optim.grad_clip": 0,
                                    "optim.warmup_steps": 0, "train.eval_every": 1})
    with pytest.raises(NonFiniteLossError, match=r"at step \d+") as e:
        train(cfg)
    step = int(str(e.value).split("at step ")[1].split(";")[0].split()[0])
    assert 1 < step < 40
    _assert_no_bad_checkpoint(tmp_path / "R")


def test_nan_loss_names_the_step(make_cfg, tmp_path, monkeypatch):
    calls = []
    real = loop.byte_cross_entropy

    def nan_at_step_3(logits, y, *a, **k):
        calls.append(1)
        out = real(logits, y, *a, **k)
        return out * float("nan") if len(calls) == 3 else out
    monkeypatch.setattr(loop, "byte_cross_entropy", nan_at_step_3)
    cfg = make_cfg(tmp_path / "R", {"train.steps": 10, "train.eval_every": 2, "train.eval_bytes": 256})
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss \(nan\) at step 3\b"):
        train(cfg)
    last = tmp_path / "R" / "ckpt" / "last"
    assert json.loads((last / "trainer_state.json").read_text())["step"] == 2
    _assert_no_bad_checkpoint(tmp_path / "R")


def test_nan_weights_are_never_checkpointed(make_cfg, tmp_path):
    """The update of step 3 makes the weights NaN while its loss (computed before) is finite;
    the checkpoint due at step 3 must not be written."""
    cfg = make_cfg(tmp_path / "R", {"train.steps": 10, "train.eval_every": 3, "train.eval_bytes": 256})
    tr = Trainer(cfg)
    real_step = tr.optimizer.step

    def poisoned_step(*a, **k):
        out = real_step(*a, **k)
        if tr.step == 2:  # the third update (the trainer increments step afterwards)
            with torch.no_grad():
                next(tr.model.parameters()).fill_(float("nan"))
        return out
    tr.optimizer.step = poisoned_step
    with pytest.raises(NonFiniteLossError, match=r"step 3\b"):
        tr.run()
    assert not (tmp_path / "R" / "ckpt" / "last").exists()
    _assert_no_bad_checkpoint(tmp_path / "R")


def test_time_budget(make_cfg, tmp_path):
    budget_min = 0.04  # 2.4 s
    cfg = make_cfg(tmp_path / "R", {"train.steps": 100_000, "train.time_budget_min": budget_min,
                                    "train.log_every": 25, "train.eval_bytes": 256})
    tr = Trainer(cfg)
    t0 = time.perf_counter()
    s = tr.run()
    wall = time.perf_counter() - t0
    assert 23 < s["total_steps"] < 100_000
    assert s["steps"] == s["total_steps"] and not s["stopped_early"]
    assert json.loads((tmp_path / "R" / "summary.json").read_text())["total_steps"] == s["total_steps"]
    # a wall-clock cap: the budget covers the final validation and checkpoint too
    assert budget_min * 60 * 0.5 < wall < budget_min * 60 + 1.0
    plans = [r for r in read_metrics(tmp_path / "R") if r["kind"] == "budget"]
    assert plans and plans[-1]["total_steps"] == s["total_steps"]
    assert math.isfinite(s["val_bpb"])


def test_time_budget_is_a_wall_clock_cap_on_a_slowing_machine(make_cfg, tmp_path):
    """Steps become several times slower (+30 ms each) a third of the way in (a machine that gets busy): the run still
    ends within a second of its budget, and the schedule's end moves with it (the lr has
    decayed to near its floor at the last step instead of being cut off at its peak)."""
    budget_s = 3.0
    cfg = make_cfg(tmp_path / "R", {"train.steps": 100_000, "train.time_budget_min": budget_s / 60,
                                    "train.log_every": 1, "train.eval_bytes": 256,
                                    "optim.warmup_steps": 0})
    tr = Trainer(cfg)
    real_step, t0 = tr.train_step, time.perf_counter()

    def slowed():
        out = real_step()
        if time.perf_counter() - t0 > budget_s / 3:
            time.sleep(0.03)
        return out
    tr.train_step = slowed
    s = tr.run()
    wall = time.perf_counter() - t0
    assert wall < budget_s + 1.0, f"{wall:.2f} s for a {budget_s} s budget"
    assert s["steps"] == s["total_steps"] and s["budget_used_s"] <= budget_s + 1.0
    lrs = [r["lr"] for r in read_metrics(tmp_path / "R") if r["kind"] == "train"]
    assert lrs[-1] < 0.35 * cfg.optim.lr, f"schedule cut off at lr {lrs[-1]:.2e}"
    plans = [r["total_steps"] for r in read_metrics(tmp_path / "R") if r["kind"] == "budget"]
    assert plans[0] > s["total_steps"]  # the first plan, made at full speed, was shortened


def test_time_budget_ignores_a_slow_first_validation_batch(make_cfg, tmp_path, monkeypatch):
    """A compiled model compiles its eval graph on the first validation batch (tens of seconds on
    a GPU): the final validation's estimate must not scale that by the number of batches (it did:
    a 2.5-minute GPU run stopped after 5 steps). Here the first batch costs 2 s extra."""
    import bytelm.eval.bpb as bpb
    real, calls = bpb.evaluate_bpb, []

    def slow_first(*a, **k):
        calls.append(1)
        if len(calls) == 1:
            time.sleep(2.0)
        return real(*a, **k)
    monkeypatch.setattr(bpb, "evaluate_bpb", slow_first)
    cfg = make_cfg(tmp_path / "R", {"train.steps": 100_000, "train.time_budget_min": 0.08,
                                    "train.log_every": 25, "train.eval_bytes": 20_000})
    tr = Trainer(cfg)
    s = tr.run()
    assert tr.budget.finish_s is not None
    assert s["steps"] > 20, s["steps"]


def test_train_records_carry_grad_norms_and_baseline_curve_keeps_them(make_cfg, tmp_path):
    """Each "train" record has the last step's grad norm and the interval's largest one, and
    benchmarks/baseline.py puts both (and the interval's worst bpb) in its train_curve."""
    from tests.scripts import load_benchmark
    cfg = make_cfg(tmp_path / "R", {"train.steps": 6, "train.log_every": 3, "train.eval_every": 0})
    train(cfg)
    recs = [r for r in read_metrics(tmp_path / "R") if r["kind"] == "train"]
    assert [r["step"] for r in recs] == [3, 6]
    for r in recs:
        assert math.isfinite(r["grad_norm"]) and r["grad_norm_max"] >= r["grad_norm"] > 0
    mod = load_benchmark("baseline")
    points = [mod.train_point(r) for r in recs]
    for p, r in zip(points, recs):
        assert p["step"] == r["step"] and p["bpb"] == r["bpb"]
        assert p["interval_bytes_per_s"] == r["interval_bytes_per_s"]
        assert p["grad_norm"] == r["grad_norm"] and p["grad_norm_max"] == r["grad_norm_max"]
        assert p["bpb_max"] == pytest.approx(max(r["losses"]) / math.log(2)) and p["bpb_max"] >= p["bpb"]
    # records of older runs (no grad norms) still make points
    assert mod.train_point({"step": 1, "bpb": 2.0, "interval_bytes_per_s": 3.0}) == {
        "step": 1, "bpb": 2.0, "interval_bytes_per_s": 3.0}


def test_compile_mode_reduce_overhead_trains(make_cfg, tmp_path):
    """train.compile_mode reaches torch.compile; reduce-overhead (CUDA graphs on CUDA, plain
    Inductor on CPU) trains the same as eager within float tolerance, with the model's
    statistics copied out of the compiled outputs."""
    base = {"train.steps": 3, "train.eval_every": 3, "train.eval_bytes": 512,
            "train.log_every": 1}
    eager = train(make_cfg(tmp_path / "E", base))
    comp = train(make_cfg(tmp_path / "C", {**base, "train.compile": True,
                                           "train.compile_mode": "reduce-overhead"}))
    le, lc = step_losses(tmp_path / "E"), step_losses(tmp_path / "C")
    assert [s for s, _ in lc] == [1, 2, 3]
    assert [v for _, v in lc] == pytest.approx([v for _, v in le], rel=2e-3)
    assert comp["val_bpb"] == pytest.approx(eager["val_bpb"], rel=2e-3)
    with pytest.raises(UserError, match="compile_mode"):
        make_cfg(tmp_path / "X", {"train.compile_mode": "fast"})


def test_compile_mode_auto_resolves(make_cfg, tmp_path):
    """auto: CUDA graphs only where measured (AGIFORMER, CUDA, one process, no curriculum or
    accumulation), the default mode everywhere else; explicit modes pass through; the run
    summary records the mode it compiled with."""
    from bytelm.train.compiling import resolve_compile_mode
    assert resolve_compile_mode("auto", "agiformer", "cuda") == "reduce-overhead"
    for args in [("agiformer", "cpu"), ("gpt", "cuda"), ("hnet", "cuda"), ("bsfin", "cuda")]:
        assert resolve_compile_mode("auto", *args) == "default", args
    assert resolve_compile_mode("auto", "agiformer", "cuda", world_size=2) == "default"
    assert resolve_compile_mode("auto", "agiformer", "cuda", curriculum=True) == "default"
    assert resolve_compile_mode("auto", "agiformer", "cuda", grad_accum=2) == "default"
    assert resolve_compile_mode("max-autotune", "gpt", "cpu") == "max-autotune"
    assert make_cfg(tmp_path / "D").train.compile_mode == "auto"
    from bytelm.train.loop import Trainer
    t = Trainer(make_cfg(tmp_path / "A", {"train.compile": True}, preset="agiformer-tiny"))
    assert t.compile_mode == "default" and not t.graphs  # CPU (torch.compile is lazy: no compile here)
    assert train(make_cfg(tmp_path / "E", {"train.steps": 1}))["compile_mode"] is None
