"""Training-step throughput: full optimizer steps of a preset on random bytes at each length.

One step = ``bytelm.train.step.TrainStep`` (the trainer's step) with one micro-batch and no
data loading: forward (autocast per precision) -> byte cross-entropy + aux_loss -> backward ->
clip to norm 1 -> AdamW -> zero_grad. The first step (compilation) and the warm-up are timed apart
from the median of the timed steps.
"""
import logging
import math
from typing import Callable

import torch

from bytelm.bench.memory import device_peak_gib, failure_status, host_peak_rss_gib, reset_peak
from bytelm.bench.timing import time_fn
from bytelm.errors import UserError
from bytelm.nn.loss import byte_cross_entropy
from bytelm.registry import create_model, preset_config
from bytelm.train.compiling import compiled_forward
from bytelm.train.perf import mfu, peak_tflops
from bytelm.train import step as shared

log = logging.getLogger(__name__)


def check_seq_lens(presets: list[str], seq_lens: list[int] | None,
                   context: int | None = None) -> dict[str, list[int]]:
    """Sequence lengths per preset (default: its context); UserError if one exceeds a context.

    ``context`` replaces every preset's context (the model is built with it).
    """
    out = {}
    for name in presets:
        ctx = context or preset_config(name).context
        lens = list(seq_lens) if seq_lens else [ctx]
        for T in lens:
            if T < 1:
                raise UserError(f"--seq-len must be >= 1, got {T}")
            if T > ctx:
                raise UserError(f"--seq-len {T} exceeds the context of {name} ({ctx} bytes); "
                                f"--context {T} builds the model with a longer one")
        out[name] = lens
    return out


class TrainStep:
    """One training step of ``preset`` at (batch, seq_len) on fixed random bytes; call to run it.

    ``bytelm.train.step.TrainStep``: forward (autocast per ``dtype``) -> byte cross-entropy +
    aux_loss -> backward -> clip to norm 1 -> AdamW (``bytelm.optim.build_optimizer``'s groups,
    fused on CUDA) at a constant LR -> zero_grad.
    ``compile_`` wraps the model in torch.compile (``compile_mode``: its mode; "reduce-overhead"
    replays the compiled forward and backward as CUDA graphs; ``compile_scope``: the whole model
    or each block, ``bytelm.train.compiling``); ``close()`` drops the compiled function and
    the optimizer (and resets dynamo when compiled). ``loss`` is the last step's loss (detached).
    """

    def __init__(self, preset: str, batch: int, seq_len: int, compile_: bool,
                 dtype: torch.dtype, device: torch.device, context: int | None = None,
                 compile_mode: str = "default", compile_scope: str = "model"):
        torch.manual_seed(0)
        self.model = create_model(preset, **({"context": context} if context else {}))
        self.model = self.model.to(device).train()
        self.device, self.dtype, self.compile = device, dtype, compile_
        # the AdamW of bytelm.optim.build_optimizer (decay on matrices only, fused on CUDA)
        self.opt = torch.optim.AdamW(self.model.param_groups(0.1), lr=3e-4,
                                     fused=True if device.type == "cuda" else None)
        fwd = compiled_forward(self.model, compile_scope, compile_mode) if compile_ else self.model
        # a CUDA-graph replay (reduce-overhead) starts a new iteration at every step
        self.step = shared.TrainStep(self.model, self.opt, shared.StepConfig(
            precision="bf16" if dtype == torch.bfloat16 else "fp32", grad_clip=1.0,
            cuda_graphs=compile_ and compile_mode == "reduce-overhead"), forward=fwd)
        self.x = torch.randint(0, 256, (batch, seq_len + 1), device=device)
        self.loss: torch.Tensor | None = None

    def _micro(self, _: int) -> shared.MicroLoss:
        """The loss reported is cross-entropy + aux_loss (what is differentiated)."""
        out = self.step.forward(self.x[:, :-1])
        return shared.MicroLoss(loss=byte_cross_entropy(out.logits, self.x[:, 1:]) + out.aux_loss)

    def __call__(self) -> None:
        self.loss = self.step(3e-4, self._micro).loss

    def close(self) -> None:
        self.step = self.opt = None
        if self.compile:
            torch._dynamo.reset()


def train_row(preset: str, batch: int, seq_len: int, compile_: bool, steps: int, warmup: int,
              dtype: torch.dtype, device: torch.device, matmul_tflops: float | None,
              context: int | None = None, compile_mode: str = "default",
              compile_scope: str = "model") -> dict:
    """Times ``steps`` optimizer steps of ``preset`` at (batch, seq_len); one result row.

    ``context`` (optional) builds the preset with that context instead of its own.
    """
    row = {"preset": preset, "batch": batch, "seq_len": seq_len, "compile": compile_,
           "compile_mode": compile_mode if compile_ else None,
           "compile_scope": compile_scope if compile_ else None,
           "precision": str(dtype).removeprefix("torch."), "status": "ok"}
    reset_peak(device)
    step = TrainStep(preset, batch, seq_len, compile_, dtype, device, context, compile_mode,
                     compile_scope)
    model = step.model
    row["context"] = model.config.context
    row.update(family=model.config.family, n_params=model.n_params())
    try:
        t = time_fn(step, warmup=warmup, reps=steps, device=device)
    except Exception as e:  # noqa: BLE001 - one failing row (OOM, compile error) ends only itself
        row["status"] = failure_status(e)
        log.warning("%s batch %d seq %d: %s", preset, batch, seq_len, row["status"])
        return row
    finally:
        step.close()
    loss = float(step.loss)
    step_s = t["median_ms"] / 1e3
    bps = batch * seq_len / step_s
    fpb = model.flops_per_byte(seq_len)
    peak = peak_tflops(device)
    row.update(step_ms=t["median_ms"], step_ms_min=t["min_ms"], steps=steps,
               first_step_s=t["first_call_ms"] / 1e3, warmup_s=t["warmup_ms"] / 1e3,
               warmup_steps=1 + warmup, bytes_per_step=batch * seq_len, bytes_per_s=bps,
               flops_per_byte=fpb, model_tflops=fpb * bps / 1e12, peak_tflops=peak,
               mfu=mfu(fpb, bps, peak), mfu_vs_measured=mfu(fpb, bps, matmul_tflops),
               peak_memory_gib=device_peak_gib(device), host_peak_rss_gib=host_peak_rss_gib(),
               loss=loss)
    if not math.isfinite(loss):
        row["status"] = "error: non-finite loss"
    return row


def bench_train(presets: list[str], batch: int, seq_lens: list[int] | None = None,
                compile_modes: tuple[bool, ...] = (False,), steps: int = 20, warmup: int = 5,
                dtype: torch.dtype = torch.float32, device: torch.device = torch.device("cpu"),
                ceilings: dict | None = None,
                on_row: Callable[[dict], None] | None = None,
                bytes_per_step: int | None = None, context: int | None = None,
                compile_mode: str = "default", compile_scope: str = "model") -> list[dict]:
    """One row per (compile mode, preset, seq_len); see ``train_row``.

    Args:
        presets: preset names.
        batch: sequences per step.
        seq_lens: lengths to time (None: each preset's context); each <= the preset's context.
        compile_modes: False (eager) and/or True (torch.compile).
        steps, warmup: timed steps; untimed steps after the first.
        dtype: autocast dtype (bf16) or fp32 (no autocast).
        device: where to run.
        ceilings: ``bytelm.bench.ceilings.measure`` of this device, for mfu_vs_measured.
        on_row: called with each finished row (e.g. to save partial results).
        bytes_per_step: if set, the batch of each row is max(1, bytes_per_step // seq_len)
            (equal work per step at every length), and ``batch`` is ignored.
        context: build every preset with this context (lengths beyond the presets' own).
        compile_mode: torch.compile's mode for the compiled rows.
        compile_scope: "model" (one graph) or "blocks" (each repeated block, in place).
    Returns:
        rows (dicts, JSON-serialisable).
    """
    lens = check_seq_lens(presets, seq_lens, context)
    matmul = (ceilings or {}).get("matmul_tflops_measured")
    rows = []
    for compile_ in compile_modes:
        for name in presets:
            for T in lens[name]:
                b = max(1, bytes_per_step // T) if bytes_per_step else batch
                log.info("train %s batch %d seq %d compile %s", name, b, T, compile_)
                rows.append(train_row(name, b, T, compile_, steps, warmup, dtype, device,
                                      matmul, context, compile_mode, compile_scope))
                if on_row:
                    on_row(rows[-1])
    return rows
