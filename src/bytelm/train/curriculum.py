"""Curriculum training (SPEC section 2): the run is cut into stages, each with its own corpus (or
weighted mixture of corpora) and its own plasticity alpha for the Hebbian memories.

Schedule, in 0-based optimizer steps s (the update that takes the run from s to s + 1): stage k
covers [end_{k-1}, end_k). With blend_steps = n the data mixture moves linearly into stage k+1
during the n steps from end_k on: stage k+1 gets weight t = (s - end_k + 1) / (n + 1) there, so
t runs 1/(n+1) .. n/(n+1) and is 1 from end_k + n on. Plasticity "step" is the alpha of the stage
s lies in; "linear" mixes the alphas with the same weights as the data.

Determinism: the corpus of row r of global batch i is drawn from the mixture at step
i // grad_accum with ``np.random.default_rng([seed, i, 1])``, its window start with
``np.random.default_rng([seed, i, 2, c])`` for corpus c. A batch is therefore a pure function of
(seed, i) and the schedule, and resuming anywhere, across a stage boundary too, reproduces the
uninterrupted run.
"""
from __future__ import annotations

import logging
import re
from bisect import bisect_right
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from bytelm.config import CurriculumConfig, RunConfig
from bytelm.data.loader import IndexedBatches, _as_array
from bytelm.errors import UserError
from bytelm.train import distributed as D

log = logging.getLogger(__name__)

PREPARED_KIND = "curriculum-stage"


class CurriculumSchedule:
    """Stage mixture and plasticity as pure functions of the 0-based optimizer step."""

    def __init__(self, cfg: CurriculumConfig, total_steps: int):
        self.cfg = cfg
        self.names = [s.name for s in cfg.stages]
        self.alphas = [float(s.plasticity) for s in cfg.stages]
        self.set_total_steps(total_steps)

    def set_total_steps(self, total_steps: int) -> None:
        """Re-resolves fractional ends (a time budget or a resume may change the run length)."""
        self.total_steps = total_steps
        self.ends = self.cfg.stage_ends(total_steps, strict=False)

    @property
    def final_plasticity(self) -> float:
        return self.alphas[-1]

    def stage_at(self, step: int) -> int:
        """Index of the stage that step ``step`` belongs to (ignoring blending)."""
        return bisect_right(self.ends, step)

    def stage_weights(self, step: int) -> np.ndarray:
        """Mixture over stages at ``step``, float64 (n_stages,), summing to 1."""
        w = np.zeros(len(self.alphas))
        w[0] = 1.0
        n = self.cfg.blend_steps
        for k, end in enumerate(self.ends):
            t = min(max((step - end + 1) / (n + 1), 0.0), 1.0)
            w *= 1.0 - t
            w[k + 1] += t
        return w

    def plasticity(self, step: int) -> float:
        """Alpha in force at ``step``."""
        if self.cfg.schedule == "linear":
            return float(min(1.0, self.stage_weights(step) @ np.asarray(self.alphas)))
        return self.alphas[self.stage_at(step)]


class CurriculumSampler(IndexedBatches):
    """Random windows of seq_len + 1 bytes from a step-dependent mixture of corpora.

    ``mix[k, c]`` is the share of corpus c in stage k (rows sum to 1); the mixture at step s is
    ``schedule.stage_weights(s) @ mix``. Global batch i has world_size * batch_size rows and rank
    r takes rows [r * batch_size, (r + 1) * batch_size), as for RandomWindowSampler.
    """

    def __init__(self, splits: list, mix: np.ndarray, schedule: CurriculumSchedule, seq_len: int,
                 batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 grad_accum: int = 1, pin_memory: bool = False):
        if seq_len < 1 or batch_size < 1 or grad_accum < 1:
            raise UserError("seq_len, batch_size and grad_accum must be >= 1")
        self.data = [_as_array(s) for s in splits]
        for i, d in enumerate(self.data):
            if len(d) < seq_len + 1:
                raise UserError(f"corpus {i} of the curriculum has {len(d):,} train bytes, fewer "
                                f"than seq_len + 1 = {seq_len + 1:,}")
        self.mix = np.asarray(mix, dtype=np.float64)
        if self.mix.shape != (len(schedule.alphas), len(self.data)):
            raise ValueError(f"mix has shape {self.mix.shape}, expected "
                             f"{(len(schedule.alphas), len(self.data))}")
        self.schedule = schedule
        self.seq_len, self.batch_size, self.grad_accum = seq_len, batch_size, grad_accum
        self.seed, self.rank, self.world_size = int(seed), rank, world_size
        self.pin_memory = pin_memory and torch.cuda.is_available()
        self.batch_index = 0
        self._offsets = np.arange(seq_len + 1, dtype=np.int64)

    def probs(self, step: int) -> np.ndarray:
        """Probability of each corpus at optimizer step ``step``, (n_corpora,)."""
        return self.schedule.stage_weights(step) @ self.mix

    def rows(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(corpus, start) of this rank's rows of global batch ``index``, two int64 (batch_size,)."""
        n = self.world_size * self.batch_size
        p = self.probs(index // self.grad_accum)
        cdf = np.cumsum(p)
        # rounding must never pick a corpus of weight 0 past the last one in use
        cdf[np.flatnonzero(p > 0)[-1]:] = np.inf
        u = np.random.default_rng([self.seed, index, 1]).random(n)
        corpus = np.searchsorted(cdf, u, side="right").astype(np.int64)
        starts = np.zeros(n, dtype=np.int64)
        for c in np.unique(corpus):
            rng = np.random.default_rng([self.seed, index, 2, int(c)])
            s = rng.integers(0, len(self.data[c]) - self.seq_len, size=n, dtype=np.int64)
            starts[corpus == c] = s[corpus == c]
        sl = slice(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
        return corpus[sl], starts[sl]

    def batch_at(self, index: int) -> torch.Tensor:
        """Global batch ``index`` (this rank's rows) as LongTensor (batch_size, seq_len + 1)."""
        corpus, starts = self.rows(index)
        out = np.zeros((self.batch_size, self.seq_len + 1), dtype=np.int64)
        for c in np.unique(corpus):
            m = corpus == c
            out[m] = self.data[c][starts[m][:, None] + self._offsets]
        t = torch.from_numpy(out)
        return t.pin_memory() if self.pin_memory else t

    def state_dict(self) -> dict:
        return {"kind": "curriculum", "batch_index": self.batch_index, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != "curriculum":
            raise UserError("the checkpoint was not written by a curriculum run; resume it without "
                            "a curriculum")
        if int(state["seed"]) != self.seed:
            log.warning("resuming sampler with saved seed %s instead of %s", state["seed"], self.seed)
        self.seed = int(state["seed"])
        self.batch_index = int(state["batch_index"])


# --- stage data --------------------------------------------------------------------------------

def is_prepared(path: Path) -> bool:
    """Whether ``path`` is a prepared corpus folder (meta.json + train.bin)."""
    return path.is_dir() and (path / "meta.json").is_file() and (path / "train.bin").is_file()


def _prepare_once(sources: list[str], out: Path) -> Path:
    """Prepares raw ``sources`` into ``out`` (90/5/5 rule), reusing an earlier preparation of the
    same sources (delete the folder to redo it)."""
    from bytelm.data import load_meta, prepare
    extra = {"kind": PREPARED_KIND, "sources": sorted(sources)}
    if is_prepared(out) and load_meta(out).get("extra") == extra:
        log.info("curriculum: reusing %s", out)
        return out
    log.info("curriculum: preparing %s into %s", ", ".join(sources), out)
    prepare(sources, out, extra_meta=extra)
    return out


def _slug(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).name) or "data"


def stage_corpora(cfg: CurriculumConfig, data_root: Path) -> list[list[tuple[Path, float | None]]]:
    """Prepared corpus folders of every stage, with their explicit weights (None: by size).

    Entries that are prepared corpora are used as they are. Without weights, a stage's raw
    entries are prepared together into ``data_root/<stage>``; with weights, each raw entry is
    prepared on its own into ``data_root/<stage>/<k>-<name>``.
    """
    out = []
    for st in cfg.stages:
        comps: list[tuple[Path, float | None]] = []
        raw = [d for d in st.data if not is_prepared(Path(d))]
        for missing in (d for d in raw if not Path(d).exists()):
            raise UserError(f"curriculum stage {st.name!r}: data not found: {missing}")
        if st.weights:
            for k, (d, w) in enumerate(zip(st.data, st.weights)):
                p = Path(d) if is_prepared(Path(d)) else \
                    _prepare_once([d], data_root / st.name / f"{k}-{_slug(d)}")
                comps.append((p, w))
        else:
            comps += [(Path(d), None) for d in st.data if is_prepared(Path(d))]
            if raw:
                comps.append((_prepare_once(raw, data_root / st.name), None))
        out.append(comps)
    return out


class Curriculum:
    """What the Trainer needs for a curriculum run: the sampler, the schedule, the val splits,
    and hooks to push plasticity, log transitions and validate."""

    def __init__(self, cfg: RunConfig, run_dir: Path, info: D.DistInfo, total_steps: int,
                 pin_memory: bool = False):
        from bytelm.data import open_split
        cc = cfg.curriculum
        data_root = Path(run_dir).absolute() / "data"
        if info.is_main:
            stages = stage_corpora(cc, data_root)
        D.barrier(info)
        if not info.is_main:
            stages = stage_corpora(cc, data_root)  # everything is prepared by now: only reads
        seq = cfg.seq_len
        # one corpus list for the whole run; a folder used by two stages is one corpus
        self.paths: list[Path] = []
        for comps in stages:
            for p, _ in comps:
                if p.resolve() not in [q.resolve() for q in self.paths]:
                    self.paths.append(p)
        index = {p.resolve(): i for i, p in enumerate(self.paths)}
        train = [open_split(p, "train", min_len=seq + 1) for p in self.paths]
        self.val = [open_split(p, "val", min_len=2) for p in self.paths]
        mix = np.zeros((len(stages), len(self.paths)))
        for k, comps in enumerate(stages):
            for p, w in comps:
                mix[k, index[p.resolve()]] += w if w is not None else len(train[index[p.resolve()]])
            mix[k] /= mix[k].sum()
        self.mix = mix
        self.schedule = CurriculumSchedule(cc, total_steps)
        self.sampler = CurriculumSampler(train, mix, self.schedule, seq, cfg.train.batch_size,
                                         seed=cfg.train.seed, rank=info.rank,
                                         world_size=info.world_size,
                                         grad_accum=cfg.train.grad_accum, pin_memory=pin_memory)
        final = [i for i in range(len(self.paths)) if mix[-1, i] > 0]
        self.final_dir = self.paths[final[0]] if len(final) == 1 else None
        if self.final_dir is None and info.is_main:
            log.warning("curriculum: the final stage mixes %d corpora; validation scores their "
                        "weighted mean, `bytelm eval` needs --data", len(final))
        self.has_plasticity: bool | None = None

    def set_total_steps(self, total_steps: int) -> None:
        self.schedule.set_total_steps(total_steps)

    def _check_model(self, model) -> bool:
        if self.has_plasticity is None:
            self.has_plasticity = hasattr(model, "set_plasticity")
            if not self.has_plasticity:
                log.warning("curriculum: %s has no set_plasticity; the plasticity schedule is "
                            "ignored (data stages still apply)", type(model).__name__)
        return self.has_plasticity

    def before_step(self, model, step: int) -> None:
        """Pushes the alpha of 0-based step ``step`` into the model (before its forward)."""
        if self._check_model(model):
            model.set_plasticity(self.schedule.plasticity(step))

    def is_transition(self, steps_done: int) -> bool:
        """Whether a new stage starts after ``steps_done`` optimizer steps."""
        s = self.schedule
        return steps_done > 0 and s.stage_at(steps_done) != s.stage_at(steps_done - 1)

    def stage_record(self, steps_done: int, bytes_seen: int) -> dict:
        """The {"kind": "stage"} metrics record of the stage starting after ``steps_done`` steps
        (also logged as a line)."""
        k = self.schedule.stage_at(steps_done)
        st = self.schedule.cfg.stages[k]
        alpha = self.schedule.plasticity(steps_done)
        log.info("curriculum: stage %d/%d %r from step %d (plasticity %.2f, data %s)", k + 1,
                 len(self.schedule.names), st.name, steps_done, alpha,
                 ", ".join(str(p) for p in st.data))
        return {"kind": "stage", "step": steps_done, "bytes_seen": bytes_seen, "stage": k,
                "name": st.name, "plasticity": alpha,
                "data": [str(self.paths[i]) for i in np.flatnonzero(self.mix[k])],
                "weights": [float(w) for w in self.mix[k][self.mix[k] > 0]]}

    def train_fields(self, steps_done: int) -> dict:
        """Stage and plasticity of the update that ended at ``steps_done``, for train records."""
        s = steps_done - 1
        return {"stage": self.schedule.stage_at(s), "plasticity": self.schedule.plasticity(s)}

    def validate(self, model, score: Callable) -> dict:
        """bpb on every stage's val split(s) and on the final corpus, always with the final
        stage's plasticity (restored afterwards).

        Args:
            model: the bare model (``set_plasticity`` is looked up on it).
            score: split -> evaluate_bpb result dict.
        Returns:
            {"bpb": final corpus, "bits_per_char": final corpus, "val_bpb_<stage>": ...,
             "plasticity": alpha used (only for models with set_plasticity)}; a stage of several
            corpora scores the mixture-weighted mean of their bpb.
        """
        has = self._check_model(model)
        prev = model.plasticity if has else None
        alpha = self.schedule.final_plasticity
        if has:
            model.set_plasticity(alpha)
        try:
            done: dict[int, dict] = {}
            rec: dict = {}
            for k, name in enumerate(self.schedule.names):
                bpb = bpc = 0.0
                for i in np.flatnonzero(self.mix[k]):
                    if i not in done:
                        done[i] = score(self.val[i])
                    bpb += self.mix[k, i] * done[i]["bpb"]
                    bpc += self.mix[k, i] * done[i]["bits_per_char"]
                rec[f"val_bpb_{name}"] = bpb
            rec["bpb"], rec["bits_per_char"] = bpb, bpc  # the last stage: the final corpus
        finally:
            if has:
                model.set_plasticity(prev)
        if has:
            rec["plasticity"] = alpha
        return rec
