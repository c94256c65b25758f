"""Sequence-mixer cost alone: forward + backward of one mixing op at each sequence length T.

Ops (each at B, H heads of width D, bf16 on GPU / fp32 on CPU unless asked otherwise):
  sdpa     full causal softmax attention, F.scaled_dot_product_attention (torch picks the kernel)
  swa      sliding-window attention, bytelm.ops.swa (naive / chunk = blocked / triton = flex)
  linear   causal linear attention: bytelm.ops.hebbian with g = 0
  hebbian  the Hebbian memory: bytelm.ops.hebbian with a random log decay g <= 0
A combination that would not fit in memory, or whose estimated time exceeds the per-case
budget, is recorded as "skipped: <reason>" instead of being run.
"""
import logging
import math
from typing import Callable

import torch
import torch.nn.functional as F

from bytelm.bench.memory import (device_peak_gib, failure_status, free_bytes, host_peak_rss_gib,
                                 reset_peak)
from bytelm.bench.timing import time_fn

log = logging.getLogger(__name__)

OPS = ("sdpa", "swa", "linear", "hebbian")
IMPLS = ("naive", "chunk", "triton")
# chunk length assumed by the memory estimate of the chunked forms
_CHUNK = 64
# fraction of the free memory a case may be estimated to need
_MEM_FRACTION = 0.8


def useful_flops(op: str, B: int, T: int, H: int, D: int, window: int) -> float:
    """FLOPs of forward + backward that any implementation must do: the same count for every
    impl of an op, so their TFLOP/s compare (a naive form that does more work still gets this).

    Forward per head: causal attention 2 T^2 D (QK^T and PV over the causal half); window W
    4 D sum_t min(t + 1, W); linear/Hebbian 4 D^2 per position (k^T v and q S). Backward costs
    2.5x the forward for attention, 2x for the recurrences.
    """
    if op == "sdpa":
        return 3.5 * 2.0 * B * H * T * T * D
    if op == "swa":
        W = min(window, T)
        keys = T * W - W * W / 2.0  # sum over t of min(t + 1, W), to leading order
        return 3.5 * 4.0 * B * H * keys * D
    return 3.0 * 4.0 * B * H * T * D * D


def memory_estimate(op: str, impl: str, B: int, T: int, H: int, D: int, window: int,
                    elt: int) -> float:
    """Rough peak bytes of one forward + backward (inputs, grads, and what the impl keeps)."""
    io = 10.0 * B * H * T * D * elt  # q, k, v, grad-out, output, three grads, slack
    if op == "sdpa":
        return io + 8.0 * B * H * T
    if op == "swa":
        if impl == "naive":
            return io + 4.0 * 4 * B * H * T * T  # fp32 (T, T) scores, probs and their grads
        if impl == "chunk":
            return io + 4.0 * max(elt, 4) * B * H * T * 2 * min(window, T)  # (W, 2W) blocks
        return io
    state = 4.0 * B * H * D * D  # one fp32 (K, V) memory
    if impl == "naive":
        return io + 3 * state * T  # a memory per step kept for backward
    if impl == "chunk":
        return io + 3 * state * T / _CHUNK + 4.0 * 4 * B * H * T * _CHUNK
    return io + 2 * state * T / _CHUNK


def _inputs(op: str, B: int, T: int, H: int, D: int, dtype, device, gen):
    """Random inputs (never zeros) with grads: attention layout (B, H, T, D), recurrences
    (B, T, H, D) plus g (B, T, H)."""
    shape = (B, H, T, D) if op in ("sdpa", "swa") else (B, T, H, D)
    qkv = [torch.randn(shape, device=device, generator=gen).to(dtype).requires_grad_()
           for _ in range(3)]
    if op == "hebbian":
        # decays near 1, as the model's decay bias starts them (sigmoid(4) = 0.98)
        g = F.logsigmoid(torch.randn(B, T, H, device=device, generator=gen) + 4.0)
        return qkv, g.requires_grad_()
    if op == "linear":
        return qkv, torch.zeros(B, T, H, device=device)
    return qkv, None


def _forward(op: str, impl: str, window: int, D: int):
    """The op as f(q, k, v, g) -> o."""
    if op == "sdpa":
        return lambda q, k, v, g: F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if op == "swa":
        from bytelm.ops.swa import sliding_window_attention
        return lambda q, k, v, g: sliding_window_attention(q, k, v, window, impl=impl)
    from bytelm.ops.hebbian import hebbian
    return lambda q, k, v, g: hebbian(q, k, v, g, scale=D ** -0.5, impl=impl)[0]


def _impl_problem(op: str, impl: str, device: torch.device) -> str | None:
    """Why ``impl`` of ``op`` cannot run on ``device`` (None if it can)."""
    if op == "sdpa":
        return None
    if impl == "triton" and device.type != "cuda":
        return "triton needs CUDA"
    if op == "swa":
        from bytelm.ops.swa import select_impl
    else:
        from bytelm.ops.hebbian import select_impl
    try:
        got = select_impl(impl, device)
    except ValueError as e:
        return str(e)
    if got != impl:
        return f"impl {impl!r} resolves to {got!r} here (BYTELM_IMPL set?)"
    return None


class _Budget:
    """Skips a case whose estimated time exceeds ``max_s``: a FLOP lower bound at the measured
    matmul rate and, once a smaller T ran, that time scaled by (T / T_prev)^p (p = 2 for the
    quadratic forms). A case skipped for time or memory stays skipped at larger T."""

    def __init__(self, max_s: float, matmul_tflops: float | None, calls: int):
        self.max_s, self.rate, self.calls = max_s, matmul_tflops, calls
        self.last: dict[tuple[str, str], tuple[int, float]] = {}
        self.dead: dict[tuple[str, str], str] = {}

    def estimate_s(self, key, T: int, flops: float) -> float:
        est = flops / (self.rate * 1e12) if self.rate else 0.0
        if key in self.last:
            T0, ms0 = self.last[key]
            p = 2 if key[0] == "sdpa" or key == ("swa", "naive") else 1
            est = max(est, ms0 / 1e3 * (T / T0) ** p)
        return est * self.calls


def mixer_cases(ops: list[str], impls: list[str]) -> list[tuple[str, str]]:
    """(op, impl) pairs in table order; sdpa has the single impl "sdpa"."""
    cases = []
    for op in ops:
        cases += [(op, "sdpa")] if op == "sdpa" else [(op, i) for i in impls]
    return cases


def bench_mixer(Ts: list[int], B: int, H: int, D: int, ops: list[str], impls: list[str],
                window: int, dtype: torch.dtype, device: torch.device, warmup: int, reps: int,
                naive_max_t: int, max_case_s: float, ceilings: dict | None = None,
                on_row: Callable[[dict], None] | None = None) -> list[dict]:
    """One row per (T, op, impl): forward + backward timings or "skipped: <reason>".

    Args:
        Ts: sequence lengths.
        B, H, D: batch, heads, head width (q, k, v all (.., D)).
        ops: subset of OPS; impls: subset of IMPLS (ignored by sdpa).
        window: keys per query of swa (including itself).
        dtype: input dtype (the ops accumulate in fp32 where they say so).
        warmup, reps: as in ``time_fn``.
        naive_max_t: the naive references run only up to this T.
        max_case_s: time budget of one case (first call + warm-up + reps, estimated).
        ceilings: ``bytelm.bench.ceilings.measure`` of this device (for the time estimate).
        on_row: called with each finished row (e.g. to save partial results).
    Returns:
        rows (dicts, JSON-serialisable).
    """
    elt = torch.tensor([], dtype=dtype).element_size()
    budget = _Budget(max_case_s, (ceilings or {}).get("matmul_tflops_measured"), 1 + warmup + reps)
    rows = []
    for T in sorted(Ts):
        for op, impl in mixer_cases(ops, impls):
            row = _mixer_row(op, impl, B, T, H, D, window, dtype, elt, device, warmup, reps,
                             naive_max_t, budget)
            rows.append(row)
            if on_row:
                on_row(row)
    return rows


def _mixer_row(op, impl, B, T, H, D, window, dtype, elt, device, warmup, reps, naive_max_t,
               budget: _Budget) -> dict:
    key = (op, impl)
    row = {"op": op, "impl": impl, "T": T, "B": B, "H": H, "D": D,
           "window": window if op == "swa" else None,
           "dtype": str(dtype).removeprefix("torch."), "status": "ok"}
    flops = useful_flops(op, B, T, H, D, window)
    mem = memory_estimate(op, impl, B, T, H, D, window, elt)
    est_s = budget.estimate_s(key, T, flops)
    row.update(flops=flops, est_gib=mem / 2**30, est_s=est_s)
    free = free_bytes(device)
    problem = _impl_problem(op, impl, device)
    if problem:
        row["status"] = f"skipped: {problem}"
    elif key in budget.dead:
        row["status"] = f"skipped: {budget.dead[key]}"
    elif impl == "naive" and T > naive_max_t:
        row["status"] = f"skipped: naive reference only up to T={naive_max_t}"
    elif free is not None and mem > _MEM_FRACTION * free:
        row["status"] = f"skipped: needs ~{mem / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free"
        budget.dead[key] = f"too big for memory at T={T}"
    elif est_s > budget.max_s:
        row["status"] = f"skipped: ~{est_s:.0f} s estimated > --max-case-s {budget.max_s:g}"
        budget.dead[key] = f"over the time budget at T={T}"
    if row["status"] != "ok":
        log.info("mixer %s/%s T=%d %s", op, impl, T, row["status"])
        return row
    log.info("mixer %s/%s T=%d", op, impl, T)
    row.update(_time_case(op, impl, B, T, H, D, window, dtype, device, warmup, reps))
    if row["status"] == "ok":
        budget.last[key] = (T, row["median_ms"])
        row["tflops"] = flops / (row["median_ms"] / 1e3) / 1e12
        row["positions_per_s"] = B * T / (row["median_ms"] / 1e3)
    else:
        # larger T will not fit or work either; its cost (e.g. a compile) is not paid again
        budget.dead[key] = f"{row['status'].removeprefix('skipped: ')} at T={T}"
    return row


def _time_case(op, impl, B, T, H, D, window, dtype, device, warmup, reps) -> dict:
    reset_peak(device)
    gen = torch.Generator(device=device).manual_seed(T)
    try:
        (q, k, v), g = _inputs(op, B, T, H, D, dtype, device, gen)
        fwd = _forward(op, impl, window, D)
        wrt = (q, k, v, g) if op == "hebbian" else (q, k, v)
        do = torch.randn(v.shape, device=device, generator=gen).to(dtype)
        t = time_fn(lambda: torch.autograd.grad(fwd(q, k, v, g), wrt, do),
                    warmup=warmup, reps=reps, device=device)
    except Exception as e:  # noqa: BLE001 - one failing case (e.g. OOM) ends only itself
        status = failure_status(e)
        log.warning("mixer %s/%s T=%d: %s", op, impl, T, status)
        return {"status": status}
    out = {"first_call_ms": t["first_call_ms"], "median_ms": t["median_ms"],
           "min_ms": t["min_ms"], "reps": reps, "peak_memory_gib": device_peak_gib(device),
           "host_peak_rss_gib": host_peak_rss_gib()}
    if not all(math.isfinite(x) for x in t["times_ms"]):
        out["status"] = "error: non-finite time"
    return out
