"""Checkpoints: a directory in the Hugging Face layout, written atomically, loaded without
executing code.

    CKPT/config.json          model config (family + hyperparameters) and bytelm version
    CKPT/model.safetensors    weights
    CKPT/trainer_state.json   (training runs) step, schedule, sampler, metrics, run config
    CKPT/optimizer.pt         (training runs) optimizer state, read with weights_only=True
    CKPT/rng.safetensors      (training runs) torch RNG states

A directory is written under a temporary name, every file fsynced, then swapped in with two
renames (old -> .old, tmp -> final) and the old one deleted. If the process dies at any point,
the previous checkpoint is still complete under its name or, in the instant between the two
renames, under ``.old`` where ``resolve_checkpoint`` finds it.
"""
import contextlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from bytelm.errors import UserError
# the low-level I/O lives in bytelm.io; re-exported here for existing callers
from bytelm.io import (CONFIG, HF_PREFIX, WEIGHTS, atomic_write_bytes,  # noqa: F401
                       atomic_write_dir, load_safetensors, model_state_dict, read_weights,
                       save_model, unwrap,
                       write_model_files)
from bytelm.locks import swap_lock

log = logging.getLogger(__name__)

TRAINER_STATE = "trainer_state.json"
OPTIMIZER = "optimizer.pt"
RNG = "rng.safetensors"


def remove_stale_temps(run_dir: Path) -> list[Path]:
    """Deletes what killed writers left in a run directory: ``.NAME.tmp-PID`` folders and files
    of unfinished saves, and a ``NAME.old`` whose ``NAME`` is complete. Only safe for the holder
    of the run's lock (no other writer exists). Returns what was removed."""
    run_dir = Path(run_dir)
    removed = []
    for folder in (run_dir, run_dir / "ckpt"):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            stale_tmp = p.name.startswith(".") and ".tmp-" in p.name
            stale_old = (p.name.endswith(".old") and p.is_dir()
                         and (p.with_name(p.name[:-4]) / CONFIG).is_file())
            if stale_tmp or stale_old:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
                removed.append(p)
    if removed:
        log.info("removed %d stale temporary file(s) from %s: %s", len(removed), run_dir,
                 ", ".join(p.name for p in removed))
    return removed


def resolve_checkpoint(path) -> Path:
    """The checkpoint directory for ``path``: itself, its ``.old`` twin after an interrupted swap,
    or, for a run directory, ``RUN/ckpt/best`` then ``RUN/ckpt/last``."""
    p = Path(path).absolute()  # "." has no name to build the .old twin from

    def twin(d: Path) -> list[Path]:
        return [d, d.with_name(d.name + ".old")] if d.name else [d]
    for cand in (*twin(p), *twin(p / "ckpt" / "best"), *twin(p / "ckpt" / "last")):
        if (cand / CONFIG).is_file():
            return cand
    if not p.exists():
        raise UserError(f"checkpoint not found: {path}")
    raise UserError(f"not a bytelm checkpoint (no {CONFIG}): {path}")


def read_config(ckpt: Path):
    from bytelm.registry import config_from_dict
    try:
        d = json.loads((ckpt / CONFIG).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"corrupted checkpoint {ckpt}: {CONFIG} is not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise UserError(f"corrupted checkpoint {ckpt}: {CONFIG} is not a JSON object")
    if d.get("model_type") == "bytelm" and isinstance(d.get("bytelm"), dict):
        d = dict(d["bytelm"])  # a directory written by `bytelm export-hf` (bytelm.hf.export)
    d.pop("bytelm_version", None)
    d.pop("model_type", None)
    try:
        return config_from_dict(d)
    except TypeError as e:
        raise UserError(f"bad model config in {ckpt / CONFIG}: {e}") from None


def check_against_run_config(ckpt: Path, model_cfg) -> None:
    """A training checkpoint records the model config it was trained with twice (config.json and
    trainer_state.json's run config): an edited or mixed-up config.json disagrees (a changed
    ``context`` loads into the same weights, so nothing else would notice)."""
    d = json.loads(json.dumps(model_cfg.to_dict()))  # tuples as lists, like the saved JSON
    try:
        trained = json.loads((ckpt / TRAINER_STATE).read_text(encoding="utf-8"))["run_config"]["model"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # not a training checkpoint (or a damaged state, reported when resuming)
    if not isinstance(trained, dict):
        return
    diff = sorted(k for k in set(d) & set(trained) if d[k] != trained[k])
    if diff:
        k = diff[0]
        raise UserError(f"{ckpt / CONFIG} disagrees with the run config the weights were trained "
                        f"with ({k}: {d[k]!r} vs {trained[k]!r}); was it edited?")


def load_weights_into(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Copies ``state`` into ``model``, failing with one line on any missing/extra key or shape."""
    own = unwrap(model).state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    bad = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or extra or bad:
        parts = []
        if missing:
            parts.append(f"missing {missing[:3]}")
        if extra:
            parts.append(f"unexpected {extra[:3]}")
        if bad:
            k = bad[0]
            parts.append(f"shape of {k}: weights {tuple(state[k].shape)} vs config {tuple(own[k].shape)}")
        raise UserError(f"config/weights mismatch in {where}: " + "; ".join(parts))
    for k, v in state.items():
        if own[k].is_floating_point() and not v.is_floating_point():
            raise UserError(f"bad weights in {where}: {k} is {v.dtype}, not a floating-point type")
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise UserError(f"bad weights in {where}: {k} holds NaN or Inf")
    unwrap(model).load_state_dict(state, strict=True)


@contextlib.contextmanager
def reading(path):
    """The checkpoint directory of ``path`` (``resolve_checkpoint``), kept from being swapped by
    a concurrent writer while the block reads it (a consistent snapshot)."""
    with swap_lock(resolve_checkpoint(path).parent, shared=True):
        yield resolve_checkpoint(path)


def load_model(path, device=None):
    """Builds the model described by ``path/config.json`` and loads its weights."""
    from bytelm.registry import create_model
    with reading(path) as ckpt:
        cfg = read_config(ckpt)
        weights = read_weights(ckpt)
    model = create_model(cfg)
    load_weights_into(model, weights, str(ckpt))
    check_against_run_config(ckpt, cfg)
    if device is not None:
        model.to(device)
    return model.eval()


# --- training checkpoints -------------------------------------------------------------------

def save_training(path: Path, model, optimizer: torch.optim.Optimizer, trainer_state: dict[str, Any],
                  model_state: dict[str, torch.Tensor] | None = None,
                  optim_state: dict | None = None) -> None:
    """Model files + optimizer + RNG + trainer state, one atomic directory."""
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state()

    def write(d: Path) -> None:
        write_model_files(model, d, model_state)
        torch.save(optim_state if optim_state is not None else optimizer.state_dict(), d / OPTIMIZER)
        save_file(rng, str(d / RNG))
        (d / TRAINER_STATE).write_text(json.dumps(trainer_state, indent=2, sort_keys=True) + "\n")

    atomic_write_dir(Path(path), write)


def load_training(path) -> tuple[dict, dict, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Returns (trainer_state, optimizer_state, rng_states, model_weights) of a training checkpoint."""
    with reading(path) as ckpt:
        for name in (TRAINER_STATE, OPTIMIZER, RNG):
            if not (ckpt / name).is_file():
                raise UserError(f"{ckpt} is not a training checkpoint ({name} is missing)")
        def read(name, parse):
            try:
                return parse(ckpt / name)
            except Exception as e:  # any parse failure of a damaged file is a one-line error
                msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
                raise UserError(f"corrupted training checkpoint {ckpt}: cannot read {name} ({msg})") from None
        state = read(TRAINER_STATE, lambda f: json.loads(f.read_text()))
        optim = read(OPTIMIZER, lambda f: torch.load(f, map_location="cpu", weights_only=True))
        rng = read(RNG, load_safetensors)
        weights = read_weights(ckpt)
    check_trainer_state(state, ckpt)
    return state, optim, rng, weights


def check_trainer_state(state: Any, ckpt: Path) -> None:
    """UserError unless the fields of ``state`` (trainer_state.json) have their types and ranges
    (a missing field is reported by the trainer that needs it)."""
    def bad(msg: str) -> UserError:
        return UserError(f"damaged training checkpoint {ckpt}: {TRAINER_STATE} {msg}")
    if not isinstance(state, dict):
        raise bad("is not a JSON object")
    for key in ("step", "total_steps", "bytes_seen"):
        v = state.get(key, 0)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise bad(f"has {key}={v!r}, not an integer >= 0")
    if "total_steps" in state and state.get("step", 0) > state["total_steps"]:
        raise bad(f"has step {state['step']} beyond total_steps {state['total_steps']}")
    for key in ("best_val", "train_time", "budget_used_s"):
        v = state.get(key, 0.0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise bad(f"has {key}={v!r}, not a number >= 0")
    if not all(isinstance(state.get(k, {}), dict) for k in ("sampler", "run_config")):
        raise bad("has a sampler or run_config that is not an object")
