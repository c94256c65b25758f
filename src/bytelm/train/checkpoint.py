"""Checkpoints: a directory in the Hugging Face layout, written atomically, loaded without
executing code.

    CKPT/config.json          model config (family + hyperparameters) and bytelm version
    CKPT/model.safetensors    weights
    CKPT/trainer_state.json   (training runs) step, schedule, sampler, metrics, run config
    CKPT/optimizer.pt         (training runs) optimizer state, read with weights_only=True
    CKPT/rng.safetensors      (training runs) torch RNG states

Written atomically (``bytelm.io.atomic_write_dir``): if the process dies at any point, the
previous checkpoint is still complete under its name or, in the instant between the two
renames, under ``.old`` where ``resolve_checkpoint`` finds it.
"""
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from bytelm.errors import UserError
# the low-level I/O lives in bytelm.io; re-exported here for existing callers
from bytelm.io import (CONFIG, WEIGHTS, atomic_write_bytes, atomic_write_dir,  # noqa: F401
                       HF_PREFIX, model_state_dict, read_weights, save_model, unwrap,
                       write_model_files)

TRAINER_STATE = "trainer_state.json"
OPTIMIZER = "optimizer.pt"
RNG = "rng.safetensors"


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
    unwrap(model).load_state_dict(state, strict=True)


def load_model(path, device=None):
    """Builds the model described by ``path/config.json`` and loads its weights."""
    from bytelm.registry import create_model
    ckpt = resolve_checkpoint(path)
    cfg = read_config(ckpt)
    model = create_model(cfg)
    load_weights_into(model, read_weights(ckpt), str(ckpt))
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
    ckpt = resolve_checkpoint(path)
    for name in (TRAINER_STATE, OPTIMIZER, RNG):
        if not (ckpt / name).is_file():
            raise UserError(f"{ckpt} is not a training checkpoint ({name} is missing)")
    try:
        state = json.loads((ckpt / TRAINER_STATE).read_text())
        optim = torch.load(ckpt / OPTIMIZER, map_location="cpu", weights_only=True)
        rng = load_file(str(ckpt / RNG))
    except Exception as e:  # any parse failure of a damaged file is the same user-facing error
        raise UserError(f"corrupted training checkpoint {ckpt}: {type(e).__name__}") from None
    return state, optim, rng, read_weights(ckpt)
