"""bytelm.bench.timing and bytelm.bench.ceilings: medians of known durations, sane ceilings."""
import math
import time

import pytest
import torch

from bytelm.bench import Stopwatch, time_fn
from bytelm.bench.ceilings import measure


def test_time_fn_sleep():
    calls = []

    def fn():
        calls.append(1)
        time.sleep(0.02)

    r = time_fn(fn, warmup=1, reps=5, device="cpu")
    assert len(calls) == 1 + 1 + 5
    assert r["reps"] == 5 and len(r["times_ms"]) == 5
    assert 19.0 <= r["min_ms"] <= r["median_ms"] <= r["max_ms"]
    assert r["median_ms"] < 200.0
    assert r["first_call_ms"] >= 19.0
    # the warm-up time covers the first call and the one warm-up call
    assert r["warmup_ms"] >= 2 * 19.0


def test_time_fn_first_call_kept_apart():
    state = {"n": 0}

    def fn():
        # a slow first call, as compilation makes one
        time.sleep(0.1 if state["n"] == 0 else 0.005)
        state["n"] += 1

    r = time_fn(fn, warmup=0, reps=3, device="cpu")
    assert r["first_call_ms"] >= 99.0
    assert r["median_ms"] < 50.0


def test_time_fn_rejects_bad_counts():
    with pytest.raises(ValueError):
        time_fn(lambda: None, warmup=0, reps=0, device="cpu")
    with pytest.raises(ValueError):
        time_fn(lambda: None, warmup=-1, reps=1, device="cpu")


def test_stopwatch_cpu():
    sw = Stopwatch("cpu")
    for _ in range(2):
        sw.start()
        time.sleep(0.01)
        sw.stop()
    times = sw.times_ms()
    assert len(times) == 2 and all(9.0 <= t < 200.0 for t in times)
    with pytest.raises(RuntimeError):
        sw.stop()


def test_measure_ceilings_cpu():
    c = measure("cpu", matmul_n=128, copy_mib=4, warmup=1, reps=3)
    assert c["device"] == "cpu" and c["matmul_dtype"] == "float32"
    for key in ("matmul_tflops_measured", "copy_tb_per_s_measured"):
        assert math.isfinite(c[key]) and c[key] > 0


@pytest.mark.gpu
def test_time_fn_cuda_events():
    # a device-side spin: the host returns at once, so only events (or a sync) can see it
    def spin():
        torch.cuda._sleep(10_000_000)  # ~5-7 ms at H100 clocks

    r = time_fn(spin, warmup=2, reps=5, device="cuda")
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    spin()
    torch.cuda.synchronize()
    wall_ms = (time.perf_counter() - t0) * 1e3
    assert r["median_ms"] > 1.0
    assert abs(r["median_ms"] - wall_ms) < 0.3 * wall_ms + 0.5
    c = measure("cuda")
    assert c["matmul_dtype"] == "bfloat16" and c["matmul_tflops_measured"] > 10
