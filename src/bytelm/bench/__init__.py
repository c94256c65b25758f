"""Benchmarks behind ``bytelm bench``: training throughput, generation speed, mixer cost.

``timing.time_fn`` times any callable (CUDA events on GPU, perf_counter on CPU, first call
apart); ``ceilings.measure`` gives the measured matmul and copy ceilings every result carries.
"""
from bytelm.bench.ceilings import measure as measure_ceilings
from bytelm.bench.timing import Stopwatch, time_fn

__all__ = ["time_fn", "Stopwatch", "measure_ceilings"]
