"""benchmarks/param_counts.py: exact counts of presets with overrides, as a result file."""
import json

from tests.scripts import load_benchmark


def test_counts_with_overrides(tmp_path):
    out = tmp_path / "c.json"
    load_benchmark("param_counts").main(["transformer-tiny:n_layers=1", "--out", str(out)])
    (c,) = json.loads(out.read_text())["counts"]
    # embedding 256x64, one layer (norms 2x64, qkv 3x64x64, proj 64x64, SwiGLU 3x64x192),
    # final norm 64, head 256x64
    assert c["config"]["n_layers"] == 1
    assert c["n_params"] == 256 * 64 + (2 * 64 + 4 * 64 * 64 + 3 * 64 * 192) + 64 + 256 * 64
    assert c["n_params_non_embedding"] == c["n_params"] - 256 * 64
