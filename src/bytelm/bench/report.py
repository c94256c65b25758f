"""What every bench result carries (environment, ceilings) and how it is written and shown."""
import json
import math
import os
import platform
import time
from pathlib import Path

import torch

from bytelm.errors import UserError


def environment(device: torch.device) -> dict:
    """Where the numbers were measured: device name, torch/CUDA versions, threads, time."""
    env = {"device": device.type,
           "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else
           cpu_name(),
           "torch": torch.__version__, "cuda": torch.version.cuda,
           "python": platform.python_version(),
           "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
           "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        from importlib.metadata import version
        env["bytelm"] = version("bytelm")
    except Exception:  # noqa: BLE001 - not installed (PYTHONPATH=src): leave it out
        pass
    return env


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (the machine type where that is unreadable)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def precision_dtype(precision: str, device: torch.device) -> torch.dtype:
    """"auto" -> bf16 on CUDA, fp32 elsewhere; "bf16"/"fp32" as named."""
    if precision not in ("auto", "bf16", "fp32"):
        raise UserError(f"precision must be auto, bf16 or fp32, got {precision!r}")
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return torch.bfloat16 if precision == "bf16" else torch.float32


def _clean(obj):
    """JSON-safe copy: non-finite floats become None (strict JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write_json(result: dict, path) -> Path:
    """Writes ``result`` as indented JSON to ``path`` (parents created)."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"--out is a folder, expected a file name: {path}")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(_clean(result), indent=2) + "\n")
        tmp.replace(p)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None
    return p


def _cell(v, fmt: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and fmt:
        return format(v, fmt)
    return str(v)


def format_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """A fixed-width text table; columns are (header, row key, format spec for floats)."""
    cells = [[h for h, _, _ in columns]]
    cells += [[_cell(r.get(k), f) for _, k, f in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(row, widths)))
             for row in cells]
    return "\n".join(lines)
