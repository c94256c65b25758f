"""Faults a run directory must survive (issue #25): a second writer, OS errors during a save,
a collapsed validation, damaged or edited checkpoints, and stale temporary folders."""
import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from bytelm.errors import UserError
from bytelm.train import checkpoint as ck
from bytelm.train.loop import NonFiniteLossError, Trainer, train

from ._helpers import ckpt_weights

FAST = {"train.steps": 4, "train.eval_every": 2, "train.eval_bytes": 256}


def _step(ckpt: Path) -> int:
    return json.loads((ckpt / "trainer_state.json").read_text())["step"]


@pytest.fixture
def run_dir(make_cfg, tmp_path) -> Path:
    """A finished 4-step run with checkpoints at steps 2 and 4."""
    train(make_cfg(tmp_path / "R", FAST))
    return tmp_path / "R"


def test_second_writer_is_refused(make_cfg, tmp_path):
    """While one trainer owns R, a second one (another `bytelm train --out R`) is refused before
    it reads or writes anything; once the first has finished, R can be resumed."""
    first = Trainer(make_cfg(tmp_path / "R", FAST))
    before = sorted(p.name for p in (tmp_path / "R").rglob("*"))
    with pytest.raises(UserError, match="being written by another bytelm process"):
        Trainer(make_cfg(tmp_path / "R", FAST))
    with pytest.raises(UserError, match="being written by another bytelm process"):
        Trainer(make_cfg(tmp_path / "R", FAST), resume=True)
    assert sorted(p.name for p in (tmp_path / "R").rglob("*")) == before
    first.run()
    train(make_cfg(tmp_path / "R", {**FAST, "train.steps": 6}), resume=True)
    assert _step(tmp_path / "R" / "ckpt" / "last") == 6


def test_lock_is_the_kernels_across_processes(tmp_path):
    """The lock another process holds (flock on the directory) is the one a trainer takes."""
    from bytelm.train.locks import RunLock
    run = tmp_path / "R"
    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, os, time
        fd = os.open({str(run)!r}, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("locked", flush=True)
        time.sleep(60)""")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UserError, match="being written by another bytelm process"):
            RunLock(run).acquire()
    finally:
        holder.kill()
        holder.wait()
    lock = RunLock(run)
    lock.acquire()  # the kernel dropped the lock with its process
    lock.release()


def test_reader_waits_for_a_swap(run_dir):
    """A reader holds the swap lock shared: a writer's rename waits until the read is done."""
    from bytelm.train.locks import swap_lock
    import threading
    last = run_dir / "ckpt" / "last"
    done = []
    with ck.reading(last) as d:
        config_before = (d / ck.CONFIG).read_bytes()
        t = threading.Thread(target=lambda: (ck.atomic_write_dir(
            last, lambda tmp: (tmp / ck.CONFIG).write_text("{}")), done.append(1)))
        t.start()
        t.join(0.5)
        assert not done and (d / ck.CONFIG).read_bytes() == config_before
    t.join(5)
    assert done and (last / ck.CONFIG).read_text() == "{}"
    with swap_lock(last.parent, shared=False):  # released by the writer
        pass
    assert sorted(p.name for p in last.parent.iterdir()) == ["best", "last"]  # no lock files


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EFBIG, errno.EROFS])
def test_os_error_during_save_is_one_line_and_keeps_the_previous(run_dir, make_cfg, monkeypatch, err):
    before = ckpt_weights(run_dir / "ckpt" / "last")
    real = ck.save_file

    def failing(tensors, path, *a, **k):
        real(tensors, path, *a, **k)
        raise OSError(err, os.strerror(err), path)
    monkeypatch.setattr(ck, "save_file", failing)
    cfg = make_cfg(run_dir, {**FAST, "train.steps": 6})
    with pytest.raises(UserError, match=rf"cannot save .*{os.strerror(err)}.*previous checkpoint"):
        train(cfg, resume=True)
    last = run_dir / "ckpt" / "last"
    assert _step(last) == 4
    assert all(torch.equal(v, before[k]) for k, v in ckpt_weights(last).items())
    assert not [p for p in (run_dir / "ckpt").iterdir() if ".tmp-" in p.name]


def test_collapsed_validation_does_not_overwrite_last(make_cfg, tmp_path):
    """Weights wrecked after the step-2 checkpoint (finite, but far worse than before): the
    step-4 validation collapses, ckpt/last keeps step 2 and the message names it."""
    cfg = make_cfg(tmp_path / "R", {**FAST, "train.steps": 6, "optim.lr": 3e-3})
    tr = Trainer(cfg)
    real_step = tr.optimizer.step

    def wrecking_step(*a, **k):
        out = real_step(*a, **k)
        if tr.step == 3:
            with torch.no_grad():
                for p in tr.model.parameters():
                    p.mul_(-40.0)
        return out
    tr.optimizer.step = wrecking_step
    with pytest.raises(NonFiniteLossError, match=r"validation collapsed at step 4") as e:
        tr.run()
    last = tmp_path / "R" / "ckpt" / "last"
    assert _step(last) == 2
    assert f"{last} (step 2)" in str(e.value)


def test_nonfinite_message_says_when_no_checkpoint_exists(make_cfg, tmp_path):
    cfg = make_cfg(tmp_path / "R", {"train.steps": 40, "optim.lr": 1e3, "optim.grad_clip": 0,
                                    "optim.warmup_steps": 0, "train.eval_every": 0})
    with pytest.raises(NonFiniteLossError, match="no checkpoint was written") as e:
        train(cfg)
    assert "last good" not in str(e.value)


def _edit_json(path: Path, fn) -> None:
    d = json.loads(path.read_text())
    fn(d)
    path.write_text(json.dumps(d))


@pytest.mark.parametrize("damage, needle", [
    ("nan", "holds NaN or Inf"),
    ("int32", "is torch.int32, not a floating-point type"),
    ("context", "disagrees with the run config"),
])
def test_load_refuses_bad_weights_and_edited_config(run_dir, damage, needle):
    last = run_dir / "ckpt" / "last"
    w = load_file(str(last / ck.WEIGHTS))
    k = next(iter(w))
    if damage == "nan":
        w[k] = torch.full_like(w[k], float("nan"))
    elif damage == "int32":
        w[k] = w[k].to(torch.int32)
    if damage == "context":
        _edit_json(last / ck.CONFIG, lambda d: d.update(context=256))
    else:
        save_file(w, str(last / ck.WEIGHTS))
    with pytest.raises(UserError, match=needle):
        ck.load_model(last)


@pytest.mark.parametrize("damage, needle", [
    (lambda d: d.update(step=-5), "step=-5"),
    (lambda d: d.pop("sampler"), "KeyError"),
    (lambda d: d["sampler"].clear(), "sampler"),
])
def test_damaged_trainer_state_is_one_line(run_dir, make_cfg, damage, needle):
    _edit_json(run_dir / "ckpt" / "last" / "trainer_state.json", damage)
    with pytest.raises(UserError, match=needle):
        Trainer(make_cfg(run_dir, {**FAST, "train.steps": 6}), resume=True)


def test_damaged_rng_and_optimizer_are_one_line(run_dir, make_cfg):
    last = run_dir / "ckpt" / "last"
    rng = (last / ck.RNG).read_bytes()
    save_file({"cpu": torch.zeros(7, dtype=torch.uint8)}, str(last / ck.RNG))
    with pytest.raises(UserError, match="damaged training checkpoint .*RNG"):
        Trainer(make_cfg(run_dir, {**FAST, "train.steps": 6}), resume=True)
    (last / ck.RNG).write_bytes(rng)
    # AdamW's state resumed as another optimizer family
    with pytest.raises(UserError, match="holds the state of optimizer adamw; it cannot resume as"):
        Trainer(make_cfg(run_dir, {**FAST, "train.steps": 6, "optim.name": "sgd"}), resume=True)
    # an optimizer state of another shape
    torch.save({"state": {0: {"momentum_buffer": torch.zeros(3)}},
                "param_groups": [{"params": [0]}]}, last / ck.OPTIMIZER)
    with pytest.raises(UserError, match="optimizer state does not fit optim.name=adamw"):
        Trainer(make_cfg(run_dir, {**FAST, "train.steps": 6}), resume=True)


def test_stale_temporary_folders_are_removed_on_the_next_start(run_dir, make_cfg):
    ckpt = run_dir / "ckpt"
    (ckpt / ".last.tmp-999999").mkdir()
    (ckpt / ".last.tmp-999999" / "model.safetensors").write_bytes(b"x" * 100)
    (run_dir / ".summary.json.tmp-999999").write_text("{")
    Trainer(make_cfg(run_dir, {**FAST, "train.steps": 6}), resume=True).lock.release()
    assert not (ckpt / ".last.tmp-999999").exists()
    assert not (run_dir / ".summary.json.tmp-999999").exists()
    assert (ckpt / "last" / ck.CONFIG).is_file() and (ckpt / "best" / ck.CONFIG).is_file()
