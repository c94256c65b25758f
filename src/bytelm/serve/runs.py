"""The runs a ``bytelm serve`` process may show: loaded once at start, looked up by name only."""
import logging
from dataclasses import dataclass
from pathlib import Path

from bytelm.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class LoadedRun:
    """One run named at start: its model and where its metrics are."""

    name: str
    """the id requests use: the run folder's name, made unique with -2, -3..."""
    ckpt: Path
    """the checkpoint loaded (RUN/ckpt/best, else RUN/ckpt/last, or the folder given)."""
    run_dir: Path | None
    """the folder holding metrics.jsonl, None when there is none."""
    model: object
    """the ByteLM, in eval mode."""
    _patches: bool | None = None
    """whether the model has patches (``patch_ends`` is not None), found on first describe."""

    def describe(self) -> dict:
        """What the page shows about the run (JSON)."""
        import torch
        m = self.model
        if self._patches is None:
            with torch.no_grad():
                x = torch.zeros(1, 2, dtype=torch.long, device=next(m.parameters()).device)
                self._patches = m.patch_ends(x) is not None
        return {"name": self.name, "family": m.config.family, "context": m.config.context,
                "n_params": m.n_params(), "checkpoint": str(self.ckpt),
                "patches": self._patches, "curves": self.run_dir is not None}


def _run_dir_of(ckpt: Path, given: Path) -> Path | None:
    """The nearest of the given folder and the checkpoint's parents that has metrics.jsonl."""
    for d in (given, ckpt, ckpt.parent, ckpt.parent.parent):
        if (d / "metrics.jsonl").is_file():
            return d
    return None


def load_runs(paths: list, device) -> dict[str, LoadedRun]:
    """Loads every run or checkpoint folder in ``paths`` onto ``device``, keyed by unique name.

    Raises:
        UserError: no paths, or a path that is not a bytelm run or checkpoint.
    """
    from bytelm.train.checkpoint import load_model, resolve_checkpoint
    if not paths:
        raise UserError("name at least one run or checkpoint to serve")
    runs: dict[str, LoadedRun] = {}
    for p in paths:
        given = Path(p).absolute()
        ckpt = resolve_checkpoint(p)
        base = given.name if given.name not in ("best", "last") else given.parent.parent.name
        name, k = base or "run", 2
        while name in runs:
            name, k = f"{base}-{k}", k + 1
        runs[name] = LoadedRun(name, ckpt, _run_dir_of(ckpt, given), load_model(ckpt, device=device))
        log.info("loaded %s from %s", name, ckpt)
    return runs
