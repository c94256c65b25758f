"""Learning-curve and inspection figures from synthetic inputs."""
import json

import numpy as np
import pytest

from bytelm.errors import UserError
from bytelm.eval.plots import load_curves, plot_inspection, plot_learning_curves


def _run(d, stages=True):
    d.mkdir()
    recs = [{"kind": "stage", "step": 0, "bytes_seen": 0, "name": "a"}] if stages else []
    recs += [{"kind": "train", "step": 2, "bytes_seen": 200, "losses": [5.0, 4.0]},
             {"kind": "val", "step": 2, "bytes_seen": 200, "bpb": 6.0},
             {"kind": "train", "step": 4, "bytes_seen": 400, "losses": [3.0, 2.0]}]
    if stages:
        recs.insert(3, {"kind": "stage", "step": 3, "bytes_seen": 300, "name": "b"})
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs) + '{"kind": "tr')
    return d


def test_load_curves(tmp_path):
    c = load_curves(_run(tmp_path / "r1"))
    steps, seen, bpb = c["train"]
    assert steps == [1, 2, 3, 4] and seen == [100, 200, 300, 400]
    assert bpb == pytest.approx([v / np.log(2) for v in (5, 4, 3, 2)])
    assert c["val"] == ([2], [200.0], [6.0])
    assert c["stages"] == [(0, 0.0, "a"), (3, 300.0, "b")] and c["name"] == "r1"
    with pytest.raises(UserError, match="metrics.jsonl"):
        load_curves(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "metrics.jsonl").write_text("")
    with pytest.raises(UserError, match="no train or val"):
        load_curves(tmp_path / "empty")


def test_plot_learning_curves(tmp_path):
    out = plot_learning_curves([_run(tmp_path / "r1"), _run(tmp_path / "r2", stages=False)],
                               tmp_path / "sub" / "c.png")
    assert out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("with_act", [True, False])
def test_plot_inspection(tmp_path, with_act):
    rng = np.random.default_rng(0)
    rep = {"title": "t", "plasticity": 0.5,
           "gate": {"mean": [0.4, 0.6], "std": [0.1, 0.05], "head_mean": [[0.3, 0.5], []]},
           "decay": {"values": [rng.uniform(0.4, 0.5, 50) for _ in range(4)]},
           "act": {"steps_pos": rng.uniform(1, 3, 16), "dz_pos": rng.uniform(0, 1, 16),
                   "steps_hist": {1: 3, 3: 13}} if with_act else None}
    out = plot_inspection(rep, tmp_path / "i.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
