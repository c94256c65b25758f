"""LiveLearner: dry run, per-chunk scaling, exact resume from its own checkpoint, trainer
checkpoints, Ctrl-C, hostile bytes, non-finite losses, forgetting measurement."""
import io
import json

import numpy as np
import pytest
import torch

from bytelm.errors import UserError
from bytelm.live import LiveLearner, bpb_on, evaluate_domains, forgetting_report, iter_chunks
from bytelm.train.checkpoint import load_model


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


OPTS = {"context": 32, "batch_size": 2, "lr": 1e-3, "ckpt_every": 0, "log_every": 1000}


def test_dry_run_changes_nothing(tiny_ckpt, tmp_path, tr_bytes):
    learner = LiveLearner.from_checkpoint(tiny_ckpt, OPTS)
    before = _weights(learner.model)
    text = tr_bytes[:32 * 10 + 1]
    s = learner.learn_stream(io.BytesIO(text * 2), dry_run=True)
    assert _same(before, _weights(learner.model))
    assert s["dry_run"] and s["checkpoint"] is None and s["updates"] == 11
    # the second copy starts mid-chunk except where the stride lines up: count what repeats
    assert s["chunks"] == 21 and s["novel"] + s["repeated"] == 21
    assert s["stream_bpb"] > 0 and list(tmp_path.iterdir()) == []
    aligned = tr_bytes[:32 * 10] + tr_bytes[:32 * 10 + 1]
    s = LiveLearner.from_checkpoint(tiny_ckpt, OPTS).learn_stream(io.BytesIO(aligned), dry_run=True)
    assert (s["novel"], s["repeated"]) == (10, 10)
    assert s["mean_grad_scale"] == pytest.approx(0.75, abs=1e-3)


def test_importance_scales_repeats(tiny_ckpt, tr_bytes):
    """A stream repeated 3 times: repeats get grad scale ~1/2 then ~1/3 with importance, 1 without."""
    text = tr_bytes[:32 * 8]
    stream = text * 3 + text[:1]
    s = LiveLearner.from_checkpoint(tiny_ckpt, OPTS).learn_stream(io.BytesIO(stream))
    assert (s["novel"], s["repeated"]) == (8, 16)
    assert s["mean_grad_scale"] == pytest.approx((8 + 8 / 2 + 8 / 3) / 24, rel=0.01)
    plain = LiveLearner.from_checkpoint(tiny_ckpt, {**OPTS, "importance": False})
    assert plain.learn_stream(io.BytesIO(stream))["mean_grad_scale"] == 1.0


def test_per_chunk_weights(tiny_ckpt, monkeypatch):
    """Scales weight chunks relative to each other (a chunk with scale 0.1 contributes a tenth of
    one with scale 1) and the step's LR is multiplied by their mean, then restored."""
    learner = LiveLearner.from_checkpoint(tiny_ckpt, OPTS)
    seen = {}
    real_losses, real_step = learner._chunk_losses, learner.optimizer.step

    def spy(chunks):
        per, aux = real_losses(chunks)
        per.register_hook(lambda g: seen.setdefault("grad", g.clone()))
        return per, aux

    def step_spy(*a, **k):
        seen["lr"] = learner.optimizer.param_groups[0]["lr"]
        return real_step(*a, **k)
    monkeypatch.setattr(learner, "_chunk_losses", spy)
    monkeypatch.setattr(learner.optimizer, "step", step_spy)
    learner._train([b"a" * 33, b"b" * 33], [b"c" * 33], [1.0, 0.1])
    mean = 2.1 / 3
    torch.testing.assert_close(seen["grad"], torch.tensor([1.0, 0.1, 1.0]) / mean / 3)
    assert seen["lr"] == pytest.approx(1e-3 * mean)
    assert learner.optimizer.param_groups[0]["lr"] == 1e-3


def test_uniform_scale_shrinks_an_adam_update(tiny_ckpt):
    """A batch of repeats at scale 0.5 moves the weights like a full-scale batch at half the LR
    (scaling the loss alone would not: Adam divides a uniform gradient scale out)."""
    chunks = [bytes(range(i, i + 33)) for i in range(2)]

    def delta(scales, lr):
        learner = LiveLearner.from_checkpoint(tiny_ckpt, {**OPTS, "lr": lr})
        before = _weights(learner.model)
        learner._train(chunks, [], scales)
        return {k: v - before[k] for k, v in _weights(learner.model).items()}
    half, ref = delta([0.5, 0.5], 1e-3), delta([1.0, 1.0], 5e-4)
    for k in ref:
        torch.testing.assert_close(half[k], ref[k])


def test_resume_is_exact(tiny_ckpt, tmp_path, tr_bytes):
    """Ctrl-C mid-stream (KeyboardInterrupt from the stream), then --resume from the final
    checkpoint: weights, optimizer, memory and replay equal an uninterrupted run."""
    opts = {**OPTS, "replay": 0.5, "replay_capacity": 6, "prune_every": 5, "half_life": 8.0}
    data = tr_bytes[:32 * 23 + 9]
    full = LiveLearner.from_checkpoint(tiny_ckpt, opts, out_dir=tmp_path / "full")
    full.learn_stream(io.BytesIO(data))

    def interrupted(n):
        for i, c in enumerate(iter_chunks(io.BytesIO(data), 32)):
            if i == n:
                raise KeyboardInterrupt
            yield c
    part = LiveLearner.from_checkpoint(tiny_ckpt, opts, out_dir=tmp_path / "part")
    s = part.learn(interrupted(9), name="tr")
    assert s["interrupted"] and s["chunks"] == 8  # chunk 8 sat in an unfinished batch
    assert s["bytes_consumed"] == 8 * 32 and (tmp_path / "part/ckpt/last/live_state.json").is_file()
    resumed = LiveLearner.from_checkpoint(tmp_path / "part", out_dir=tmp_path / "part")
    assert resumed.cfg.replay == 0.5 and resumed.step == 8  # the saved config is the base
    resumed.learn_stream(io.BytesIO(data), skip=resumed.bytes_consumed)
    assert _same(_weights(full.model), _weights(resumed.model))
    assert full.memory.to_dict() == resumed.memory.to_dict()
    assert full.replay.items == resumed.replay.items and full.step == resumed.step == 24
    a, b = full.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(a[k]["exp_avg"], b[k]["exp_avg"]) for k in a)
    assert full.totals == resumed.totals
    # the checkpoint is a normal model checkpoint too
    assert _same(_weights(load_model(tmp_path / "full")), _weights(full.model))
    state = json.loads((tmp_path / "full/ckpt/last/live_state.json").read_text())
    assert state["bytes_consumed"] == len(data) - 1


def test_loads_trainer_checkpoints(trainer_run, tmp_path, tr_bytes):
    for path in (trainer_run, trainer_run / "ckpt" / "last", trainer_run / "ckpt" / "best"):
        learner = LiveLearner.from_checkpoint(path, {**OPTS, "context": 0})
        assert learner.cfg.context == 128  # min(256, transformer-tiny's context)
    before = _weights(learner.model)
    learner.out_dir = tmp_path / "o"
    s = learner.learn_stream(io.BytesIO(tr_bytes[:128 * 4 + 1]))
    assert s["updates"] == 2 and not _same(before, _weights(learner.model))
    assert (tmp_path / "o/ckpt/last/memory.json").is_file()


def test_ctrl_c_writes_a_final_checkpoint(tiny_ckpt, tmp_path, tr_bytes):
    def stream():
        yield from iter_chunks(io.BytesIO(tr_bytes[:32 * 6 + 1]), 32)
        raise KeyboardInterrupt
    learner = LiveLearner.from_checkpoint(tiny_ckpt, {**OPTS, "ckpt_every": 100},
                                          out_dir=tmp_path / "o")
    s = learner.learn(stream())
    assert s["interrupted"] and s["updates"] == 3
    back = LiveLearner.from_checkpoint(tmp_path / "o")
    assert back.step == 6 and _same(_weights(back.model), _weights(learner.model))
    assert len(back.memory) == 6


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_deferred_ctrl_c_finishes_the_update(tiny_ckpt, tmp_path, tr_bytes, monkeypatch, signame):
    """SIGINT during an update (or SIGTERM / SIGHUP: a scheduler, docker stop, a closed
    terminal): the update completes, then the learner stops and checkpoints."""
    import os
    import signal
    sig = getattr(signal, signame)
    before = signal.getsignal(sig)
    learner = LiveLearner.from_checkpoint(tiny_ckpt, OPTS, out_dir=tmp_path / "o")
    real = learner._train

    def train_and_interrupt(*a):
        out = real(*a)
        if learner.totals["updates"] == 1:
            os.kill(os.getpid(), sig)
        return out
    monkeypatch.setattr(learner, "_train", train_and_interrupt)
    s = learner.learn_stream(io.BytesIO(tr_bytes[:32 * 12 + 1]))
    assert s["interrupted"] and s["updates"] == 2 and s["chunks"] == 4
    assert LiveLearner.from_checkpoint(tmp_path / "o").step == 4
    assert signal.getsignal(sig) is before


def test_second_ctrl_c_inside_an_update_skips_the_final_checkpoint(tiny_ckpt, tmp_path, tr_bytes,
                                                                   monkeypatch):
    import os
    import signal
    learner = LiveLearner.from_checkpoint(tiny_ckpt, {**OPTS, "ckpt_every": 1},
                                          out_dir=tmp_path / "o")
    real = learner._train

    def train(*a):
        if learner.totals["updates"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # deferred
            os.kill(os.getpid(), signal.SIGINT)  # now
        return real(*a)
    monkeypatch.setattr(learner, "_train", train)
    with pytest.raises(KeyboardInterrupt):
        learner.learn_stream(io.BytesIO(tr_bytes[:32 * 12 + 1]))
    assert LiveLearner.from_checkpoint(tmp_path / "o").totals["updates"] == 2


def test_hostile_bytes_and_nonfinite_losses(tiny_ckpt, monkeypatch):
    rng = np.random.default_rng(0)
    data = bytes(rng.integers(0, 256, size=32 * 7 + 5, dtype=np.uint8)) + bytes(range(256))
    learner = LiveLearner.from_checkpoint(tiny_ckpt, {**OPTS, "sketch": True})
    s = learner.learn_stream(io.BytesIO(data))
    assert s["bytes"] == len(data) - 1 and s["skipped_nonfinite"] == 0
    real = learner._chunk_losses
    monkeypatch.setattr(learner, "_chunk_losses",
                        lambda chunks: (real(chunks)[0] * float("nan"), torch.zeros(())))
    before = _weights(learner.model)
    s = learner.learn_stream(io.BytesIO(data[:32 * 2 + 1]))
    assert s["skipped_nonfinite"] == 1 and _same(before, _weights(learner.model))


def test_bad_inputs(tiny_ckpt, tmp_path):
    with pytest.raises(UserError, match="exceeds the model context"):
        LiveLearner.from_checkpoint(tiny_ckpt, {"context": 129})
    with pytest.raises(UserError, match="unknown option"):
        LiveLearner.from_checkpoint(tiny_ckpt, {"contxt": 1})
    for bad in ({"lr": 0.0}, {"batch_size": 0}, {"replay": -1}, {"optimizer": "lion"}):
        with pytest.raises(UserError):
            LiveLearner.from_checkpoint(tiny_ckpt, bad)
    with pytest.raises(UserError, match="checkpoint not found"):
        LiveLearner.from_checkpoint(tmp_path / "nothing")
    with pytest.raises(UserError, match="needs --replay"):
        LiveLearner.from_checkpoint(tiny_ckpt, OPTS).prefill_replay(b"x" * 100)
    # a damaged live checkpoint
    learner = LiveLearner.from_checkpoint(tiny_ckpt, OPTS, out_dir=tmp_path / "o")
    learner.learn_stream(io.BytesIO(b"abc" * 40))
    (tmp_path / "o/ckpt/last/memory.json").write_text("{not json")
    with pytest.raises(UserError, match="corrupted live checkpoint"):
        LiveLearner.from_checkpoint(tmp_path / "o")
    (tmp_path / "o/ckpt/last/live_state.json").write_text("[]")
    with pytest.raises(UserError, match="corrupted live checkpoint"):
        LiveLearner.from_checkpoint(tmp_path / "o")
    learner = LiveLearner.from_checkpoint(tiny_ckpt, OPTS, out_dir=tmp_path / "o2")
    learner.learn_stream(io.BytesIO(b"abc" * 40))
    (tmp_path / "o2/ckpt/last/rng.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(UserError, match="corrupted live checkpoint .*cannot read rng.safetensors"):
        LiveLearner.from_checkpoint(tmp_path / "o2")


def test_forgetting_helpers(trainer_run, en_corpus, tr_bytes):
    model = load_model(trainer_run)
    b = evaluate_domains(model, {"en": en_corpus, "tr": tr_bytes[:3000]}, seq_len=128)
    assert set(b) == {"en", "tr"} and all(4 < v < 9 for v in b.values())
    assert bpb_on(model, en_corpus, 128, max_bytes=2000) > 0 and not model.training
    rep = forgetting_report(b, {"en": b["en"] + 0.5, "tr": b["tr"] - 1.0})
    assert rep["en"]["delta"] == pytest.approx(0.5) and rep["tr"]["delta"] == pytest.approx(-1.0)
