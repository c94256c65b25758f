"""Timing on CPU and GPU: CUDA events on GPU, perf_counter on CPU, first call kept apart.

Device work is asynchronous, so a host clock read without a synchronize measures the launch,
not the work. On CUDA each region is bracketed by events and read after one synchronize; the
first call (module load, autotuning, torch.compile) is timed on the host clock between two
synchronizes and reported separately, never folded into the median.
"""
import statistics
import time
from typing import Any, Callable

import torch


def as_device(device=None) -> torch.device:
    """``device`` as a torch.device; None is CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def synchronize(device) -> None:
    """Waits for all queued work on ``device`` (a no-op on CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Times regions of device work: ``start()`` ... ``stop()``, then ``times_ms()``.

    On CUDA each region is a pair of events on the current stream, read once at the end (no sync
    between regions, so back-to-back regions run as they would unobserved); on CPU it is
    perf_counter.
    """

    def __init__(self, device):
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self._marks: list[Any] = []
        self._open: Any = None

    def start(self) -> None:
        if self.cuda:
            self._open = torch.cuda.Event(enable_timing=True)
            self._open.record()
        else:
            self._open = time.perf_counter()

    def stop(self) -> None:
        if self._open is None:
            raise RuntimeError("Stopwatch.stop() without start()")
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
        else:
            end = time.perf_counter()
        self._marks.append((self._open, end))
        self._open = None

    def times_ms(self) -> list[float]:
        """Milliseconds of every closed region, in order (synchronizes on CUDA)."""
        if self.cuda:
            synchronize(self.device)
            return [s.elapsed_time(e) for s, e in self._marks]
        return [(e - s) * 1e3 for s, e in self._marks]


def time_first_call(fn: Callable[[], Any], device) -> tuple[Any, float]:
    """(result of fn(), host milliseconds from a synchronized start to a synchronized end)."""
    synchronize(device)
    t0 = time.perf_counter()
    out = fn()
    synchronize(device)
    return out, (time.perf_counter() - t0) * 1e3


def time_fn(fn: Callable[[], Any], warmup: int = 3, reps: int = 10, device=None) -> dict:
    """Times ``fn()``: one first call, ``warmup`` more untimed calls, then ``reps`` timed calls.

    Args:
        fn: the work to time; its return value is dropped.
        warmup: untimed calls after the first one (>= 0).
        reps: timed calls (>= 1); the median is the reported time.
        device: where fn's work runs (None: CUDA when available); CUDA events on GPU,
            perf_counter on CPU.
    Returns:
        dict with median_ms, min_ms, max_ms, first_call_ms (host clock, includes compilation),
        warmup_ms (first call plus the warm-up calls, host clock), reps and times_ms (each rep).
    """
    if warmup < 0 or reps < 1:
        raise ValueError(f"need warmup >= 0 and reps >= 1, got warmup={warmup}, reps={reps}")
    device = as_device(device)
    t0 = time.perf_counter()
    _, first_ms = time_first_call(fn, device)
    for _ in range(warmup):
        fn()
    synchronize(device)
    warmup_ms = (time.perf_counter() - t0) * 1e3
    sw = Stopwatch(device)
    for _ in range(reps):
        sw.start()
        fn()
        sw.stop()
    times = sw.times_ms()
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times),
            "first_call_ms": first_ms, "warmup_ms": warmup_ms, "reps": reps, "times_ms": times}
