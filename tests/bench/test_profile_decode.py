"""benchmarks/profile_decode.py on CPU: per-step times, patch closings counted from the state
(BSFIN) or absent (families without patches), the profiled host ops, and the JSON written."""
import json
import math

import pytest

from tests.scripts import load_benchmark


@pytest.fixture(scope="module")
def profile_decode():
    return load_benchmark("profile_decode")


@pytest.mark.parametrize("preset", ["bsfin-tiny", "agiformer-tiny"])
def test_profile_decode_cpu(profile_decode, preset, tmp_path, one_thread):
    out = tmp_path / "d.json"
    profile_decode.main(["--preset", preset, "--device", "cpu", "--prompt", "40", "--bytes", "12",
                         "--profile", "2", "--top", "5", "--out", str(out)])
    res = json.loads(out.read_text())
    assert res["command"].startswith(f"python benchmarks/profile_decode.py --preset {preset}")
    assert len(res["steps"]) == 12 and all(s["ms"] > 0 for s in res["steps"])
    assert res["step_ms_min"] <= res["step_ms_median"] <= res["step_ms_max"]
    closed = [s["closed"] for s in res["steps"]]
    if preset.startswith("bsfin"):
        # bsfin-tiny's patches are at most max_patch bytes: 12 steps close at least one
        assert all(c in (0, 1) for c in closed) and res["steps_closing_patch"] == sum(closed) >= 1
    else:
        assert all(c is None for c in closed) and res["steps_closing_patch"] == 0
    assert res["profiled_steps"] == 2 and math.isfinite(res["profiled_wall_ms_per_step"])
    assert res["idle_fraction"] is None and res["kernels_per_step"] > 10
    host = res["top_host_ops"]
    assert len(host) == 5 and [r["self_us_per_step"] for r in host] == sorted(
        (r["self_us_per_step"] for r in host), reverse=True)


def test_profile_decode_cache_overflow_is_a_clear_error(profile_decode, tmp_path):
    with pytest.raises(SystemExit, match="exceed the .*-byte cache; lower --prompt"):
        profile_decode.main(["--preset", "bsfin-tiny", "--device", "cpu", "--context", "64",
                             "--prompt", "40", "--bytes", "20", "--profile", "4",
                             "--out", str(tmp_path / "d.json")])


def test_profile_decode_compiled_agiformer(profile_decode, tmp_path, one_thread):
    out = tmp_path / "c.json"
    profile_decode.main(["--preset", "agiformer-tiny", "--device", "cpu", "--prompt", "40",
                         "--bytes", "6", "--profile", "2", "--decode", "compiled",
                         "--out", str(out)])
    res = json.loads(out.read_text())
    # the default warm-up builds every in-patch phase's graph: 4 x patch_size steps
    assert res["decode"] == "compiled" and res["warmup_steps"] == 16
    assert len(res["steps"]) == 6 and all(s["closed"] is None for s in res["steps"])
    assert "(compiled)" in res["summary"] and "closing a patch" not in res["summary"]
