"""Curriculum training: schedule, sampler, plasticity, validation, exact resume, TOML and CLI."""
import json
import logging

import numpy as np
import pytest

from bytelm.cli.__main__ import main
from bytelm.config import CurriculumConfig, StageConfig
from bytelm.options import build_run_config, parse_curriculum
from bytelm.errors import UserError
from bytelm.train import curriculum as C
from bytelm.train.loop import Trainer, train
from bytelm.train.metrics import read_metrics

from tests.train._helpers import assert_same_weights, ckpt_weights, step_losses
from tests.conftest import data_path
from tests.train.conftest import BASE



def _cc(untils, alphas=(0.1, 0.5, 0.99), blend=0, schedule="step", n=3):
    stages = [StageConfig(name=f"s{i}", data=[f"/d{i}"], until=untils[i] if i < n - 1 else None,
                          plasticity=alphas[i]) for i in range(n)]
    return CurriculumConfig(stages=stages, blend_steps=blend, schedule=schedule)


# --- schedule ----------------------------------------------------------------------------------

def test_stage_ends_in_steps_and_fractions():
    assert _cc([3000, 8000]).stage_ends(20000) == [3000, 8000]
    assert _cc([0.15, 0.40]).stage_ends(20000) == [3000, 8000]
    assert _cc([0.15, 8000]).stage_ends(20000) == [3000, 8000]
    # defaults of a 3-stage curriculum: the seed's 0.15 / 0.40 and 0.10 / 0.50 / 0.99
    d = CurriculumConfig(stages=[StageConfig(name=n, data=["/x"]) for n in "abc"])
    assert [s.until for s in d.stages] == [0.15, 0.40, None]
    assert [s.plasticity for s in d.stages] == [0.10, 0.50, 0.99]
    with pytest.raises(UserError, match="must increase"):
        _cc([0.5, 0.3])
    with pytest.raises(UserError, match="inside the run"):
        _cc([7000, 0.3]).stage_ends(20000)  # steps and fractions clash: 7000 > 6000
    with pytest.raises(UserError, match="inside the run"):
        _cc([10, 30]).stage_ends(20)
    assert _cc([10, 30]).stage_ends(20, strict=False) == [10, 20]  # a shortened run


def test_stage_at_boundaries_and_plasticity_step():
    s = C.CurriculumSchedule(_cc([4, 9]), total_steps=12)
    assert [s.stage_at(i) for i in range(12)] == [0] * 4 + [1] * 5 + [2] * 3
    assert [s.plasticity(i) for i in (3, 4, 8, 9)] == [0.1, 0.5, 0.5, 0.99]
    assert s.final_plasticity == 0.99
    assert s.stage_weights(3).tolist() == [1, 0, 0] and s.stage_weights(4).tolist() == [0, 1, 0]


def test_blend_weights_and_linear_plasticity():
    s = C.CurriculumSchedule(_cc([10, 20], blend=3, schedule="linear"), total_steps=40)
    w = np.stack([s.stage_weights(i) for i in range(40)])
    assert np.allclose(w.sum(1), 1)
    assert w[9].tolist() == [1, 0, 0]
    assert np.allclose(w[10:14, 1], [0.25, 0.5, 0.75, 1.0])
    assert np.allclose(w[10:14, 0], [0.75, 0.5, 0.25, 0.0])
    assert np.allclose(w[20:24, 2], [0.25, 0.5, 0.75, 1.0])
    assert [s.plasticity(i) for i in (9, 11)] == [0.1, pytest.approx(0.3)]
    assert s.plasticity(23) == pytest.approx(0.99) and s.plasticity(22) == pytest.approx(0.5 + 0.75 * 0.49)
    # the data blends but "step" plasticity switches at the boundary
    s2 = C.CurriculumSchedule(_cc([10, 20], blend=3), total_steps=40)
    assert [s2.plasticity(i) for i in (9, 10, 11)] == [0.1, 0.5, 0.5]


# --- sampler -----------------------------------------------------------------------------------

def _sampler(blend=0, batch=8, rank=0, world=1, accum=1, mix=None, seed=3):
    a = np.full(500, ord("a"), np.uint8)
    b = np.full(400, ord("b"), np.uint8)
    c = np.arange(300, dtype=np.uint8)
    sched = C.CurriculumSchedule(_cc([4, 8], blend=blend), total_steps=12)
    mix = np.eye(3) if mix is None else mix
    return C.CurriculumSampler([a, b, c], mix, sched, seq_len=16, batch_size=batch, seed=seed,
                               rank=rank, world_size=world, grad_accum=accum)


def test_sampler_is_deterministic_and_follows_stages():
    s1, s2 = _sampler(), _sampler()
    seq = [s1.next_batch() for _ in range(12)]
    assert all((x == y).all() for x, y in zip(seq, (s2.batch_at(i) for i in range(12))))
    assert all((seq[i] == ord("a")).all() for i in range(4))
    assert all((seq[i] == ord("b")).all() for i in range(4, 8))
    assert all(((seq[i] != ord("a")) | (seq[i] != ord("b"))).all() for i in range(8, 12))
    assert not (_sampler(seed=4).batch_at(9) == seq[9]).all()
    # rows are a function of (seed, i, r): 2 ranks of batch 4 == 1 rank of batch 8
    halves = [_sampler(batch=4, rank=r, world=2).batch_at(9) for r in (0, 1)]
    assert (np.concatenate(halves) == seq[9].numpy()).all()
    # grad_accum: micro-batch i belongs to step i // accum
    acc = _sampler(accum=2)
    assert (acc.batch_at(7) == ord("a")).all() and (acc.batch_at(8) == ord("b")).all()


def test_sampler_resume_and_blend_mixture():
    s = _sampler(blend=3)
    for _ in range(5):
        s.next_batch()
    state = json.loads(json.dumps(s.state_dict()))
    t = _sampler(blend=3)
    t.load_state_dict(state)
    assert all((s.next_batch() == t.next_batch()).all() for _ in range(7))
    with pytest.raises(UserError, match="curriculum"):
        t.load_state_dict({"batch_index": 3, "seed": 3})  # a flat run's sampler state
    # a weighted mixture inside one stage: corpus shares follow the weights
    mix = np.array([[0.75, 0.25, 0], [0, 1, 0], [0, 0, 1]])
    m = _sampler(batch=400, mix=mix)
    corpus = np.concatenate([m.rows(i)[0] for i in range(4)])
    assert abs((corpus == 0).mean() - 0.75) < 0.04 and set(corpus.tolist()) == {0, 1}
    # blending stage 0 -> 1 over 3 steps: step 5 (t = 0.5) draws from both corpora
    mid = _sampler(blend=3, batch=400).rows(5)[0]
    assert abs((mid == 1).mean() - 0.5) < 0.08


# --- trainer -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tr_corpus(tmp_path_factory):
    from bytelm.data import prepare
    src = data_path("small", "tr.txt")
    out = tmp_path_factory.mktemp("cur-corpus") / "tr"
    prepare([str(src)], out)
    return out


def _cur_cfg(out_dir, corpus, tr_corpus, over=None, preset="agiformer-tiny", **cur):
    cur_dict = {"stages": [
        {"name": "one", "data": [str(tr_corpus)], "until": 4, "plasticity": 0.1},
        {"name": "two", "data": [str(corpus)], "until": 9, "plasticity": 0.5},
        {"name": "three", "data": [str(tr_corpus), str(corpus)], "weights": [1, 3],
         "plasticity": 0.99}], **cur}
    return build_run_config(preset, {**BASE, "train.out_dir": str(out_dir), "data.seq_len": 32,
                                     "train.batch_size": 2, "train.eval_bytes": 256,
                                     **(over or {})}, curriculum=cur_dict)


def test_resume_across_stage_boundaries_is_exact(corpus, tr_corpus, tmp_path):
    N = 6  # boundaries at 4 (before the resume point) and 9 (after it), blended
    over = {"train.steps": 2 * N, "train.eval_every": N}
    kw = {"blend_steps": 2, "schedule": "linear"}
    sa = train(_cur_cfg(tmp_path / "A", corpus, tr_corpus, over, **kw))
    train(_cur_cfg(tmp_path / "B", corpus, tr_corpus, {**over, "train.stop_after": N}, **kw))
    sb = Trainer(_cur_cfg(tmp_path / "B", corpus, tr_corpus, over, **kw), resume=True).run()
    la, lb = step_losses(tmp_path / "A"), step_losses(tmp_path / "B")
    assert [s for s, _ in la] == list(range(1, 2 * N + 1)) and lb == la
    assert_same_weights(ckpt_weights(tmp_path / "A" / "ckpt" / "last"),
                        ckpt_weights(tmp_path / "B" / "ckpt" / "last"))
    assert sa["val_bpb"] == sb["val_bpb"]
    stages = {d: [(r["step"], r["name"]) for r in read_metrics(tmp_path / d) if r["kind"] == "stage"]
              for d in "AB"}
    assert stages["A"] == stages["B"] == [(0, "one"), (4, "two"), (9, "three")]
    st = json.loads((tmp_path / "B" / "ckpt" / "last" / "trainer_state.json").read_text())
    assert st["sampler"]["kind"] == "curriculum" and st["sampler"]["batch_index"] == 2 * N
    # train records carry stage and plasticity; the memory decay follows the plasticity
    for r in read_metrics(tmp_path / "A"):
        if r["kind"] == "train":
            assert r["decay_mean"] <= r["plasticity"] + 1e-6
            assert r["decay_mean"] >= 0.99 * r["plasticity"] - 1e-6
    alphas = {r["step"]: r["plasticity"] for r in read_metrics(tmp_path / "A") if r["kind"] == "train"}
    assert alphas[4] == 0.1 and alphas[5] == pytest.approx(0.1 + 0.4 / 3) and alphas[12] == 0.99


def test_validation_uses_the_final_plasticity(corpus, tr_corpus, tmp_path, monkeypatch):
    import bytelm.eval.bpb as bpb
    seen = []
    real = bpb.evaluate_bpb

    def spy(model, split, **kw):
        seen.append((model.plasticity, str(getattr(split, "path", ""))))
        return real(model, split, **kw)
    monkeypatch.setattr(bpb, "evaluate_bpb", spy)
    t = Trainer(_cur_cfg(tmp_path / "V", corpus, tr_corpus, {"train.steps": 12, "train.stop_after": 3}))
    t.run()  # validates at step 3, in stage "one" (alpha 0.1)
    assert [a for a, _ in seen] == [0.99, 0.99]  # two corpora, each scored once
    assert t.model.plasticity == 0.1  # restored
    val = [r for r in read_metrics(tmp_path / "V") if r["kind"] == "val"][-1]
    assert val["plasticity"] == 0.99
    assert set(val) >= {"val_bpb_one", "val_bpb_two", "val_bpb_three", "bpb"}
    assert val["bpb"] == val["val_bpb_three"]
    assert min(val["val_bpb_one"], val["val_bpb_two"]) <= val["bpb"] <= max(val["val_bpb_one"],
                                                                          val["val_bpb_two"])
    # the saved model carries the final alpha, so `bytelm eval` scores it as validated
    cfg = json.loads((tmp_path / "V" / "ckpt" / "best" / "config.json").read_text())
    assert cfg["plasticity"] == 0.99


def test_model_without_plasticity_warns_once(corpus, tr_corpus, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="bytelm.train.curriculum"):
        s = train(_cur_cfg(tmp_path / "T", corpus, tr_corpus, {"train.steps": 10, "train.stop_after": 5},
                           preset="transformer-tiny"))
    assert s["steps"] == 5
    assert sum("set_plasticity" in r.message for r in caplog.records) == 1
    val = [r for r in read_metrics(tmp_path / "T") if r["kind"] == "val"][-1]
    assert "plasticity" not in val and "val_bpb_two" in val


# --- curriculum files and the CLI --------------------------------------------------------------

def _toml(path, stages: str, head: str = "") -> str:
    path.write_text(head + "\n[curriculum]\nblend_steps = 0\n" + stages)
    return str(path)


def _stage(name, data, extra=""):
    return f'[[curriculum.stages]]\nname = "{name}"\ndata = {json.dumps(data)}\n{extra}\n'


@pytest.fixture
def slices(tmp_path, monkeypatch):
    """30 KB slices of the Turkish dictionary, simple sentences and running text, in tmp_path
    (also the current directory, so files can name them relatively)."""
    TR = data_path("tr")
    for name, src in (("dict.txt", TR / "dictionary.txt"), ("simple.txt", TR / "simple_sentences.txt"),
                      ("text.txt", TR / "text" / "nutuk.txt")):
        raw = src.read_bytes()[:30_000]
        (tmp_path / name).write_bytes(raw[:raw.rfind(b"\n") + 1])
    monkeypatch.chdir(tmp_path)
    return tmp_path


BAD = {
    "missing-path": (_stage("a", "nope.txt", "until = 0.2") + _stage("b", "dict.txt"),
                     ["path not found", "nope.txt"]),
    "fractions-not-increasing": (_stage("a", "dict.txt", "until = 0.5") +
                                 _stage("b", "dict.txt", "until = 0.3") + _stage("c", "dict.txt"),
                                 ["must increase"]),
    "plasticity-zero": (_stage("a", "dict.txt", "until = 0.5\nplasticity = 0.0") +
                        _stage("b", "dict.txt"), ["plasticity must be in (0, 1]"]),
    "plasticity-big": (_stage("a", "dict.txt", "until = 0.5") +
                       _stage("b", "dict.txt", "plasticity = 1.5"), ["plasticity must be in (0, 1]"]),
    "unknown-stage-key": (_stage("a", "dict.txt", "untill = 0.5") + _stage("b", "dict.txt"),
                          ["unknown key curriculum.stages[0].untill", "did you mean"]),
    "unknown-key": ("blend = 3\n" + _stage("a", "dict.txt"), ["unknown key curriculum.blend"]),
    "until-on-last": (_stage("a", "dict.txt", "until = 5"), ["last stage"]),
    "until-missing": (_stage("a", "dict.txt") + _stage("b", "dict.txt"), ["until is required"]),
    "bad-name": (_stage("a/b", "dict.txt"), ["stage name"]),
    "weights-length": (_stage("a", ["dict.txt", "text.txt"], "weights = [1]"), ["one value per"]),
    "until-type": (_stage("a", "dict.txt", 'until = "10"') + _stage("b", "dict.txt"),
                   ["until must be a number"]),
    "ends-outside-run": (_stage("a", "dict.txt", "until = 500") + _stage("b", "dict.txt"),
                         ["inside the run"]),
    "no-stages": ("", ["[[curriculum.stages]]"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_curriculum_file_is_one_line(slices, case, capsys):
    body, needles = BAD[case]
    f = _toml(slices / "cur.toml", body, "[train]\nsteps = 100\n")
    rc = main(["train", "--curriculum", f, "--train.device=cpu"])
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and len(err.splitlines()) == 1, err
    assert err.startswith("bytelm: error: ") and "Traceback" not in err
    for n in needles:
        assert n in err, err
    with pytest.raises(UserError):  # the same check from the library
        from bytelm.options import load_toml
        t = load_toml(f)
        cur = parse_curriculum(t["curriculum"], f, slices)
        cur.stage_ends(100)


def test_cli_flags_that_conflict_with_a_curriculum(slices, capsys):
    f = _toml(slices / "cur.toml", _stage("a", "dict.txt"))
    for argv, needle in ((["--data", "x"], "--data"), (["--config", f], "either --config"),
                         (["--curriculum.nope=1"], "curriculum.nope")):
        assert main(["train", "--curriculum", f, *argv]) == 2
        assert needle in capsys.readouterr().err
    plain = slices / "plain.toml"
    plain.write_text("[train]\nsteps = 3\n")
    assert main(["train", "--curriculum", str(plain)]) == 2
    assert "no [curriculum] table" in capsys.readouterr().err


def test_stage_data_is_prepared_once(slices, corpus, tmp_path):
    cc = CurriculumConfig(stages=[
        StageConfig(name="a", data=[str(slices / "dict.txt"), str(slices / "simple.txt")], until=5),
        StageConfig(name="b", data=[str(slices / "text.txt"), str(corpus)], weights=[1, 2])])
    root = tmp_path / "run" / "data"
    got = C.stage_corpora(cc, root)
    # without weights the raw files of a stage make one corpus; with weights, one each
    assert got[0] == [(root / "a", None)]
    assert got[1] == [(root / "b" / "0-text.txt", 1.0), (corpus, 2.0)]
    meta = (root / "a" / "meta.json").stat().st_mtime_ns
    assert C.stage_corpora(cc, root) == got
    assert (root / "a" / "meta.json").stat().st_mtime_ns == meta  # reused, not prepared again


def test_shipped_curriculum_file_parses(monkeypatch):
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    data_path("tr")  # skips without the shared data
    monkeypatch.chdir(root)
    cfg = build_run_config(None, {}, "configs/curriculum_tr.toml")
    cur = cfg.curriculum
    assert [s.name for s in cur.stages] == ["childhood", "youth", "adulthood"]
    assert cur.stage_ends(cfg.train.steps) == [3000, 8000]
    assert [s.plasticity for s in cur.stages] == [0.10, 0.50, 0.99]
    assert cfg.preset == "agiformer-31m" and cfg.model.plasticity == 0.99
    assert all(Path(d).is_file() for s in cur.stages for d in s.data)
    # an explicit --preset wins over the file's
    assert build_run_config("agiformer-tiny", {}, "configs/curriculum_tr.toml").preset == "agiformer-tiny"


def test_cli_curriculum_end_to_end(slices, capsys):
    stages = (_stage("childhood", "dict.txt", "until = 10\nplasticity = 0.1")
              + _stage("youth", "simple.txt", "until = 20\nplasticity = 0.5")
              + _stage("adulthood", ["text.txt"], "plasticity = 0.99"))
    f = _toml(slices / "cur.toml", stages, 'preset = "agiformer-tiny"\n[train]\nsteps = 30\n'
              'batch_size = 2\neval_every = 15\neval_bytes = 512\nlog_every = 5\n'
              'progress = false\ndevice = "cpu"\nout_dir = "run"\n[data]\nseq_len = 64\n')
    assert main(["train", "--curriculum", f]) == 0
    run = slices / "run"
    for name in ("childhood", "youth", "adulthood"):
        assert (run / "data" / name / "meta.json").is_file()
    recs = read_metrics(run)
    assert [(r["step"], r["name"], r["plasticity"]) for r in recs if r["kind"] == "stage"] == [
        (0, "childhood", 0.1), (10, "youth", 0.5), (20, "adulthood", 0.99)]
    vals = [r for r in recs if r["kind"] == "val"]
    assert [v["step"] for v in vals] == [15, 30] and all(v["plasticity"] == 0.99 for v in vals)
    assert all(f"val_bpb_{n}" in vals[0] for n in ("childhood", "youth", "adulthood"))
    saved = json.loads((run / "run_config.json").read_text())
    assert saved["curriculum"]["stages"][0]["data"] == [str(slices / "dict.txt")]
    assert saved["data"]["path"] == str(run / "data" / "adulthood")
    capsys.readouterr()
    # resume with a longer run: the saved curriculum is used (no --curriculum needed), data reused
    assert main(["train", "--resume", "--out", str(run), "--train.steps=34"]) == 0
    train_steps = [r["step"] for r in read_metrics(run) if r["kind"] == "train"]
    assert train_steps[-1] == 34
    assert main(["eval", str(run), "--split", "val", "--max-bytes", "256", "--device", "cpu"]) == 0
