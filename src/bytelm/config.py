"""Run configuration: the dataclasses of a run's data, optimiser, training, evaluation and
optional curriculum sections (``RunConfig`` holds them with the model's config).

Every field is typed and documented by the string under it; ``__post_init__`` validates, and any
bad value is a ``UserError`` (one line, exit code 2 from the CLI). Building one from a preset, a
TOML file and ``--section.field`` options is ``bytelm.options``; setting fields from strings is
``bytelm.overrides``.
"""
import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from bytelm.errors import UserError


# sanity bounds: a value beyond them is a typo, not an experiment (1e8 sequences per batch
# would ask for terabytes at once; AdamW and SGD diverge long before lr 1e3; 1e300 overflows float32)
MAX_BATCH = 1 << 16
MAX_LR = 1e3


@dataclass(kw_only=True)
class DataConfig:
    path: str = ""
    """prepared corpus directory (from ``bytelm prepare``); empty: the default corpus. With a
    curriculum the stages name their data and the trainer sets this to the final corpus."""
    seq_len: int = 0
    """training window in bytes; 0: the model's context."""
    default_corpus_bytes: int = 12_000_000
    """size cap of the default corpus (Python standard library sources)."""

    def __post_init__(self):
        _check(self.seq_len >= 0, "data.seq_len must be >= 0")
        _check(self.default_corpus_bytes >= 10_000, "data.default_corpus_bytes must be >= 10000")


@dataclass(kw_only=True)
class OptimConfig:
    name: Literal["adamw", "muon", "sgd", "enhanced_sgd"] = "adamw"
    """optimizer: AdamW; muon (torch.optim.Muon on hidden matrices, AdamW on embeddings, the
    logits layer, norms; bytelm.optim.muon); SGD with momentum; or EnhancedSGD (SGD + decoupled
    decay, LR/momentum steered by a Q-learning controller; bytelm.optim.enhanced_sgd)."""
    lr: float = 3e-4
    """peak learning rate."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas."""
    eps: float = 1e-8
    """AdamW epsilon."""
    momentum: float = 0.9
    """SGD momentum."""
    muon_momentum: float = 0.95
    """muon: momentum of the Muon part (Nesterov)."""
    muon_impl: Literal["torch", "batched"] = "torch"
    """muon: torch (torch.optim.Muon, one matrix at a time) or batched (bytelm.optim.batched_muon:
    the same updates with same-shaped matrices stacked, fewer kernel launches; not yet timed on a
    GPU, so not the default)."""
    weight_decay: float = 0.01
    """decoupled weight decay on matrices (not on norms, biases, embeddings)."""
    schedule: Literal["cosine", "wsd", "constant"] = "cosine"
    """learning-rate shape after warmup: cosine decay, warmup-stable-decay, or constant."""
    warmup_steps: int = 200
    """linear warmup steps from 0 to lr (at most warmup_max_frac of the run)."""
    warmup_max_frac: float = 0.25
    """the warmup never takes more than this fraction of the run's steps (a longer warmup_steps
    is shortened, with a warning); 0: no cap."""
    min_lr_ratio: float = 0.1
    """final lr as a fraction of the peak (cosine and wsd)."""
    wsd_decay_frac: float = 0.2
    """fraction of the run spent in the final linear decay of the wsd schedule."""
    grad_clip: float = 0.5
    """max global gradient L2 norm; 0 disables clipping."""
    lr_min: float = 0.0
    """enhanced_sgd: lowest peak LR the controller may set; 0: lr / 10."""
    lr_max: float = 0.0
    """enhanced_sgd: highest LR, a hard cap on every step; 0: lr * 10."""
    q_every: int = 50
    """enhanced_sgd: optimizer steps per controller decision; 0: no controller."""
    q_lr: float = 0.1
    """enhanced_sgd: Q-learning rate."""
    q_discount: float = 0.9
    """enhanced_sgd: Q-learning discount."""
    q_epsilon: float = 0.3
    """enhanced_sgd: initial exploration probability."""
    q_epsilon_decay: float = 0.97
    """enhanced_sgd: exploration factor per decision."""
    q_epsilon_min: float = 0.02
    """enhanced_sgd: exploration floor."""
    q_seed: int = 0
    """enhanced_sgd: seed of the controller's generator."""

    def __post_init__(self):
        _check(0 < self.lr <= MAX_LR, f"optim.lr must be in (0, {MAX_LR:g}]")
        _check(all(0 <= b < 1 for b in self.betas), "optim.betas must be in [0, 1)")
        _check(0 <= self.momentum < 1, "optim.momentum must be in [0, 1)")
        _check(self.weight_decay >= 0, "optim.weight_decay must be >= 0")
        _check(self.warmup_steps >= 0, "optim.warmup_steps must be >= 0")
        _check(0 <= self.warmup_max_frac <= 1, "optim.warmup_max_frac must be in [0, 1]")
        _check(0 <= self.min_lr_ratio <= 1, "optim.min_lr_ratio must be in [0, 1]")
        _check(0 < self.wsd_decay_frac <= 1, "optim.wsd_decay_frac must be in (0, 1]")
        _check(self.grad_clip >= 0, "optim.grad_clip must be >= 0")
        _check(self.lr_min >= 0 and self.lr_max >= 0, "optim.lr_min and optim.lr_max must be >= 0")
        _check((self.lr_min or self.lr / 10) <= self.lr <= (self.lr_max or self.lr * 10),
               "need optim.lr_min <= optim.lr <= optim.lr_max")
        _check(self.q_every == 0 or self.q_every >= 2, "optim.q_every must be 0 or >= 2")
        _check(0 < self.q_lr <= 1, "optim.q_lr must be in (0, 1]")
        _check(0 <= self.q_discount < 1, "optim.q_discount must be in [0, 1)")
        _check(0 <= self.q_epsilon_min <= self.q_epsilon <= 1,
               "need 0 <= optim.q_epsilon_min <= optim.q_epsilon <= 1")
        _check(0 < self.q_epsilon_decay <= 1, "optim.q_epsilon_decay must be in (0, 1]")


@dataclass(kw_only=True)
class TrainConfig:
    steps: int = 1000
    """optimizer steps (upper bound when time_budget_min is set)."""
    batch_size: int = 16
    """sequences per micro-batch per process."""
    grad_accum: int = 1
    """micro-batches per optimizer step."""
    seed: int = 1337
    """seeds model init and data order."""
    device: str = "auto"
    """auto (cuda if available), cpu, cuda, cuda:N."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """auto: bf16 autocast on CUDA, fp32 on CPU."""
    compile: bool = False
    """wrap the model in torch.compile."""
    compile_scope: Literal["model", "blocks"] = "model"
    """with train.compile: "model" compiles the whole forward as one graph; "blocks" compiles each
    repeated block in place (regional compilation: blocks of one kind share a graph, so compile
    time is that of about one block; see bytelm.train.compiling)."""
    compile_mode: Literal["auto", "default", "reduce-overhead", "max-autotune",
                          "max-autotune-no-cudagraphs"] = "auto"
    """torch.compile mode with train.compile; reduce-overhead replays forward and backward as
    CUDA graphs (single process; in `bytelm bench train` agiformer-31m's step fell from 43.4
    to 30.1 ms on the H100, benchmarks/results/train_speed/bench_train_agiformer_cg_h100.json).
    auto: reduce-overhead where it was measured to pay in `bytelm train` (AGIFORMER on CUDA, one
    process, no curriculum, no gradient accumulation: 2.70 M steady bytes/s,
    hnet/equal_time_2.5min_seeds_h100.json), default everywhere else
    (bytelm.train.compiling.resolve_compile_mode)."""
    compile_eval: bool = False
    """with train.compile (single process): validate with a torch.compile'd copy of the forward
    (default mode) instead of the eager model. Validation runs eagerly otherwise: on an H100 a
    2.5-minute transformer-30m run spent 15.1 s on six 2.5 MB validations, about 1 MB/s, where
    compiled training runs forward and backward at 1.48 MB/s; compiling costs one eval graph
    (and one more for a shorter last batch). Off until measured on a GPU."""
    out_dir: str = "runs/default"
    """run directory: run_config.json, metrics.jsonl, ckpt/last, ckpt/best."""
    log_every: int = 10
    """steps between metric lines."""
    eval_every: int = 200
    """steps between validations (and checkpoints); 0: only at the end."""
    eval_bytes: int = 1_000_000
    """bytes of the validation split used by periodic validation; 0: the whole split."""
    collapse_bpb: float = 1.0
    """a validation this many bits/byte worse than the best so far (or non-finite) counts as a
    collapse: the run stops without overwriting ckpt/last; 0: only non-finite ones."""
    time_budget_min: float = 0.0
    """if > 0: a wall-clock cap in minutes on the whole run (final validation and checkpoint
    included); after every step the run's length (and so the schedule's end) is re-planned from
    the recent steps' times, and steps is only an upper bound."""
    parallel: Literal["ddp", "fsdp"] = "ddp"
    """multi-process strategy under torchrun."""
    tensorboard: bool = False
    """also log scalars to TensorBoard (run_dir/tb)."""
    wandb: bool = False
    """also log to Weights & Biases in offline mode."""
    progress: bool = True
    """show a tqdm progress bar."""
    stop_after: int = 0
    """if > 0: stop with a checkpoint after this many steps of this invocation (the schedule still
    spans ``steps``); resume later with ``--resume``. For time-sliced or preemptible jobs."""
    peak_tflops: float = 0.0
    """accelerator peak (dense bf16) used for MFU; 0: look it up from the device name."""

    def __post_init__(self):
        for k in ("steps", "batch_size", "grad_accum", "log_every"):
            _check(getattr(self, k) >= 1, f"train.{k} must be >= 1")
        for k in ("batch_size", "grad_accum"):
            _check(getattr(self, k) <= MAX_BATCH, f"train.{k} must be <= {MAX_BATCH:,}")
        _check(self.eval_every >= 0, "train.eval_every must be >= 0")
        _check(self.eval_bytes >= 0, "train.eval_bytes must be >= 0")
        _check(self.collapse_bpb >= 0, "train.collapse_bpb must be >= 0")
        _check(self.time_budget_min >= 0, "train.time_budget_min must be >= 0")
        _check(self.stop_after >= 0, "train.stop_after must be >= 0")
        _check(self.peak_tflops >= 0, "train.peak_tflops must be >= 0")
        _check(self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"),
               f"train.device must be auto, cpu or cuda[:N], got {self.device!r}")


@dataclass(kw_only=True)
class EvalConfig:
    batch_size: int = 8
    """windows per evaluation batch."""
    stride: int = 0
    """distance between evaluation windows; 0: seq_len (no overlap). With stride < seq_len each
    scored byte (after the first window) sees at least seq_len - stride bytes of context."""

    def __post_init__(self):
        _check(1 <= self.batch_size <= MAX_BATCH, f"eval.batch_size must be in [1, {MAX_BATCH:,}]")
        _check(self.stride >= 0, "eval.stride must be >= 0")


# seed defaults (Phase 7): stage ends 3K/8K of 20K steps, plasticity 0.10 -> 0.50 -> 0.99
DEFAULT_STAGE_ENDS = (0.15, 0.40)
DEFAULT_PLASTICITY = (0.10, 0.50, 0.99)
_STAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


@dataclass(kw_only=True)
class StageConfig:
    """One curriculum stage: its data, where it ends, and the plasticity it trains with."""

    name: str
    """stage name (letters, digits, _ and -): folder <out_dir>/data/<name>, key val_bpb_<name>."""
    data: list[str]
    """prepared corpus dirs, or raw text files/folders (prepared 90/5/5 into <out_dir>/data/<name>)."""
    weights: list[float] = field(default_factory=list)
    """mixture weight of each data entry; empty: proportional to their train bytes."""
    until: int | float | None = None
    """end of the stage: a step (int) or a fraction of train.steps (float in (0, 1)); None on the
    last stage; for 3 stages defaults to 0.15 and 0.40."""
    plasticity: float | None = None
    """Hebbian plasticity alpha in (0, 1] during the stage; default 0.10/0.50/0.99 for 3 stages,
    else 1.0."""

    def __post_init__(self):
        where = f"stage {self.name!r}"
        _check(isinstance(self.name, str) and bool(_STAGE_NAME.fullmatch(self.name)),
               f"curriculum stage name {self.name!r} must be letters, digits, '_' or '-'")
        _check(bool(self.data), f"{where}: data must name at least one corpus")
        _check(not self.weights or len(self.weights) == len(self.data),
               f"{where}: weights needs one value per data entry ({len(self.data)})")
        _check(all(w > 0 for w in self.weights), f"{where}: weights must be > 0")
        if isinstance(self.until, float):
            _check(0 < self.until < 1 or self.until == 1.0,
                   f"{where}: until as a fraction must be in (0, 1), got {self.until}")
        elif self.until is not None:
            _check(self.until >= 1, f"{where}: until as a step must be >= 1, got {self.until}")
        _check(self.plasticity is None or 0 < self.plasticity <= 1,
               f"{where}: plasticity must be in (0, 1], got {self.plasticity}")


@dataclass(kw_only=True)
class CurriculumConfig:
    """Stages trained one after another (SPEC section 2); see bytelm.train.curriculum."""

    stages: list[StageConfig]
    """the stages in training order; the last one is the final corpus (best checkpoint)."""
    blend_steps: int = 0
    """steps over which the data mixture moves linearly from one stage to the next."""
    schedule: Literal["step", "linear"] = "step"
    """plasticity: 'step' switches at each boundary, 'linear' ramps over blend_steps."""

    def __post_init__(self):
        _check(len(self.stages) >= 1, "curriculum needs at least one stage")
        names = [s.name for s in self.stages]
        dup = sorted({n for n in names if names.count(n) > 1})
        _check(not dup, f"curriculum stage names must be unique: {', '.join(dup)}")
        _check(self.blend_steps >= 0, "curriculum.blend_steps must be >= 0")
        _check(self.schedule in ("step", "linear"), "curriculum.schedule must be step or linear")
        n = len(self.stages)
        for i, st in enumerate(self.stages):
            if st.until is None and i < n - 1:
                _check(n == 3, f"stage {st.name!r}: until is required (only a 3-stage curriculum "
                               "has default ends)")
                st.until = DEFAULT_STAGE_ENDS[i]
            if i == n - 1:
                _check(st.until is None or st.until == 1.0,
                       f"stage {st.name!r}: the last stage runs to the end of the run; drop until")
                st.until = None
            if st.plasticity is None:
                st.plasticity = DEFAULT_PLASTICITY[i] if n == 3 else 1.0
        for kind in (int, float):
            ends = [s.until for s in self.stages[:-1] if isinstance(s.until, kind)]
            _check(all(a < b for a, b in zip(ends, ends[1:])),
                   f"curriculum stage ends must increase: {', '.join(map(str, ends))}")

    def stage_ends(self, total_steps: int, strict: bool = True) -> list[int]:
        """End step of every stage but the last (a stage covers steps [prev end, end)).

        Args:
            total_steps: steps of the run; fractions are rounded to the nearest step.
            strict: raise UserError unless 0 < end_1 < end_2 < ... < total_steps; otherwise
                clamp (a time budget may shorten the run so later stages shrink or vanish).
        Returns:
            list of len(stages) - 1 ints.
        """
        ends = [int(s.until * total_steps + 0.5) if isinstance(s.until, float) else int(s.until)
                for s in self.stages[:-1]]
        if strict:
            _check(all(0 < e < total_steps for e in ends) and all(a < b for a, b in zip(ends, ends[1:])),
                   f"curriculum stage ends {ends} must increase and lie inside the run "
                   f"(0 < end < train.steps={total_steps})")
            return ends
        out, prev = [], 0
        for e in ends:
            prev = max(prev, min(e, total_steps))
            out.append(prev)
        return out


@dataclass(kw_only=True)
class RunConfig:
    preset: str = "transformer-tiny"
    """model preset name (``bytelm info`` lists them)."""
    model: Any = None
    """the resolved model config (preset + ``--model.*`` overrides)."""
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    curriculum: CurriculumConfig | None = None
    """stages of data and plasticity (``bytelm train --curriculum FILE``); None: one corpus."""

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return d

    @property
    def seq_len(self) -> int:
        return self.data.seq_len or self.model.context


def _check(ok: bool, msg: str) -> None:
    if not ok:
        raise UserError(msg)
