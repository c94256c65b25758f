"""``bytelm bench speedrun`` on CPU: tiny presets on the small prepared corpus with loose targets.
The run stops at the first validation at or below the lowest target (the step metrics.jsonl
shows), times exclude validations, a target never reached is null, bad input is one line."""
import json
import time

import pytest

from bytelm.bench import speedrun as sr
from bytelm.cli.__main__ import main
from bytelm.errors import UserError
from bytelm.train.loop import Trainer
from bytelm.train.metrics import read_metrics

# tiny and fast: a high LR, so transformer-tiny passes 6 bits/byte near step 9, 4.5 near 18
FAST = {"train.batch_size": "4", "optim.lr": "3e-3", "optim.warmup_steps": "2",
        "train.log_every": "1", "eval.batch_size": "8"}


def _runs(corpus, work, overrides=None, presets=("transformer-tiny",), optims=("adamw",),
          cap_min=2.0, eval_every=3):
    return sr.run_configs(list(presets), list(optims), str(corpus), work, cap_min, eval_every,
                          1024, "cpu", {**FAST, **(overrides or {})})


def _val_steps(run_dir) -> list[tuple[int, float]]:
    return [(r["step"], r["bpb"]) for r in read_metrics(run_dir) if r["kind"] == "val"]


def test_speedrun_stops_at_target(small_corpus, tmp_path):
    targets = [6.0, 4.5]
    (row,) = sr.speedrun(_runs(small_corpus, tmp_path, {"train.steps": "400"}), targets)
    assert row["status"] == "ok" and row["stopped_by"] == "target"
    vals = _val_steps(row["run_dir"])
    for t in targets:
        first = next(s for s, bpb in vals if bpb <= t)
        hit = row["targets"][sr.target_key(t)]
        assert hit["step"] == first
        assert hit["bytes_seen"] == first * 4 * 128
        assert hit["val_bpb"] <= t
    # the run ended at the validation that reached the lowest target: nothing after it
    assert vals[-1][0] == row["targets"]["4.50"]["step"] == row["steps"] < 400
    assert vals[-1][1] <= 4.5 < min(b for _, b in vals[:-1])
    assert row["targets"]["6.00"]["step"] < row["steps"]
    assert all(s % 3 == 0 for s, _ in vals)
    assert row["final_val_bpb"] == row["best_val_bpb"] == vals[-1][1]
    assert [v["step"] for v in row["val_curve"]] == [s for s, _ in vals]
    # times: to a target <= the total; after the first step = since the start - that step
    hit = row["targets"]["6.00"]
    assert 0 < hit["time_after_first_step_s"] < hit["time_s"] < row["targets"]["4.50"]["time_s"]
    assert hit["time_s"] - hit["time_after_first_step_s"] == pytest.approx(row["first_step_s"])
    assert row["time_s"] == row["targets"]["4.50"]["time_s"]
    assert row["time_s"] + row["eval_s"] <= row["wall_s"]
    assert row["steady_bytes_per_s"] > 0


def test_speedrun_excludes_validation_time(small_corpus, tmp_path, monkeypatch):
    """Validations made 0.15 s slower: their time shows in eval_s, not in the times to target."""
    slow = 0.15
    real = Trainer.validate

    def slow_validate(self):
        time.sleep(slow)
        return real(self)

    monkeypatch.setattr(Trainer, "validate", slow_validate)
    (row,) = sr.speedrun(_runs(small_corpus, tmp_path, {"train.steps": "30"}, eval_every=2),
                         [6.0, 0.1])
    n = row["evals"]
    assert n == 15 and row["stopped_by"] == "steps"
    assert row["eval_s"] >= n * slow
    # validations before a point are not in its time: the total is the wall time less all of them
    assert row["time_s"] + row["eval_s"] <= row["wall_s"]
    gaps = [b["time_s"] - a["time_s"] for a, b in zip(row["val_curve"], row["val_curve"][1:])]
    assert min(gaps) < slow
    # a target never reached is null; the best validation is still reported
    assert row["targets"]["0.10"] is None
    assert row["best_val_bpb"] == min(v["bpb"] for v in row["val_curve"]) > 0.1


def test_speedrun_cli_writes_json(small_corpus, tmp_path, capsys):
    out = tmp_path / "res.json"
    rc = main(["bench", "speedrun", "--data", str(small_corpus),
               "--runs", "transformer-tiny,hnet-tiny", "--optims", "adamw", "--targets",
               "7.5,0.1", "--cap-min", "0.05", "--eval-every", "4", "--eval-bytes", "1024",
               "--device", "cpu", "--work", str(tmp_path / "w"), "--out", str(out),
               *[a for k, v in FAST.items() for a in ("--set", f"{k}={v}")]])
    assert rc == 0
    printed = capsys.readouterr().out
    res = json.loads(out.read_text())
    assert res["complete"] is True and res["mode"] == "speedrun"
    for key in ("device", "torch", "git_commit", "date", "command", "env", "settings", "table"):
        assert key in res, key
    assert res["command"].startswith("bytelm bench speedrun --data ")
    assert "--set optim.lr=3e-3" in res["command"]
    assert [(r["preset"], r["optim"]) for r in res["rows"]] == [
        ("transformer-tiny", "adamw"), ("hnet-tiny", "adamw")]
    for r in res["rows"]:
        assert r["status"] == "ok", r
        assert r["stopped_by"] == "cap" and r["targets"]["0.10"] is None
        assert r["targets"]["7.50"] is not None
        assert r["budget_used_s"] <= 0.05 * 60 + 2
    assert res["table"] in printed
    lines = res["table"].splitlines()
    assert len(lines) == 4 and lines[0].startswith("| preset | optim | s to 7.50 |")


@pytest.mark.parametrize("argv,match", [
    (["--runs", "transformer-nope"], "transformer-nope"),
    (["--optims", "adamw,lion"], "unknown optimizer 'lion'"),
    (["--targets", "1.6,abc"], "'abc' is not a number"),
    (["--targets", "-1"], "positive"),
    (["--data", "MISSING"], "no such folder"),
    (["--set", "optim.name=muon"], "use --optims"),
    (["--set", "trainsteps"], "KEY=VALUE"),
    (["--set", "train.nope=1"], "nope"),
    (["--cap-min", "0"], "--cap-min"),
])
def test_speedrun_bad_input(small_corpus, tmp_path, capsys, argv, match):
    base = {"--data": str(small_corpus), "--runs": "transformer-tiny"}
    flags = dict(zip(argv[::2], argv[1::2]))
    if "--data" in flags and flags["--data"] == "MISSING":
        flags["--data"] = str(tmp_path / "missing")
    args = [a for k, v in {**base, **flags}.items() for a in (k, v)]
    rc = main(["bench", "speedrun", *args, "--device", "cpu", "--work", str(tmp_path / "w"),
               "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("bytelm: error: ") and err.count("\n") == 1 and match in err, err
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "w").exists()


def test_speedrun_refuses_a_used_work_dir(small_corpus, tmp_path):
    run = tmp_path / "transformer-tiny_adamw"
    run.mkdir()
    (run / "metrics.jsonl").write_text("")
    with pytest.raises(UserError, match="not empty"):
        _runs(small_corpus, tmp_path)


def test_run_pairs():
    assert sr.run_pairs(["a", "b:muon", "a"], ["adamw", "muon"]) == [
        ("a", "adamw"), ("a", "muon"), ("b", "muon")]
    with pytest.raises(UserError, match="unknown optimizer 'lion'"):
        sr.run_pairs(["a:lion"], ["adamw"])
    assert sr.parse_targets("1.5, 1.60") == [1.6, 1.5]
    assert [sr.target_key(t) for t in (1.6, 1.5, 1.555)] == ["1.60", "1.50", "1.555"]
