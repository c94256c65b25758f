"""Low-level I/O: atomic file and directory writes, safetensors model files, and unwrapping a
model from its DDP / torch.compile wrappers. It imports nothing of bytelm above ``errors``, so
models, optimizers, config and the trainer can all use it (``bytelm.train.checkpoint`` builds
checkpoints on top of it).

A directory is written under a temporary name, every file fsynced, then swapped in with two
renames (old -> .old, tmp -> final) and the old one deleted. If the process dies at any point,
the previous directory is still complete under its name or, in the instant between the two
renames, under ``.old`` (where ``bytelm.train.checkpoint.resolve_checkpoint`` finds it).
"""
import json
import os
import shutil
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from bytelm.errors import UserError
from bytelm.locks import swap_lock
from bytelm.version import __version__

CONFIG = "config.json"
WEIGHTS = "model.safetensors"

# key prefix of the weights in a `bytelm export-hf` directory (the wrapper's attribute)
HF_PREFIX = "bytelm."


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temp file + fsync + rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:  # on a read-only or vanished folder the clean-up fails too: the first error counts
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise
    _fsync_path(path.parent)


def dump_json(obj: dict, path: Path) -> None:
    """Writes ``obj`` as indented, key-sorted JSON atomically (``atomic_write_bytes``)."""
    atomic_write_bytes(Path(path), (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def atomic_write_dir(final: Path, write: Callable[[Path], None]) -> None:
    """Calls ``write(tmp_dir)`` then swaps tmp_dir in as ``final``; see the module docstring.

    Raises:
        UserError: any OS error (disk full, file too large, read-only, permissions) as one
            line; the previous ``final`` is then untouched.
    """
    final = Path(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    old = final.with_name(f"{final.name}.old")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        write(tmp)
        for f in tmp.iterdir():
            _fsync_path(f)
        _fsync_path(tmp)
    except BaseException as e:
        reason = _first_line(e, final.parent)  # before the clean-up frees the space
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, (OSError, SafetensorError)) or (isinstance(e, RuntimeError) and _is_io(e)):
            raise UserError(f"cannot save {final}: {reason}; the previous checkpoint there "
                            "(if any) is intact") from None
        raise
    # If ``final`` is missing, an earlier swap died between its renames and ``old`` holds the
    # only complete checkpoint: it must survive until ``tmp`` is in place.
    with swap_lock(final.parent, shared=False):
        try:
            if final.exists():
                if old.exists():
                    shutil.rmtree(old)
                os.rename(final, old)
            os.rename(tmp, final)
            _fsync_path(final.parent)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise UserError(f"cannot save {final}: {_first_line(e)}; the previous checkpoint is "
                            f"in {final if final.exists() else old}") from None
        shutil.rmtree(old, ignore_errors=True)


def _first_line(e: BaseException, where: Path | None = None) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror + (f": {e.filename}" if e.filename else "")
    line = (str(e).splitlines() or [type(e).__name__])[0]
    if where is not None and isinstance(e, RuntimeError) and _is_io(e):
        # torch.save says only "unexpected pos N vs M": name the likely cause
        try:
            st = os.statvfs(where)
            free = st.f_bavail * st.f_frsize
        except OSError:
            free = None
        if free is not None and free < (1 << 20):
            return f"No space left on device ({free:,} bytes free; torch.save: {line})"
        import resource
        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY:
            return f"File too large (the file size limit, ulimit -f, is {soft:,} bytes; " \
                   f"torch.save: {line})"
    return line


def _is_io(e: RuntimeError) -> bool:
    """torch.save reports a failed write (disk full, file too large) as a RuntimeError."""
    return any(w in str(e) for w in ("PytorchStreamWriter", "file write failed", "unexpected pos"))


def model_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Weights of ``model`` (unwrapping DDP / torch.compile), contiguous, on CPU."""
    m = unwrap(model)
    return {k: v.detach().contiguous().cpu() for k, v in m.state_dict().items()}


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside any DDP (``.module``) and torch.compile (``._orig_mod``) wrappers."""
    while True:
        if hasattr(model, "module"):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def _config_json(model) -> bytes:
    m = unwrap(model)
    d = {"bytelm_version": __version__, "model_type": m.config.family, **m.config.to_dict()}
    return (json.dumps(d, indent=2, sort_keys=True) + "\n").encode()


def write_model_files(model, d: Path, state: dict[str, torch.Tensor] | None = None) -> None:
    """Writes ``d/config.json`` and ``d/model.safetensors`` (``state`` or the model's weights)."""
    (d / CONFIG).write_bytes(_config_json(model))
    save_file(state if state is not None else model_state_dict(model), str(d / WEIGHTS),
              metadata={"format": "pt"})


def save_model(model, path) -> None:
    """Saves config.json + model.safetensors into directory ``path`` atomically."""
    atomic_write_dir(Path(path), lambda d: write_model_files(model, d))


def load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """``safetensors.torch.load_file``, also for a path that is not valid UTF-8 (which
    safetensors refuses to open): such a file is read into memory and parsed from there."""
    name = str(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        from safetensors.torch import load
        return load(Path(path).read_bytes())
    return load_file(name)


def read_weights(ckpt: Path) -> dict[str, torch.Tensor]:
    """``ckpt/model.safetensors``; a missing or unreadable file is a one-line UserError."""
    f = ckpt / WEIGHTS
    if not f.is_file():
        raise UserError(f"corrupted checkpoint {ckpt}: {WEIGHTS} is missing")
    try:
        state = load_safetensors(f)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"corrupted checkpoint {ckpt}: cannot read {WEIGHTS} ({msg})") from None
    # `bytelm export-hf` stores the weights under the transformers wrapper's attribute
    if state and all(k.startswith(HF_PREFIX) for k in state):
        state = {k[len(HF_PREFIX):]: v for k, v in state.items()}
    return state
