"""benchmarks/flop_count.py: counted matmul FLOPs per byte beside ``flops_per_byte``."""
import json

import pytest

from tests.scripts import load_benchmark


@pytest.mark.parametrize("preset,stack", [("transformer-tiny", "blocks"), ("bsfin-tiny", "layers")])
def test_counted_flops(preset, stack, tmp_path, one_thread):
    text = tmp_path / "t.txt"
    text.write_bytes(b"The quick brown fox jumps over the lazy dog. " * 20)
    out = tmp_path / "c.json"
    load_benchmark("flop_count").main([preset, "--text", str(text), "--batch", "2",
                                       "--seq-len", "128", "--out", str(out)])
    (r,) = json.loads(out.read_text())["runs"]
    # every top-level module counted once (ModuleList entries under their list): the rest is
    # the model's own forward, never negative; the Transformer has none
    assert r["outside_modules_forward"] >= 0
    assert r["outside_modules_forward"] == 0 or preset != "transformer-tiny"
    assert r["by_module_forward"][stack] > 0  # a ModuleList's layers, summed under its name
    # a matmul's backward is two matmuls of its size
    assert r["counted_per_byte"] == pytest.approx(3 * r["counted_forward_per_byte"], rel=0.02)
    assert r["ratio"] == pytest.approx(r["counted_per_byte"] / r["flops_per_byte"])
