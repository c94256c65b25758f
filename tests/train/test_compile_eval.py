"""train.compile_eval: validation through a compiled copy of the model gives the eager
validation's bpb (CPU inductor), and is off unless asked for."""
import torch

from bytelm.train.loop import Trainer


def test_compiled_validation_equals_eager(make_cfg, tmp_path):
    torch._dynamo.reset()
    base = {"train.steps": 2, "train.eval_every": 2, "train.compile": True}
    runs = {}
    for on in (False, True):
        cfg = make_cfg(tmp_path / f"R{on}", {**base, "train.compile_eval": on})
        t = Trainer(cfg)
        runs[on] = (t.run()["val_bpb"], t.eval_model is t.model)
    assert runs[False][1] and not runs[True][1]  # eager model / its compiled copy
    assert abs(runs[True][0] - runs[False][0]) < 1e-4, runs
