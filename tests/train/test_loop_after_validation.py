"""Trainer(after_validation=...): a stop condition checked after every validation, and the
invocation's clock (first step, validation seconds) in the summary."""
from bytelm.train.loop import Trainer

from tests.train._helpers import logged_steps


def test_after_validation_stops_the_run(make_cfg, tmp_path):
    seen = []

    def stop_at_second(trainer, res):
        seen.append((trainer.step, res["bpb"], trainer.eval_time))
        return len(seen) == 2

    cfg = make_cfg(tmp_path / "R", {"train.steps": 20, "train.eval_every": 3})
    s = Trainer(cfg, after_validation=stop_at_second).run()
    assert [st for st, _, _ in seen] == [3, 6]
    assert s["steps"] == 6 and s["stopped_early"] and s["val_bpb"] == seen[-1][1]
    assert logged_steps(tmp_path / "R", "val") == [3, 6]
    assert logged_steps(tmp_path / "R", "train")[-1] == 6
    # the validation just run is already in eval_time when the hook sees it
    assert 0 < seen[0][2] < seen[1][2] == s["eval_time_s"]
    assert 0 < s["first_step_s"] < s["train_time_s"]


def test_after_validation_false_changes_nothing(make_cfg, tmp_path):
    calls = []
    cfg = make_cfg(tmp_path / "R", {"train.steps": 6, "train.eval_every": 2})
    s = Trainer(cfg, after_validation=lambda t, r: calls.append(t.step) or False).run()
    assert calls == [2, 4, 6] and s["steps"] == 6 and not s["stopped_early"]
