"""benchmarks/ablate_lm.py: variants parsed into model overrides, each trained on the same data
and recipe, their validation curves and final bpb written to one JSON."""
import json
import math

from tests.scripts import load_benchmark


def test_parse_variants():
    mod = load_benchmark("ablate_lm")
    assert mod.parse_variants("default=;no_norm=encoder_norm=false,window=4") == [
        ("default", {}), ("no_norm", {"model.encoder_norm": "false", "model.window": "4"})]


def test_ablate_lm_runs_every_variant(corpus, tmp_path):
    mod = load_benchmark("ablate_lm")
    out = tmp_path / "a.json"
    mod.main(["--preset", "agiformer-tiny", "--data", str(corpus), "--steps", "4", "--evals", "2",
              "--variants", "default=;no_encoder_norm=encoder_norm=false", "--out", str(out),
              "--", "--train.batch_size=2", "--train.device=cpu"])
    res = json.loads(out.read_text())
    assert res["command"].startswith("python benchmarks/ablate_lm.py --preset agiformer-tiny")
    assert [r["name"] for r in res["runs"]] == ["default", "no_encoder_norm"]
    assert res["runs"][1]["overrides"] == {"model.encoder_norm": "false"}
    for r in res["runs"]:
        assert math.isfinite(r["final_val_bpb"]) and [p["step"] for p in r["val_curve"]] == [2, 4]
    # the variant really changed the model: the encoder's norm gain (d_model 64) is gone
    assert res["runs"][0]["n_params"] - res["runs"][1]["n_params"] == 64
