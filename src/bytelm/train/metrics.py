"""Metric sinks: JSONL file (always), TensorBoard and Weights & Biases (optional, offline)."""
import json
import logging
import os
from pathlib import Path

from bytelm.errors import UserError

log = logging.getLogger(__name__)

# option -> (module to import, pip extra that installs it)
BACKENDS = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb")}


def check_backends(tensorboard: bool, wandb: bool) -> None:
    """UserError (before a run starts) when an asked-for logging backend is not installed."""
    import importlib.util
    for name, wanted in (("tensorboard", tensorboard), ("wandb", wandb)):
        module, extra = BACKENDS[name]
        if wanted and importlib.util.find_spec(module) is None:
            raise UserError(f"--train.{name}=true needs the {module} package: "
                            f"pip install 'bytelm[{extra}]' (or {module})")


class MetricsLogger:
    """Appends one JSON object per call to ``run_dir/metrics.jsonl``; mirrors scalars to TB/W&B."""

    def __init__(self, run_dir: Path, tensorboard: bool = False, wandb: bool = False,
                 config: dict | None = None, truncate_after_step: int | None = None):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if truncate_after_step is not None and self.path.exists():
            # on resume, drop lines from steps after the checkpoint so the file has no duplicates
            # (and a line cut short by a crash)
            keep = [ln for ln in self.path.read_text().splitlines()
                    if _step_of(ln) is not None and _step_of(ln) <= truncate_after_step]
            from bytelm.io import atomic_write_bytes
            atomic_write_bytes(self.path, "".join(ln + "\n" for ln in keep).encode())
        self._f = open(self.path, "a")
        self._tb = self._wb = None
        check_backends(tensorboard, wandb)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self._tb = SummaryWriter(str(Path(run_dir) / "tb"))
        if wandb:
            import wandb as wb
            os.environ.setdefault("WANDB_MODE", "offline")
            self._wb = wb.init(project="bytelm", dir=str(run_dir), config=config or {})

    def log(self, record: dict) -> None:
        self._f.write(json.dumps(record) + "\n")
        self._f.flush()
        step = record.get("step", 0)
        scalars = {k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "step"}
        if self._tb:
            for k, v in scalars.items():
                self._tb.add_scalar(f"{record.get('kind', 'train')}/{k}", v, step)
        if self._wb:
            self._wb.log({f"{record.get('kind', 'train')}/{k}": v for k, v in scalars.items()}, step=step)

    def close(self) -> None:
        self._f.close()
        if self._tb:
            self._tb.close()
        if self._wb:
            self._wb.finish()


def _step_of(line: str) -> int | None:
    """The step of one metrics line; None for a blank or unparseable (half-written) line."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return rec.get("step", 0) if isinstance(rec, dict) else None


def read_metrics(run_dir) -> list[dict]:
    """Records of ``run_dir/metrics.jsonl``, skipping a line left half-written by a crash."""
    p = Path(run_dir) / "metrics.jsonl"
    out = []
    for ln in p.read_text().splitlines() if p.exists() else []:
        try:
            rec = json.loads(ln)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out
