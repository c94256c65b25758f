"""Checkpoint directories: atomic writes, crash recovery through ``.old``, safe loading."""
import json
import os
import pickle

import pytest
import torch

import bytelm
from bytelm import io as bio
from bytelm.errors import UserError
from bytelm.train import checkpoint as ck

from tests.train._helpers import assert_same_weights


@pytest.fixture
def model():
    torch.manual_seed(0)
    return bytelm.create_model("transformer-tiny")


def _optimizer(model):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, 256, (2, 17))
    model(x[:, :-1]).logits.float().logsumexp(-1).mean().backward()
    opt.step()
    opt.zero_grad()
    return opt


def _state(step):
    return {"step": step, "total_steps": 10, "best_val": float("inf"),
            "sampler": {"batch_index": step, "seed": 1}}


def _bump(model):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)


def _leftovers(parent):
    return sorted(p.name for p in parent.iterdir() if ".tmp" in p.name or p.name.endswith(".old"))


def test_atomic_write_bytes(tmp_path, monkeypatch):
    f = tmp_path / "sub" / "x.json"
    ck.atomic_write_bytes(f, b"one")
    ck.atomic_write_bytes(f, b"two")
    assert f.read_bytes() == b"two"
    assert sorted(p.name for p in f.parent.iterdir()) == ["x.json"]

    # a crash before the rename keeps the old content and leaves no temp file behind
    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(bio.os, "replace", boom)
    with pytest.raises(OSError):
        ck.atomic_write_bytes(f, b"three")
    monkeypatch.undo()
    assert f.read_bytes() == b"two"
    assert sorted(p.name for p in f.parent.iterdir()) == ["x.json"]


def test_save_load_round_trip_without_pickle(model, tmp_path, monkeypatch):
    path = tmp_path / "m"
    model.save(path)
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    assert json.loads((path / "config.json").read_text())["model_type"] == "gpt"

    def no_pickle(*a, **k):
        raise AssertionError("weights must not be unpickled")
    for mod, name in ((pickle, "load"), (pickle, "loads"), (torch, "load")):
        monkeypatch.setattr(mod, name, no_pickle)
    loaded = bytelm.load(path)
    monkeypatch.undo()
    assert type(loaded) is type(model) and not loaded.training
    x = torch.randint(0, 256, (2, 128), generator=torch.Generator().manual_seed(3))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x).logits, loaded(x).logits)
    assert_same_weights(ck.model_state_dict(model), ck.model_state_dict(loaded))


def test_training_checkpoint_round_trip(model, tmp_path, monkeypatch):
    opt = _optimizer(model)
    ck.save_training(tmp_path / "last", model, opt, _state(3))
    calls = []
    real_load = torch.load

    def spy(*a, **k):
        calls.append(k.get("weights_only"))
        return real_load(*a, **k)
    monkeypatch.setattr(torch, "load", spy)
    state, osd, rng, weights = ck.load_training(tmp_path / "last")
    assert calls == [True]  # optimizer.pt is read with weights_only=True
    assert state["step"] == 3 and state["best_val"] == float("inf")
    assert torch.equal(rng["cpu"], torch.get_rng_state())
    assert_same_weights(weights, ck.model_state_dict(model))
    ref = opt.state_dict()
    for i, s in ref["state"].items():
        for k, v in s.items():
            assert torch.equal(osd["state"][i][k], v)


def test_malicious_optimizer_pickle_is_not_executed(model, tmp_path):
    ck.save_training(tmp_path / "last", model, _optimizer(model), _state(1))
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    with open(tmp_path / "last" / "optimizer.pt", "wb") as f:
        pickle.dump({"state": Evil()}, f)
    with pytest.raises(UserError, match="corrupted training checkpoint"):
        ck.load_training(tmp_path / "last")
    assert not marker.exists()


@pytest.mark.parametrize("name", ["trainer_state.json", "optimizer.pt", "rng.safetensors"])
def test_damaged_training_file_is_named(model, tmp_path, name):
    ck.save_training(tmp_path / "last", model, _optimizer(model), _state(1))
    (tmp_path / "last" / name).write_bytes(b"\x00garbage")
    with pytest.raises(UserError, match=f"corrupted training checkpoint .*cannot read {name}"):
        ck.load_training(tmp_path / "last")


@pytest.mark.parametrize("target", ["safetensors", "torch.save"])
def test_crash_while_writing_keeps_previous_checkpoint(model, tmp_path, monkeypatch, target):
    final = tmp_path / "ckpt" / "last"
    opt = _optimizer(model)
    ck.save_training(final, model, opt, _state(1))
    before = {k: v.clone() for k, v in ck.model_state_dict(model).items()}
    _bump(model)

    def partial_then_crash(obj, path, *a, **k):
        with open(path, "wb") as f:
            f.write(b"\x00" * 100)  # half a file, then the process "dies"
        raise KeyboardInterrupt("killed mid-write")
    if target == "safetensors":
        monkeypatch.setattr(bio, "save_file", partial_then_crash)  # the weights
    else:
        monkeypatch.setattr(torch, "save", partial_then_crash)
    with pytest.raises(KeyboardInterrupt):
        ck.save_training(final, model, opt, _state(2))
    monkeypatch.undo()

    assert _leftovers(final.parent) == []  # no temp dir, no .old
    assert_same_weights(ck.model_state_dict(ck.load_model(final)), before)
    assert ck.load_training(final)[0]["step"] == 1


def _crash_on_rename_into(final, monkeypatch):
    real = os.rename

    def rename(src, dst):
        if os.fspath(dst) == os.fspath(final):
            raise KeyboardInterrupt("killed between the renames")
        return real(src, dst)
    monkeypatch.setattr(bio.os, "rename", rename)


def test_crash_between_renames_recovers_through_old(model, tmp_path, monkeypatch):
    run = tmp_path / "run"
    final = run / "ckpt" / "last"
    opt = _optimizer(model)
    ck.save_training(final, model, opt, _state(1))
    before = {k: v.clone() for k, v in ck.model_state_dict(model).items()}
    _bump(model)

    _crash_on_rename_into(final, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        ck.save_training(final, model, opt, _state(2))
    monkeypatch.undo()
    assert not final.exists() and final.with_name("last.old").is_dir()

    # every way of naming the checkpoint still finds the previous one
    assert ck.resolve_checkpoint(final) == final.with_name("last.old")
    for where in (final, run):
        assert_same_weights(ck.model_state_dict(ck.load_model(where)), before)
    assert ck.load_training(final)[0]["step"] == 1

    # a second crash at the same point must not lose it either (.old is the only good copy)
    _crash_on_rename_into(final, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        ck.save_training(final, model, opt, _state(3))
    monkeypatch.undo()
    assert ck.load_training(final)[0]["step"] == 1
    assert_same_weights(ck.model_state_dict(ck.load_model(final)), before)

    # the next good save replaces it and cleans up
    ck.save_training(final, model, opt, _state(4))
    assert ck.load_training(final)[0]["step"] == 4
    assert _leftovers(final.parent) == []
    assert_same_weights(ck.model_state_dict(ck.load_model(run)), ck.model_state_dict(model))


def test_resolve_checkpoint_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        ck.resolve_checkpoint(tmp_path / "nope")
    with pytest.raises(UserError, match="not a bytelm checkpoint"):
        ck.resolve_checkpoint(tmp_path)


def test_corrupted_weights_are_a_user_error(model, tmp_path):
    model.save(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="corrupted checkpoint"):
        bytelm.load(tmp_path / "m")
