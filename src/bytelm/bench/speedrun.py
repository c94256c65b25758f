"""Time to a target validation bpb (``bytelm bench speedrun``), on the real training path.

Each (preset, optimizer) run is a ``bytelm.train.loop.Trainer`` built from the same config as
``bytelm train --preset P --optim.name=O --data DIR`` (plus the caller's overrides), with
``train.time_budget_min`` = the cap (the schedule spans it, as in a budgeted ``bytelm train``; the
cap counts the whole run, compilation and validations included, so a job of several runs has a
known length), validations every ``eval_every`` steps on the first ``eval_bytes`` of the
validation split (the same bytes for every run), and one stop condition: the Trainer's
``after_validation`` hook ends the run at the first validation at or below the lowest target.

Times at a validation are wall seconds since the loop started with every validation (and its
checkpoint) before it taken out, so how often one validates does not change them; they are also
given after the first optimizer step (compilation and warm-up out). Checkpoint files are not
written unless asked (the weights are still checked finite at every validation).
"""
import gc
import logging
import math
import time
import typing
from pathlib import Path
from typing import Callable

import torch

from bytelm.bench.memory import failure_status
from bytelm.config import OptimConfig, RunConfig
from bytelm.options import build_run_config
from bytelm.errors import UserError
from bytelm.train import distributed as D
from bytelm.train.loop import NonFiniteLossError, Trainer

log = logging.getLogger(__name__)

# run settings the speedrun owns (set through its own options, not --set)
OWNED = {"data.path": "--data", "train.out_dir": "--work", "optim.name": "--optims",
         "train.time_budget_min": "--cap-min", "train.eval_every": "--eval-every",
         "train.eval_bytes": "--eval-bytes", "train.device": "--device",
         "train.stop_after": None}
# a step count no run reaches inside its cap: the time budget plans the real length
MAX_STEPS = 10_000_000


def optimizer_names() -> list[str]:
    """The names ``optim.name`` accepts."""
    hint = typing.get_type_hints(OptimConfig)["name"]
    return list(typing.get_args(hint))


def parse_targets(text: str) -> list[float]:
    """'1.60,1.50' -> [1.6, 1.5] (highest first); UserError unless each is a positive number."""
    out = []
    for part in text.split(","):
        try:
            t = float(part)
        except ValueError:
            raise UserError(f"--targets: {part.strip()!r} is not a number "
                            "(expected bits per byte, e.g. 1.60,1.50)") from None
        if not (math.isfinite(t) and t > 0):
            raise UserError(f"--targets: {part.strip()} must be a positive bits-per-byte value")
        out.append(t)
    return sorted(set(out), reverse=True)


def target_key(t: float) -> str:
    """1.6 -> '1.60': how a target names its fields in the JSON and the table."""
    return f"{t:.2f}" if abs(t * 100 - round(t * 100)) < 1e-9 else f"{t:g}"


def split_list(text: str, what: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise UserError(f"{what}: empty list")
    return items


def run_pairs(runs: list[str], optims: list[str]) -> list[tuple[str, str]]:
    """(preset, optimizer) of every run: each PRESET with every optimizer of ``optims``, a
    PRESET:OPTIM item with that one only, in order, each pair once."""
    names = optimizer_names()
    pairs = []
    for item in runs:
        preset, _, pinned = item.partition(":")
        for o in [pinned] if pinned else optims:
            if o not in names:
                raise UserError(f"unknown optimizer {o!r} (choose from {', '.join(names)})")
            if (preset, o) not in pairs:
                pairs.append((preset, o))
    return pairs


def run_configs(runs: list[str], optims: list[str], data: str, work: Path, cap_min: float,
                eval_every: int, eval_bytes: int, device: str,
                overrides: dict[str, str]) -> list[tuple[str, str, RunConfig]]:
    """(preset, optimizer, RunConfig) of every run (``run_pairs``), all built (and so
    validated) before any trains: an unknown preset, optimizer or key, or a missing corpus, is
    a UserError here."""
    from bytelm.data import open_split
    pairs = run_pairs(runs, optims)
    for key, flag in OWNED.items():
        if key in overrides:
            raise UserError(f"--set {key} is set by the speedrun"
                            + (f"; use {flag}" if flag else ""))
    if not Path(data).is_dir():
        raise UserError(f"--data {data}: no such folder (a corpus prepared by `bytelm prepare`)")
    val = open_split(data, "val", min_len=2)
    if eval_bytes > len(val):
        log.warning("--eval-bytes %d is more than the validation split (%d bytes): validating "
                    "on all of it", eval_bytes, len(val))
    out = []
    for p, o in pairs:
        run_dir = work / f"{p}_{o}"
        flat = {"train.steps": MAX_STEPS, "train.progress": False, **overrides,
                "data.path": str(data), "train.out_dir": str(run_dir), "optim.name": o,
                "train.time_budget_min": cap_min, "train.eval_every": eval_every,
                "train.eval_bytes": eval_bytes, "train.device": device}
        cfg = build_run_config(p, flat)
        if cfg.seq_len > cfg.model.context:
            raise UserError(f"data.seq_len={cfg.seq_len} exceeds the context of {p} "
                            f"({cfg.model.context})")
        out.append((p, o, cfg))
    for _, _, cfg in out:
        if Path(cfg.train.out_dir).exists() and any(Path(cfg.train.out_dir).iterdir()):
            raise UserError(f"{cfg.train.out_dir} is not empty; choose another --work")
    return out


class SpeedrunTrainer(Trainer):
    """The Trainer, writing checkpoint files only when ``keep_checkpoints`` (a speedrun keeps
    its metrics and summary); the weights are checked finite at every validation either way."""

    keep_checkpoints = False

    def save(self, dirs: list[Path]) -> None:
        if self.keep_checkpoints:
            return super().save(dirs)
        if not self.weights_finite():
            raise NonFiniteLossError(f"non-finite weights after step {self.step} "
                                     "(lower optim.lr or check the data)")


def run_one(preset: str, optim: str, cfg: RunConfig, targets: list[float],
            keep_checkpoints: bool = False) -> dict:
    """Trains one run until validation bpb <= min(targets) or the cap; its result row.

    Returns:
        {"preset", "optim", "status", "stopped_by" ("target", "cap" or "steps"), "targets":
        {key: {"step", "bytes_seen", "val_bpb", "time_s", "time_after_first_step_s"} or None},
        "val_curve", totals (steps, bytes_seen, time_s, first_step_s, eval_s, wall_s),
        "final_val_bpb", "best_val_bpb", "steady_bytes_per_s", "bytes_per_s", ...}.
    """
    lowest = min(targets)
    curve: list[dict] = []

    def after_validation(trainer: Trainer, res: dict) -> bool:
        # loop time so far, every validation (this one included) taken out
        wall = time.perf_counter() - trainer.t_start - trainer.eval_time
        curve.append({"step": trainer.step, "bytes_seen": trainer.bytes_seen, "bpb": res["bpb"],
                      "time_s": wall, "time_after_first_step_s": wall - trainer.first_step_s,
                      "eval_s": trainer.eval_time})
        log.info("%s %s step %d: val %.4f bpb at %.1f s", preset, optim, trainer.step,
                 res["bpb"], wall)
        return res["bpb"] <= lowest

    row = {"preset": preset, "optim": optim, "status": "ok", "run_dir": cfg.train.out_dir}
    t0 = time.perf_counter()
    trainer = None
    try:
        trainer = SpeedrunTrainer(cfg, after_validation=after_validation)
        trainer.keep_checkpoints = keep_checkpoints
        row.update(family=cfg.model.family, n_params=trainer.model.n_params())
        summary = trainer.run()
    except RuntimeError as e:  # one diverged, OOM or uncompilable run ends only itself
        row["status"] = failure_status(e)
        log.warning("%s %s: %s", preset, optim, row["status"])
        summary = None
    finally:
        if trainer is not None:
            trainer.lock.release()
            D.teardown(trainer.info)
    wall = time.perf_counter() - t0
    reached = {}
    for t in targets:
        hit = next((v for v in curve if v["bpb"] <= t), None)
        reached[target_key(t)] = None if hit is None else {
            "step": hit["step"], "bytes_seen": hit["bytes_seen"], "val_bpb": hit["bpb"],
            "time_s": hit["time_s"], "time_after_first_step_s": hit["time_after_first_step_s"]}
    row["targets"] = reached
    row["val_curve"] = curve
    row["wall_s"] = wall
    if summary is not None:
        hit_lowest = bool(curve) and curve[-1]["bpb"] <= lowest
        capped = summary["budget_used_s"] is not None and summary["steps"] < cfg.train.steps
        row.update(
            stopped_by="target" if hit_lowest else ("cap" if capped else "steps"),
            steps=summary["steps"], bytes_seen=summary["bytes_seen"],
            time_s=curve[-1]["time_s"] if curve else None,
            first_step_s=summary["first_step_s"], eval_s=summary["eval_time_s"],
            evals=len(curve), final_val_bpb=summary["val_bpb"],
            best_val_bpb=summary["best_val_bpb"],
            steady_bytes_per_s=summary["steady_bytes_per_s"], bytes_per_s=summary["bytes_per_s"],
            mfu=summary["mfu"], peak_memory_gib=summary["peak_memory_gib"],
            budget_used_s=summary["budget_used_s"])
    elif curve:
        row["best_val_bpb"] = min(v["bpb"] for v in curve)
    row["run_config"] = cfg.to_dict()
    return row


def speedrun(runs: list[tuple[str, str, RunConfig]], targets: list[float],
             on_row: Callable[[dict], None] | None = None,
             keep_checkpoints: bool = False) -> list[dict]:
    """``run_one`` for every (preset, optimizer, config) in turn; ``on_row`` gets each row."""
    rows = []
    for preset, optim, cfg in runs:
        log.info("speedrun %s %s (cap %.2f min)", preset, optim, cfg.train.time_budget_min)
        rows.append(run_one(preset, optim, cfg, targets, keep_checkpoints))
        if on_row:
            on_row(rows[-1])
        # the next run compiles its own graphs and takes the memory back
        if cfg.train.compile:
            torch._dynamo.reset()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return rows


def _num(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def markdown_table(rows: list[dict], targets: list[float]) -> str:
    """One line per run: preset, optimizer, per target the seconds (since the start and after
    the first step, validations excluded), steps and bytes to reach it, then the final and best
    validation bpb and the steady bytes/s. A target not reached shows '-'."""
    head = ["preset", "optim"]
    for t in targets:
        k = target_key(t)
        head += [f"s to {k}", f"s to {k} after step 1", f"steps to {k}", f"MB to {k}"]
    head += ["final val bpb", "best val bpb", "steady bytes/s", "stopped by"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] *
                                                           (len(head) - 3) + ["---"]) + "|"]
    for r in rows:
        cells = [r["preset"], r["optim"]]
        for t in targets:
            hit = r.get("targets", {}).get(target_key(t))
            if hit is None:
                cells += ["-"] * 4
            else:
                cells += [f"{hit['time_s']:.1f}", f"{hit['time_after_first_step_s']:.1f}",
                          f"{hit['step']:,}", f"{hit['bytes_seen'] / 1e6:.1f}"]
        cells += [_num(r.get("final_val_bpb"), ".4f"), _num(r.get("best_val_bpb"), ".4f"),
                  _num(r.get("steady_bytes_per_s"), ",.0f"),
                  r.get("stopped_by") or r.get("status", "")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
