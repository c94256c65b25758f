"""The training loop: data -> step -> log -> eval -> checkpoint.

``Trainer.__init__`` builds the run state (run dir checks, data, model + optimizer + the shared
optimizer step of ``bytelm.train.step``, outputs); ``Trainer.run`` is the loop over it.

Everything needed to continue a run is checkpointed (weights, optimizer, step, sampler position,
RNG, best metric), so ``--resume`` reproduces the loss sequence of an uninterrupted run exactly
(on CPU; bit-exact on GPU only where kernels are deterministic).
"""
import dataclasses
import json
import logging
import math
import time
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from bytelm.config import RunConfig
from bytelm.io import dump_json
from bytelm.options import run_config_from_dict
from bytelm.errors import UserError
from bytelm.nn.loss import byte_cross_entropy
from bytelm.optim import build_optimizer
from bytelm.optim.feedback import drain_decisions, log_fields
from bytelm.registry import create_model
from bytelm.train import checkpoint as ckpt_io
from bytelm.train import distributed as D
from bytelm.train.budget import WallClockBudget
from bytelm.train.compiling import compiled_forward, resolve_compile_mode
from bytelm.locks import RunLock
from bytelm.train.metrics import MetricsLogger, check_backends
from bytelm.train.perf import mfu, peak_memory_gib, peak_tflops
from bytelm.train.schedule import effective_warmup, lr_factor
from bytelm.train.step import MicroLoss, StepConfig, TrainStep

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Raised when the loss or gradient norm becomes NaN/Inf; names the first bad step."""


def resolve_data_dir(cfg: RunConfig, info: D.DistInfo) -> Path:
    """The prepared corpus to train on: ``data.path`` or the default corpus (built once)."""
    if cfg.data.path:
        return Path(cfg.data.path)
    from bytelm.data.default import default_corpus_dir
    if info.is_main:
        path = default_corpus_dir(max_bytes=cfg.data.default_corpus_bytes)
    D.barrier(info)
    if not info.is_main:
        path = default_corpus_dir(max_bytes=cfg.data.default_corpus_bytes)
    return path


def _full_state(model, optimizer, info: D.DistInfo):
    """Full (unsharded) model and optimizer state dicts, keyed by parameter name, on CPU."""
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                         get_optimizer_state_dict)
    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    msd = get_model_state_dict(model, options=opts)
    osd = get_optimizer_state_dict(model, optimizer, options=opts)
    return {k: v.contiguous() for k, v in msd.items()}, osd


def _load_optimizer(model, optimizer, osd) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict
    set_optimizer_state_dict(model, optimizer, osd,
                             options=StateDictOptions(full_state_dict=True))


class Trainer:
    """Owns model, optimizer, sampler and run directory of one run; ``run()`` trains it.

    ``after_validation(trainer, result)``, if given, is called after every validation (and its
    checkpoint) with the validation result; returning True ends the run there, as a stop condition
    (``bytelm bench speedrun`` stops at a target bpb so).
    """

    def __init__(self, cfg: RunConfig, resume: bool = False,
                 after_validation: Callable[["Trainer", dict], bool] | None = None):
        self.cfg = cfg
        self.after_validation = after_validation
        self.info = info = D.setup(cfg.train.device)
        self.device = info.device
        self.run_dir = Path(cfg.train.out_dir)
        self.last_dir = self.run_dir / "ckpt" / "last"
        self.best_dir = self.run_dir / "ckpt" / "best"
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise UserError(f"{self.run_dir} exists and is not a folder")
        # one writer per run directory, taken before anything is checked or written
        self.lock = RunLock(self.run_dir)
        if info.is_main:
            self.lock.acquire()
        try:
            self._setup(resume)
        except BaseException:
            self.lock.release()
            raise

    # --- building the run state (in this order: the RNG and resume depend on it) ----------------
    def _setup(self, resume: bool) -> None:
        """Run directory checks -> data -> model, optimizer and step -> outputs."""
        self._check_run_dir(resume)
        self._open_data()
        self._build_model(resume)
        self._open_outputs(resume)

    def _check_run_dir(self, resume: bool) -> None:
        """Logging backends importable; a fresh run needs an empty run dir, a resume ckpt/last."""
        cfg, info = self.cfg, self.info
        check_backends(cfg.train.tensorboard, cfg.train.wandb)
        if info.is_main:
            ckpt_io.remove_stale_temps(self.run_dir)
        has_ckpt = (self.last_dir / ckpt_io.CONFIG).is_file() or \
            (self.last_dir.with_name("last.old") / ckpt_io.CONFIG).is_file()
        if has_ckpt and not resume:
            raise UserError(f"{self.run_dir} already holds a run; pass --resume to continue it "
                            "or choose another --train.out_dir")
        if resume and not has_ckpt:
            raise UserError(f"nothing to resume in {self.run_dir} (no ckpt/last)")

    def _open_data(self) -> None:
        """sampler (batches of (batch_size, seq_len + 1) bytes), train/val splits, data_dir and
        the curriculum (None without one; it replaces data.path in cfg by its final corpus)."""
        from bytelm.data import RandomWindowSampler, open_split
        cfg, info = self.cfg, self.info
        seq = cfg.seq_len
        if seq > cfg.model.context:
            raise UserError(f"data.seq_len={seq} exceeds the model context {cfg.model.context}")
        self.curriculum = None
        if cfg.curriculum is not None:
            # stages bring their own data, sampler and validation (bytelm.train.curriculum)
            from bytelm.train.curriculum import Curriculum
            self.curriculum = Curriculum(cfg, self.run_dir, info, cfg.train.steps,
                                         pin_memory=self.device.type == "cuda")
            self.sampler = self.curriculum.sampler
            self.data_dir = self.curriculum.final_dir
            self.train_split, self.val_split = self.sampler.data[-1], self.curriculum.val[-1]
            if self.data_dir is not None:  # recorded so `bytelm eval RUN` scores the final corpus
                self.cfg = dataclasses.replace(
                    cfg, data=dataclasses.replace(cfg.data, path=str(self.data_dir)))
        else:
            self.data_dir = resolve_data_dir(cfg, info)
            self.train_split = open_split(self.data_dir, "train", min_len=seq + 1)
            self.val_split = open_split(self.data_dir, "val", min_len=2)
            self.sampler = RandomWindowSampler(self.train_split, seq, cfg.train.batch_size,
                                               seed=cfg.train.seed, rank=info.rank,
                                               world_size=info.world_size,
                                               pin_memory=self.device.type == "cuda")

    def _build_model(self, resume: bool) -> None:
        """model (seeded init, or the checkpoint's weights), its DDP/FSDP wrapper, the optimizer,
        the counters (restored on resume), the compiled forward and the shared step."""
        cfg, info = self.cfg, self.info
        torch.manual_seed(cfg.train.seed)
        self.model = create_model(cfg.model).to(self.device)
        self.step = 0
        self.total_steps = cfg.train.steps
        self.best_val = math.inf
        self.bytes_seen = 0
        self.train_time = 0.0
        self.budget_used = 0.0  # wall seconds of the time budget spent by earlier invocations
        self.budget: WallClockBudget | None = None
        self._logged_plan = 0
        self._warned_warmup = False
        state = None
        if resume:
            state, osd, rng, weights = ckpt_io.load_training(self.last_dir)
            ckpt_io.load_weights_into(self.model, weights, str(self.last_dir))
        self.wrapped = D.wrap(self.model, info, cfg.train.parallel)
        self.optimizer = build_optimizer(self.model, cfg.optim)
        if state is not None:
            self._restore(state, osd, rng)
        if self.curriculum is not None:
            self.curriculum.set_total_steps(self.total_steps)
        # reduce-overhead: CUDA graphs, whose outputs the next replay overwrites (see train_step)
        self.compile_mode = resolve_compile_mode(
            cfg.train.compile_mode, cfg.model.family, self.device.type, info.world_size,
            curriculum=self.curriculum is not None, grad_accum=cfg.train.grad_accum)
        if cfg.train.compile and cfg.train.compile_mode == "auto" and self.compile_mode != "default":
            log.info("train.compile_mode=auto: %s (%s on %s)", self.compile_mode, cfg.model.family,
                     self.device.type)
        self.graphs = cfg.train.compile and self.compile_mode == "reduce-overhead"
        if self.graphs and info.world_size > 1:
            raise UserError("train.compile_mode=reduce-overhead (CUDA graphs) runs in a single "
                            "process; use the default mode with torchrun")
        # what validation runs: the eager model, or with train.compile_eval its compiled copy
        # (torch.compile is lazy: the eval graph compiles at the first validation)
        self.eval_model = self.model
        if cfg.train.compile_eval:
            if cfg.train.compile and info.world_size == 1:
                self.eval_model = torch.compile(self.model)
            else:
                log.warning("train.compile_eval needs train.compile in a single process: "
                            "validating with the eager model")
        self.fwd = (compiled_forward(self.wrapped, cfg.train.compile_scope, self.compile_mode)
                    if cfg.train.compile else self.wrapped)
        self.stepper = TrainStep(
            self.model, self.optimizer,
            StepConfig(precision=cfg.train.precision, grad_clip=cfg.optim.grad_clip,
                       grad_accum=cfg.train.grad_accum, cuda_graphs=self.graphs),
            forward=self.fwd, no_sync=getattr(self.wrapped, "no_sync", None),  # DDP only
            reduce=lambda t: D.all_reduce_mean(t, info))

    def _open_outputs(self, resume: bool) -> None:
        """run_config.json and the metrics logger (main process), the throughput constants."""
        cfg, info = self.cfg, self.info
        self.metrics = None
        if info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            dump_json(cfg.to_dict(), self.run_dir / "run_config.json")
            self.metrics = MetricsLogger(self.run_dir, cfg.train.tensorboard, cfg.train.wandb,
                                         cfg.to_dict(),
                                         # a fresh run starts a fresh file (a run that died
                                         # before its first checkpoint leaves one behind)
                                         truncate_after_step=self.step if resume else -1)
        self.peak = peak_tflops(self.device, cfg.train.peak_tflops)
        self.flops_per_byte = self.model.flops_per_byte(cfg.seq_len)
        self.bytes_per_step = (cfg.seq_len * cfg.train.batch_size * cfg.train.grad_accum
                               * info.world_size)
        # (bytes, seconds) of each log interval, for the steady-state rate (compile excluded)
        self.intervals: list[tuple[int, float]] = []
        self.last_stats: dict = {}
        # this invocation's clock: loop start (perf_counter), its first step's seconds (compile
        # and warm-up included), seconds spent in validations and their checkpoints
        self.t_start: float | None = None
        self.first_step_s: float | None = None
        self.eval_time = 0.0

    def _restore(self, state: dict, osd: dict, rng: dict) -> None:
        """Optimizer, sampler, counters and RNG from a training checkpoint (damage: one line)."""
        cfg = self.cfg
        saved = (state.get("run_config") or {}).get("optim", {}).get("name", cfg.optim.name)
        if saved != cfg.optim.name:
            raise UserError(f"{self.last_dir} holds the state of optimizer {saved}; it cannot resume "
                            f"as optim.name={cfg.optim.name} (drop --optim.name or start a new run)")
        groups = [len(g["params"]) for g in self.optimizer.state_dict()["param_groups"]]
        try:
            ok = [len(g["params"]) for g in osd["param_groups"]] == groups
        except (KeyError, TypeError):
            ok = False
        if not ok:
            raise UserError(f"damaged training checkpoint {self.last_dir}: its optimizer state does "
                            f"not fit optim.name={cfg.optim.name} and this model (parameter groups)")
        try:
            _load_optimizer(self.wrapped, self.optimizer, osd)
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as e:
            raise UserError(f"damaged training checkpoint {self.last_dir}: its optimizer state does "
                            f"not fit optim.name={cfg.optim.name} and this model "
                            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
        try:
            self.sampler.load_state_dict(state["sampler"])
            torch.set_rng_state(rng["cpu"])
            if "cuda" in rng and self.device.type == "cuda":
                torch.cuda.set_rng_state(rng["cuda"], self.device)
            saved_steps = state["run_config"]["train"]["steps"]
            self.step, self.total_steps = state["step"], state["total_steps"]
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as e:
            raise UserError(f"damaged training checkpoint {self.last_dir}: cannot restore its "
                            f"sampler, RNG or counters ({type(e).__name__}: {e})") from None
        if cfg.train.steps != saved_steps:
            # a longer (or shorter) run asked for on resume: the schedule spans the new length
            log.warning("resume: train.steps %d -> %d", saved_steps, cfg.train.steps)
            self.total_steps = cfg.train.steps
            if self.total_steps <= self.step:
                raise UserError(f"train.steps={cfg.train.steps} but the run is already at "
                                f"step {self.step}")
        self.best_val = state.get("best_val", math.inf)
        self.bytes_seen = state.get("bytes_seen", 0)
        self.train_time = state.get("train_time", 0.0)
        self.budget_used = state.get("budget_used_s", self.train_time)

    def warmup_steps(self) -> int:
        """optim.warmup_steps capped at optim.warmup_max_frac of the run (warns once if so)."""
        oc = self.cfg.optim
        w = effective_warmup(oc.warmup_steps, self.total_steps, oc.warmup_max_frac)
        if w < oc.warmup_steps and not self._warned_warmup:
            self._warned_warmup = True
            log.warning("optim.warmup_steps=%d is more than %g of the run's %d steps: warming up "
                        "over %d (optim.warmup_max_frac=0 keeps all %d)", oc.warmup_steps,
                        oc.warmup_max_frac, self.total_steps, w, oc.warmup_steps)
        return w

    # --- one optimizer step -------------------------------------------------------------------
    def train_step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One update (``bytelm.train.step``) at the scheduled LR over grad_accum micro-batches
        of the sampler. Returns (loss, pre-clip grad norm) as () device tensors (no host sync)."""
        cfg = self.cfg
        lr = cfg.optim.lr * lr_factor(self.step, self.total_steps, self.warmup_steps(),
                                      cfg.optim.schedule, cfg.optim.min_lr_ratio,
                                      cfg.optim.wsd_decay_frac)
        if self.curriculum is not None:
            self.curriculum.before_step(self.model, self.step)
        res = self.stepper(lr, self._micro_batch)
        # model diagnostics (ACT steps, gate and decay means...) of the last micro-batch
        self.last_stats = res.stats
        self.step += 1
        self.bytes_seen += self.bytes_per_step
        return res.loss, res.grad_norm

    def _micro_batch(self, micro: int) -> MicroLoss:
        """The step's ``MicroFn``: next-byte loss of the sampler's next (B, seq_len + 1) batch."""
        batch = self.sampler.next_batch().to(self.device, non_blocking=True)
        out = self.stepper.forward(batch[:, :-1])
        return MicroLoss(loss=byte_cross_entropy(out.logits, batch[:, 1:]), aux=out.aux_loss,
                         stats=out.stats)

    # --- evaluation and checkpoints -----------------------------------------------------------
    def validate(self) -> dict:
        self.model.eval()
        if self.curriculum is not None:
            res = self.curriculum.validate(self.model, self._score)
        else:
            res = self._score(self.val_split)
        self.model.train()
        return res

    def _score(self, split) -> dict:
        """evaluate_bpb of the current model over (the first eval_bytes of) ``split``."""
        from bytelm.eval.bpb import evaluate_bpb
        # Ranks score every world_size-th batch, so their forward counts may differ. Any
        # collective inside a forward then deadlocks: DDP broadcasts buffers in its first forward
        # after training, FSDP all-gathers parameters in every forward. DDP replicas are identical,
        # so they evaluate the bare module; FSDP ranks all run every batch (same totals everywhere).
        fsdp = self.info.enabled and self.cfg.train.parallel == "fsdp"
        return evaluate_bpb(self.wrapped if fsdp else self.eval_model, split,
                            seq_len=self.cfg.seq_len,
                            stride=self.cfg.eval.stride, batch_size=self.cfg.eval.batch_size,
                            max_bytes=self.cfg.train.eval_bytes or None,
                            precision=self.cfg.train.precision, info=None if fsdp else self.info)

    def trainer_state(self) -> dict:
        return {"step": self.step, "total_steps": self.total_steps, "best_val": self.best_val,
                "bytes_seen": self.bytes_seen, "train_time": self.train_time,
                "budget_used_s": self.budget.elapsed() if self.budget else self.budget_used,
                "sampler": self.sampler.state_dict(), "run_config": self.cfg.to_dict(),
                "world_size": self.info.world_size}

    def weights_finite(self) -> bool:
        """Whether every parameter is finite, on every rank (FSDP: every shard)."""
        bad = torch.zeros((), device=self.device)
        for p in self.model.parameters():
            t = p.to_local() if hasattr(p, "to_local") else p
            bad += (~torch.isfinite(t.detach())).any().float()
        return D.all_reduce_mean(bad, self.info).item() == 0

    def good_checkpoints(self) -> str:
        """Where the good checkpoints of this run are, in words (for a message that stops it)."""
        found = []
        for d in (self.last_dir, self.best_dir):
            try:
                step = json.loads((d / ckpt_io.TRAINER_STATE).read_text())["step"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            found.append(f"{d} (step {step})")
        if not found:
            return "no checkpoint was written before it"
        return "the good checkpoints are " + " and ".join(found)

    def _check_collapse(self, bpb: float) -> None:
        """Stops (before ``ckpt/last`` is overwritten) when validation has collapsed: non-finite,
        or train.collapse_bpb bits/byte worse than the best so far."""
        margin = self.cfg.train.collapse_bpb
        if math.isfinite(bpb) and not (margin and math.isfinite(self.best_val)
                                       and bpb > self.best_val + margin):
            return
        raise NonFiniteLossError(
            f"validation collapsed at step {self.step} ({bpb:.3f} bits/byte, best {self.best_val:.3f});"
            f" not saving over {self.last_dir}; {self.good_checkpoints()} (lower optim.lr, or "
            "raise train.collapse_bpb if this is expected)")

    def save(self, dirs: list[Path]) -> None:
        # an update can make the weights NaN/Inf while the loss that preceded it was finite
        if not self.weights_finite():
            raise NonFiniteLossError(
                f"non-finite weights after step {self.step}; not saving them; "
                f"{self.good_checkpoints()} (lower optim.lr or check the data)")
        if self.info.enabled:
            msd, osd = _full_state(self.wrapped, self.optimizer, self.info)
        else:
            msd, osd = _full_state(self.model, self.optimizer, self.info)
        if self.info.is_main:
            for d in dirs:
                ckpt_io.save_training(d, self.model, self.optimizer, self.trainer_state(), msd, osd)
        D.barrier(self.info)

    # --- the loop -----------------------------------------------------------------------------
    def run(self) -> dict:
        cfg, info = self.cfg, self.info
        tc = cfg.train
        start_step = self.step
        slice_end = start_step + tc.stop_after if tc.stop_after else math.inf
        stop_at = min(self.total_steps, slice_end)
        pbar = tqdm(total=self.total_steps, initial=self.step, disable=not (tc.progress and info.is_main),
                    desc="train", unit="step", dynamic_ncols=True)
        pending: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        last_val = None
        self.budget = budget = (WallClockBudget(tc.time_budget_min * 60, used_s=self.budget_used)
                                if tc.time_budget_min else None)
        # the final validation's cost in training steps (a forward is ~1/3 of forward + backward),
        # unless timing one validation batch tells (on a CPU it costs far more than a third)
        eval_equiv = (tc.eval_bytes or len(self.val_split)) / self.bytes_per_step / 3
        if budget is not None and not (info.enabled and tc.parallel == "fsdp"):
            budget.finish_s = self._time_validation()
        t_mark = self.t_start = time.perf_counter()
        self.model.train()
        if self.curriculum is not None and self.step == 0:
            self._log(self.curriculum.stage_record(0, 0))
        while self.step < stop_at:
            loss, gnorm = self.train_step()
            pending.append((self.step, loss, gnorm))
            if self.first_step_s is None:
                self._sync()
                self.first_step_s = time.perf_counter() - self.t_start
            if self.curriculum is not None and self.curriculum.is_transition(self.step):
                self._log(self.curriculum.stage_record(self.step, self.bytes_seen))
            if budget is not None:
                budget.mark_step(self.step)
                self._replan(budget, eval_equiv)
                stop_at = min(self.total_steps, slice_end)
                pbar.total = self.total_steps
            pbar.update(1)
            at_end = self.step >= stop_at
            do_eval = at_end or (tc.eval_every and self.step % tc.eval_every == 0)
            if self.step % tc.log_every == 0 or do_eval:
                self._sync()
                now = time.perf_counter()
                self.train_time += now - t_mark
                self.intervals.append((len(pending) * self.bytes_per_step, now - t_mark))
                self._flush(pending, pbar)
                pending = []
                t_mark = time.perf_counter()
            if do_eval:
                t_eval = time.perf_counter()
                last_val = self._validate_and_save()
                t_mark = time.perf_counter()
                self.eval_time += t_mark - t_eval
                if budget is not None:
                    budget.paused(t_mark - t_eval)
                if self.after_validation is not None and self.after_validation(self, last_val):
                    stop_at = self.step
        pbar.close()
        if budget is not None:
            self._log_budget(budget)
            log.info("time budget: %d steps in %.1f s of %.1f", self.step, budget.elapsed(),
                     budget.budget_s)
        summary = self._summary(last_val, stopped_early=self.step < self.total_steps)
        if info.is_main:
            dump_json(summary, self.run_dir / "summary.json")
            self.metrics.close()
        self.lock.release()
        return summary

    def _validate_and_save(self) -> dict:
        """Validation (stops on collapse), its metrics record, then ckpt/last and, when the
        validation improved, ckpt/best. Returns the validation result."""
        res = self.validate()
        self._check_collapse(res["bpb"])
        improved = res["bpb"] < self.best_val
        self.best_val = min(self.best_val, res["bpb"])
        self._log({"kind": "val", "step": self.step, "bytes_seen": self.bytes_seen,
                   **{k: v for k, v in res.items() if isinstance(v, (int, float))}})
        self.save([self.last_dir] + ([self.best_dir] if improved else []))
        return res

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _time_validation(self) -> float:
        """Seconds a validation over train.eval_bytes will take: one batch to warm up (a
        compiled model compiles its eval graph there, tens of seconds on a GPU, paid once), then
        one timed batch, scaled to the number of batches; the warm-up's own time is added once
        when the validation is a single batch."""
        from bytelm.eval.bpb import evaluate_bpb
        cfg = self.cfg
        batch_bytes = cfg.eval.batch_size * cfg.seq_len + 1
        total = min(cfg.train.eval_bytes or len(self.val_split), len(self.val_split))
        one = min(batch_bytes, total)
        self.model.eval()
        for _ in range(2 if total > batch_bytes else 1):  # the last call is the one timed
            t0 = time.perf_counter()
            evaluate_bpb(self.eval_model, self.val_split, seq_len=cfg.seq_len,
                         stride=cfg.eval.stride, batch_size=cfg.eval.batch_size, max_bytes=one,
                         precision=cfg.train.precision)
            self._sync()
            took = time.perf_counter() - t0
        self.model.train()
        return took * max(1.0, total / batch_bytes)

    def _replan(self, budget: WallClockBudget, eval_equiv: float) -> None:
        """Sets total_steps to what fits the time budget (the schedule's end moves with it)."""
        total = budget.plan(self.step, self.cfg.train.steps, eval_equiv)
        if self.info.world_size > 1:  # every rank must agree on the schedule and the stop
            t = torch.tensor(float(-1 if total is None else total), device=self.device)
            total = int(D.all_reduce_mean(t, self.info).item())
            total = None if total < 0 else total
        if total is None or total == self.total_steps:
            return
        self.total_steps = total
        if self.curriculum is not None:
            self.curriculum.set_total_steps(total)
        if not self._logged_plan or abs(total - self._logged_plan) > 0.1 * self._logged_plan:
            self._logged_plan = total
            self._log_budget(budget)

    def _log_budget(self, budget: WallClockBudget) -> None:
        per = budget.step_s() or 0.0
        log.debug("time budget: %.1f ms/step -> %d steps", per * 1e3, self.total_steps)
        self._log({"kind": "budget", "step": self.step, "ms_per_step": per * 1e3,
                   "total_steps": self.total_steps, "elapsed_s": budget.elapsed()})

    def _flush(self, pending, pbar) -> None:
        """Moves pending losses to the host, checks them, logs them (one sync per log interval)."""
        if not pending:
            return
        vals = torch.stack([torch.stack([l.float(), g.float()]) for _, l, g in pending])
        vals = D.all_reduce_mean(vals, self.info).cpu()  # on the device: NCCL has no CPU tensors
        for (step, _, _), (loss, gnorm) in zip(pending, vals.tolist()):
            if not (math.isfinite(loss) and math.isfinite(gnorm)):
                what = "loss" if not math.isfinite(loss) else "gradient norm"
                raise NonFiniteLossError(
                    f"non-finite {what} ({loss if what == 'loss' else gnorm}) at step {step}; "
                    f"{self.good_checkpoints()} (lower optim.lr or check the data)")
        step, _, _ = pending[-1]
        loss, gnorm = vals[-1].tolist()
        bps = self.bytes_seen / self.train_time if self.train_time > 0 else 0.0
        lr = self.optimizer.param_groups[0]["lr"]
        nb, dt = self.intervals[-1] if self.intervals else (0, 0.0)
        rows = vals.tolist()
        rec = {"kind": "train", "step": step, "loss": loss, "bpb": loss / math.log(2),
               "grad_norm": gnorm, "lr": lr, "bytes_seen": self.bytes_seen, "bytes_per_s": bps,
               "interval_bytes_per_s": nb / dt if dt > 0 else 0.0,
               "losses": [v[0] for v in rows],
               # pre-clip, the largest of the interval: a spike between two logged steps shows
               "grad_norm_max": max(v[1] for v in rows),
               **{k: float(v) for k, v in self.last_stats.items()},
               **(self.curriculum.train_fields(step) if self.curriculum is not None else {})}
        rec.update(log_fields(self.optimizer))
        self._log(rec)
        for d in drain_decisions(self.optimizer):
            bins = d.pop("state_bins")
            self._log({"kind": "controller", **d, **{f"state_{k}": v for k, v in bins.items()}})
        pbar.set_postfix(bpb=f"{loss / math.log(2):.3f}", lr=f"{lr:.2e}")

    def _log(self, rec: dict) -> None:
        if self.metrics is not None:
            self.metrics.log(rec)

    def steady_bytes_per_s(self) -> float:
        """Median rate of the log intervals in the second half of this invocation (after
        compilation and warm-up); the overall rate if there are too few intervals."""
        rates = sorted(b / t for b, t in self.intervals[len(self.intervals) // 2:] if t > 0)
        if not rates:
            return self.bytes_seen / self.train_time if self.train_time > 0 else 0.0
        return rates[len(rates) // 2]

    def _summary(self, last_val: dict | None, stopped_early: bool) -> dict:
        bps = self.bytes_seen / self.train_time if self.train_time > 0 else 0.0
        steady = self.steady_bytes_per_s()
        return {"preset": self.cfg.preset, "n_params": self.model.n_params(),
                "steps": self.step, "total_steps": self.total_steps, "stopped_early": stopped_early,
                "bytes_seen": self.bytes_seen, "train_time_s": self.train_time,
                "bytes_per_s": bps, "steady_bytes_per_s": steady, "flops_per_byte": self.flops_per_byte,
                "mfu": mfu(self.flops_per_byte, steady / self.info.world_size, self.peak),
                "peak_tflops": self.peak,
                "peak_memory_gib": peak_memory_gib(self.device), "world_size": self.info.world_size,
                "device": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu",
                "val_bpb": last_val["bpb"] if last_val else None, "best_val_bpb": self.best_val,
                "budget_used_s": self.budget.elapsed() if self.budget else None,
                "first_step_s": self.first_step_s, "eval_time_s": self.eval_time,
                "compile_mode": self.compile_mode if self.cfg.train.compile else None,
                "run_dir": str(self.run_dir)}


def train(cfg: RunConfig, resume: bool = False) -> dict:
    """Trains according to ``cfg``; returns the run summary (also written to summary.json)."""
    trainer = Trainer(cfg, resume=resume)
    try:
        return trainer.run()
    finally:
        trainer.lock.release()
        D.teardown(trainer.info)


def load_run_config(run_dir) -> RunConfig:
    p = Path(run_dir) / "run_config.json"
    if not p.is_file():
        raise UserError(f"no run_config.json in {run_dir}")
    return run_config_from_dict(json.loads(p.read_text()))
