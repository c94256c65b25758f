"""Live continual learning on a byte stream (SPEC section 3; ``bytelm live``).

The stream is cut into chunks of context + 1 bytes (``bytelm.live.stream``). Chunks are learned
in batches of ``batch_size``; for each chunk, in stream order:

1. its context (the ``context`` input bytes) is keyed (blake2b, or a MinHash band with
   ``sketch``) and visited in the ``ContextMemory``, which returns a gradient scale in
   [min_scale, 1] from the context's recent repetitions (formula and rationale in
   ``bytelm.live.memory``); ``importance=False`` uses 1 (plain fine-tuning);
2. the update follows the gradient of sum_i scale_i * loss_i / n over the batch's chunks and
   any replayed chunks (scale 1), loss_i the mean next-byte cross-entropy of chunk i: a
   per-chunk gradient scale, not one factor for the batch. It is applied as relative loss
   weights scale_i / mean(scale) and an LR multiplied by mean(scale): identical for SGD, and
   for Adam (which divides out any uniform gradient scale, so scaling the loss alone would do
   nothing when a whole batch repeats) the update still shrinks with the scales;
3. gradients are clipped to ``grad_clip`` and the optimizer steps; a non-finite loss skips the
   update (counted), so no byte sequence can poison the weights.

Every ``prune_every`` chunks the memory drops contexts whose decayed importance is negligible.
With ``replay > 0`` a reservoir of earlier chunks (optionally seeded with the original domain)
adds about ``replay * batch_size`` chunks to every update.

Checkpoints (``OUT/ckpt/last``, written atomically every ``ckpt_every`` updates and at the end
of the stream or on Ctrl-C) hold the model files of a normal checkpoint (so ``bytelm eval``,
``generate`` and ``live`` load them) plus ``optimizer.pt``, ``memory.json``,
``replay.safetensors``, ``rng.safetensors`` and ``live_state.json`` (counters, config, how many
stream bytes were learned). Loading a trainer checkpoint takes its weights only: the live run
starts its own optimizer with its own (small) learning rate.

Ctrl-C: during an update it is deferred until the update ends (the weights are never half
updated); while waiting for stream bytes it stops at once. Either way the chunks of an
unfinished batch are not learned, the final checkpoint is written, and ``--resume`` continues
the same file exactly where the learned chunks end. A second Ctrl-C during the deferred update
stops at once without a final checkpoint (the last periodic one stays).
"""
import dataclasses
import json
import logging
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch
from safetensors.torch import save_file

from bytelm.errors import UserError
from bytelm.interrupts import SIGNALS as TERMINATION_SIGNALS
from bytelm.interrupts import install as install_signals
from bytelm.interrupts import restore as restore_signals
from bytelm.io import load_safetensors
from bytelm.live.memory import ContextMemory
from bytelm.live.replay import ReplayBuffer
from bytelm.live.stream import iter_chunks
from bytelm.train.step import MicroLoss, StepConfig, TrainStep, set_lr

log = logging.getLogger(__name__)


def _read_tensors(f: Path, where) -> dict[str, torch.Tensor]:
    """A safetensors file of a live checkpoint; a damaged one is a one-line UserError."""
    try:
        return load_safetensors(f)
    except Exception as e:  # any parse failure of a damaged file
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise UserError(f"corrupted live checkpoint {where}: cannot read {f.name} ({msg})") from None


LIVE_FORMAT = "bytelm-live/1"
LIVE_STATE = "live_state.json"
MEMORY = "memory.json"
REPLAY = "replay.safetensors"
OPTIMIZERS = ("adamw", "sgd", "enhanced_sgd")


@dataclass(kw_only=True)
class LiveConfig:
    context: int = 0
    """input bytes per chunk; 0: min(256, the model's context)."""
    batch_size: int = 4
    """stream chunks per update."""
    lr: float = 1e-4
    """learning rate of the live optimizer."""
    optimizer: str = "adamw"
    """adamw, sgd (momentum 0.9) or enhanced_sgd (Q-controlled, bytelm.optim)."""
    weight_decay: float = 0.0
    """decoupled weight decay on matrices."""
    grad_clip: float = 1.0
    """max global gradient norm; 0 disables clipping."""
    importance: bool = True
    """scale each chunk's gradient by its memory scale; False: scale 1 (plain fine-tuning)."""
    capacity: int = 4096
    """contexts the memory keeps (LRU eviction)."""
    half_life: float = 2000.0
    """chunks (steps) for an unseen context's importance to halve."""
    min_scale: float = 0.1
    """floor of the gradient scale."""
    prune_every: int = 500
    """chunks between pruning passes of the memory; 0: never prune."""
    prune_below: float = 0.01
    """pruning drops contexts whose decayed importance is below this."""
    sketch: bool = False
    """key contexts by a MinHash band of their 5-grams (near-duplicates collide), not blake2b."""
    replay: float = 0.0
    """replayed chunks per stream chunk (0.25: one replayed chunk per 4 new ones); 0: off."""
    replay_capacity: int = 1024
    """chunks kept in the replay reservoir."""
    ckpt_every: int = 200
    """updates between checkpoints; 0: only the final one."""
    log_every: int = 50
    """updates between log lines (and lines of OUT/live_metrics.jsonl)."""
    seed: int = 0
    """seeds replay sampling and the Q-controller."""

    def __post_init__(self):
        checks = [
            (self.context >= 0, "context must be >= 0"),
            (self.batch_size >= 1, "batch size must be >= 1"),
            (math.isfinite(self.lr) and self.lr > 0, "lr must be > 0"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.weight_decay >= 0, "weight decay must be >= 0"),
            (self.grad_clip >= 0, "grad clip must be >= 0"),
            (self.capacity >= 1, "capacity must be >= 1"),
            (self.half_life > 0, "half-life must be > 0"),
            (0 < self.min_scale <= 1, "min scale must be in (0, 1]"),
            (self.prune_every >= 0 and self.prune_below >= 0, "prune options must be >= 0"),
            (0 <= self.replay <= 4, "replay must be in [0, 4]"),
            (self.replay_capacity >= 1, "replay capacity must be >= 1"),
            (self.ckpt_every >= 0, "ckpt-every must be >= 0"),
            (self.log_every >= 1, "log-every must be >= 1"),
            (self.seed >= 0, "seed must be >= 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise UserError(f"live: {msg}")


def make_config(base: dict | None = None, overrides: dict | None = None) -> LiveConfig:
    """LiveConfig from a saved config dict and overrides; unknown keys are a UserError."""
    names = {f.name for f in dataclasses.fields(LiveConfig)}
    kw = {**(base or {}), **(overrides or {})}
    unknown = sorted(set(kw) - names)
    if unknown:
        raise UserError(f"live: unknown option(s) {', '.join(unknown)}")
    try:
        return LiveConfig(**kw)
    except TypeError as e:
        raise UserError(f"live: bad config: {e}") from None


def make_optimizer(model, cfg: LiveConfig) -> torch.optim.Optimizer:
    groups = model.param_groups(cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9)
    from bytelm.optim.enhanced_sgd import EnhancedSGD, QController
    return EnhancedSGD(groups, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay,
                       controller=QController(every=50, seed=cfg.seed))


def _new_stats() -> dict[str, Any]:
    return {"chunks": 0, "bytes": 0, "novel": 0, "repeated": 0, "scale_sum": 0.0, "replayed": 0,
            "updates": 0, "skipped_nonfinite": 0, "nats": 0.0, "targets": 0}


class LiveLearner:
    """Learns a model from a stream of chunks; see the module docstring.

    Args:
        model: a ByteLM (on its device).
        cfg: the LiveConfig.
        out_dir: run folder for checkpoints and metrics (None: nothing is written).
        source: the checkpoint the model came from (recorded).
    """

    def __init__(self, model, cfg: LiveConfig, out_dir=None, source: str = ""):
        if cfg.context == 0:
            cfg = dataclasses.replace(cfg, context=min(256, model.config.context))
        if cfg.context > model.config.context:
            raise UserError(f"live: context {cfg.context} exceeds the model context "
                            f"{model.config.context}")
        self.model, self.cfg, self.source = model, cfg, source
        self.device = next(model.parameters()).device
        self.memory = ContextMemory(cfg.capacity, cfg.half_life, cfg.min_scale, cfg.prune_below,
                                    cfg.sketch)
        self.replay = ReplayBuffer(cfg.replay_capacity, seed=cfg.seed) if cfg.replay > 0 else None
        self.replay_credit = 0.0
        self.optimizer = make_optimizer(model, cfg)
        self.step = 0  # chunks learned: the memory's clock
        self.bytes_consumed = 0  # stream bytes learned, where --resume continues
        self.totals = _new_stats()
        self.session = _new_stats()
        self.stream_name = ""
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self._stop = False
        self._updating = False
        self._torn = False

    @property
    def ckpt_dir(self) -> Path | None:
        return self.out_dir / "ckpt" / "last" if self.out_dir is not None else None

    # --- loading ------------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path, overrides: dict | None = None, out_dir=None,
                        device=None) -> "LiveLearner":
        """A learner from a trainer checkpoint (run dir, ckpt/last, ckpt/best: weights only) or
        a live checkpoint (weights, optimizer, memory, replay, counters; its saved config is the
        base that ``overrides`` change)."""
        from bytelm.train.checkpoint import load_model, resolve_checkpoint
        ckpt = resolve_checkpoint(path)
        live = read_live_state(ckpt)
        cfg = make_config(live["config"] if live else None, overrides)
        model = load_model(ckpt, device=device)
        learner = cls(model, cfg, out_dir=out_dir, source=str(ckpt))
        if live:
            learner._restore(ckpt, live)
        return learner

    def _restore(self, ckpt: Path, live: dict) -> None:
        from bytelm.train.checkpoint import OPTIMIZER, RNG
        where = str(ckpt)
        try:
            mem = json.loads((ckpt / MEMORY).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise UserError(f"corrupted live checkpoint {where}: cannot read {MEMORY} ({e})") from None
        memory = ContextMemory.from_dict(mem, where)
        if memory.sketch != self.cfg.sketch:
            raise UserError(f"the memory in {where} is keyed {'with' if memory.sketch else 'without'} "
                            "--sketch; pass the same setting (or start from a trainer checkpoint)")
        memory.half_life, memory.min_scale = self.cfg.half_life, self.cfg.min_scale
        memory.prune_below = self.cfg.prune_below
        memory.resize(self.cfg.capacity)
        self.memory = memory
        try:
            self.step = int(live["step"])
            self.bytes_consumed = int(live["bytes_consumed"])
            self.totals.update({k: type(self.totals[k])(v) for k, v in live["totals"].items()
                                if k in self.totals})
            self.stream_name = str(live.get("stream", ""))
            saved_opt = live["config"]["optimizer"]
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"corrupted live checkpoint {where}: {LIVE_STATE} ({e})") from None
        if saved_opt == self.cfg.optimizer and (ckpt / OPTIMIZER).is_file():
            try:
                osd = torch.load(ckpt / OPTIMIZER, map_location="cpu", weights_only=True)
                self.optimizer.load_state_dict(osd)
            except Exception as e:  # noqa: BLE001 - any damage is the same user-facing error
                raise UserError(f"corrupted live checkpoint {where}: {OPTIMIZER} "
                                f"({type(e).__name__})") from None
            # the learning rate and decay of this invocation win over the saved ones
            set_lr(self.optimizer, self.cfg.lr)
            for g in self.optimizer.param_groups:
                if g["weight_decay"]:
                    g["weight_decay"] = self.cfg.weight_decay
        else:
            log.warning("live: optimizer %s in the checkpoint, %s now: starting it fresh",
                        saved_opt, self.cfg.optimizer)
        if self.replay is not None and (ckpt / REPLAY).is_file() and live.get("replay"):
            self.replay.load(live["replay"], _read_tensors(ckpt / REPLAY, where), where)
            self.replay_credit = float(live.get("replay_credit", 0.0))
        if (ckpt / RNG).is_file():
            rng = _read_tensors(ckpt / RNG, where)
            if "cpu" not in rng:
                raise UserError(f"corrupted live checkpoint {where}: {RNG} has no 'cpu' state")
            torch.set_rng_state(rng["cpu"])

    def prefill_replay(self, data, n: int | None = None) -> int:
        """Seeds the replay reservoir with random chunks of ``data`` (a prepared corpus dir:
        its train split; a file, bytes or uint8 array)."""
        from bytelm.live.forgetting import as_bytes_array
        if self.replay is None:
            raise UserError("--replay-from needs --replay > 0")
        return self.replay.prefill(as_bytes_array(data, "train"), self.cfg.context + 1, n)

    # --- learning -----------------------------------------------------------------------------
    def learn_stream(self, f, skip: int = 0, dry_run: bool = False, name: str = "") -> dict:
        """``learn`` over the chunks of binary file object ``f`` after skipping ``skip`` bytes."""
        return self.learn(iter_chunks(f, self.cfg.context, skip), dry_run=dry_run, name=name)

    def learn(self, chunks: Iterable[bytes], dry_run: bool = False, name: str = "") -> dict:
        """Learns (or with ``dry_run`` only scores and counts) the chunks; stops at their end or on
        Ctrl-C, then writes the final checkpoint (not in a dry run). Returns the summary."""
        cfg = self.cfg
        self.session = _new_stats()
        self._stop = self._torn = False
        if name:
            self.stream_name = name
        interrupted = False
        batch: list[bytes] = []
        old_handler = self._install_sigint()
        t0 = time.perf_counter()
        try:
            for chunk in chunks:
                if len(chunk) < 2:
                    continue
                if len(chunk) > cfg.context + 1:
                    raise ValueError(f"chunk of {len(chunk)} bytes > context + 1")
                if batch and len(chunk) != len(batch[0]):
                    self._update(batch, dry_run)
                    batch = []
                batch.append(bytes(chunk))
                if len(batch) == cfg.batch_size:
                    self._update(batch, dry_run)
                    batch = []
                if self._stop:
                    interrupted = True
                    break
            else:
                if batch:
                    self._update(batch, dry_run)
                    batch = []
        except KeyboardInterrupt:
            interrupted = True
            if self._torn:
                # a second Ctrl-C inside an update: the weights may be half-updated, so the
                # last periodic checkpoint stays the newest
                log.warning("live: interrupted inside an update; no final checkpoint written")
                raise
        finally:
            restore_signals(old_handler)
        if interrupted and batch:
            log.info("live: stopped; %d chunk(s) of the unfinished batch were not learned", len(batch))
        if not dry_run and self.out_dir is not None:
            self.save()
        return self.summary(interrupted, dry_run, time.perf_counter() - t0)

    def _install_sigint(self) -> dict:
        """Ctrl-C, SIGTERM and SIGHUP (a scheduler, docker stop, a closed terminal) all stop the
        same way; returns the old handlers."""
        def handler(signum, frame):
            # inside an update: finish it and stop (weights never half-updated); a second
            # Ctrl-C, or one while waiting for input, stops at once
            if self._updating and not self._stop:
                self._stop = True
                log.warning("live: Ctrl-C: stopping after this update (again to stop now)")
            else:
                self._torn = self._updating
                raise KeyboardInterrupt
        return install_signals(handler, (signal.SIGINT, *TERMINATION_SIGNALS))

    def _chunk_losses(self, chunks: list[bytes]) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean next-byte cross-entropy of each chunk (n,), auxiliary loss) in one forward per
        distinct chunk length."""
        from bytelm.nn.loss import byte_cross_entropy
        from bytelm.precision import autocast_ctx
        by_len: dict[int, list[int]] = {}
        for i, c in enumerate(chunks):
            by_len.setdefault(len(c), []).append(i)
        losses: list[torch.Tensor | None] = [None] * len(chunks)
        aux = torch.zeros((), device=self.device)
        for n, idx in by_len.items():
            raw = bytearray(b"".join(chunks[i] for i in idx))
            xb = torch.frombuffer(raw, dtype=torch.uint8).view(len(idx), n).to(self.device).long()
            with autocast_ctx(self.device, "auto"):
                out = self.model(xb[:, :-1])
            nll = byte_cross_entropy(out.logits, xb[:, 1:], reduction="none")  # (B, n - 1)
            per = nll.float().mean(dim=1)
            for j, i in enumerate(idx):
                losses[i] = per[j]
            if out.aux_loss is not None and torch.is_tensor(out.aux_loss):
                aux = aux + out.aux_loss * len(idx) / len(chunks)
        return torch.stack(losses), aux

    def _update(self, batch: list[bytes], dry_run: bool) -> None:
        cfg = self.cfg
        self._updating = True
        try:
            scales, novel = [], 0
            for c in batch:
                s, new = self.memory.visit(self.memory.key(c[:-1]), self.step)
                self.step += 1
                if cfg.prune_every and self.step % cfg.prune_every == 0:
                    self.memory.prune(self.step)
                novel += new
                scales.append(s if cfg.importance else 1.0)
            replayed: list[bytes] = []
            if self.replay is not None and not dry_run:
                self.replay_credit += cfg.replay * len(batch)
                k = int(self.replay_credit)
                self.replay_credit -= k
                replayed = self.replay.sample(k)
            if dry_run:
                was = self.model.training
                self.model.eval()
                with torch.no_grad():
                    per, _ = self._chunk_losses(batch)
                self.model.train(was)
                skipped = 0
            else:
                per, skipped = self._train(batch, replayed, scales)
            if self.replay is not None and not dry_run:
                # after sampling, so a chunk is never replayed in its own update
                for c in batch:
                    if len(c) == cfg.context + 1:
                        self.replay.add(c)
            per_host = per.detach().float().cpu().tolist()
            n_targets = [len(c) - 1 for c in batch]
            upd = {"chunks": len(batch), "bytes": sum(n_targets), "novel": novel,
                   "repeated": len(batch) - novel, "scale_sum": sum(scales),
                   "replayed": len(replayed), "updates": 1, "skipped_nonfinite": skipped,
                   "nats": sum(v * n for v, n in zip(per_host, n_targets) if math.isfinite(v)),
                   "targets": sum(n for v, n in zip(per_host, n_targets) if math.isfinite(v))}
            for d in (self.session, self.totals):
                for k, v in upd.items():
                    d[k] += v
            self.bytes_consumed += sum(n_targets)
            if self.session["updates"] % cfg.log_every == 0:
                self._log_line(dry_run)
            if (not dry_run and cfg.ckpt_every and self.out_dir is not None
                    and self.totals["updates"] % cfg.ckpt_every == 0):
                self.save()
        finally:
            self._updating = False

    def _train(self, batch: list[bytes], replayed: list[bytes], scales: list[float]):
        """One optimizer step with per-chunk scales w (memory scales, 1 for replayed chunks):
        loss = sum_i (w_i / mean w) loss_i / n and the LR times mean w. For SGD that is exactly
        the gradient of sum_i w_i loss_i / n; for Adam, which normalises a uniform gradient
        scale away, it keeps the meaning "this update is mean-w times smaller".
        Returns (per-chunk losses of ``batch``, 1 if the step was skipped as non-finite)."""
        cfg = self.cfg
        self.model.train()
        per, aux = self._chunk_losses(batch + replayed)
        weights = scales + [1.0] * len(replayed)
        mean_w = sum(weights) / len(weights)
        w = torch.tensor([x / mean_w for x in weights], device=per.device, dtype=per.dtype)
        loss = (w * per).sum() / len(w) + aux
        if not torch.isfinite(loss):
            self.optimizer.zero_grad(set_to_none=True)
            log.warning("live: non-finite loss at chunk %d; update skipped", self.step)
            return per[:len(batch)], 1
        step = TrainStep(self.model, self.optimizer, StepConfig(grad_clip=cfg.grad_clip))
        try:
            step(cfg.lr * mean_w, lambda _: MicroLoss(loss=loss))  # the aux loss is in ``loss``
        finally:  # the optimizer's LR at rest is the configured one (checkpoints, resume)
            set_lr(self.optimizer, cfg.lr)
        return per[:len(batch)], 0

    # --- reporting and checkpoints ------------------------------------------------------------
    def summary(self, interrupted: bool = False, dry_run: bool = False,
                elapsed: float = 0.0) -> dict:
        s = self.session
        return {"chunks": s["chunks"], "bytes": s["bytes"], "novel": s["novel"],
                "repeated": s["repeated"], "updates": s["updates"],
                "mean_grad_scale": s["scale_sum"] / s["chunks"] if s["chunks"] else 0.0,
                "stream_bpb": s["nats"] / (s["targets"] * math.log(2)) if s["targets"] else None,
                "replayed": s["replayed"], "skipped_nonfinite": s["skipped_nonfinite"],
                "memory_size": len(self.memory), "evicted": self.memory.evicted,
                "pruned": self.memory.pruned, "step": self.step,
                "bytes_consumed": self.bytes_consumed, "interrupted": interrupted,
                "dry_run": dry_run, "elapsed_s": elapsed, "context": self.cfg.context,
                "checkpoint": str(self.ckpt_dir) if self.ckpt_dir and not dry_run else None}

    def _log_line(self, dry_run: bool) -> None:
        s = self.session
        rec = {"step": self.step, "updates": self.totals["updates"], "chunks": s["chunks"],
               "novel": s["novel"], "repeated": s["repeated"],
               "mean_grad_scale": s["scale_sum"] / max(1, s["chunks"]),
               "stream_bpb": s["nats"] / (max(1, s["targets"]) * math.log(2)),
               "replayed": s["replayed"], "memory_size": len(self.memory)}
        log.info("live%s: %d chunks (%d novel), mean grad scale %.3f, stream %.3f bpb, memory %d",
                 " (dry run)" if dry_run else "", rec["chunks"], rec["novel"],
                 rec["mean_grad_scale"], rec["stream_bpb"], rec["memory_size"])
        if self.out_dir is not None and not dry_run:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with open(self.out_dir / "live_metrics.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")

    def live_state(self) -> dict:
        return {"format": LIVE_FORMAT, "step": self.step, "bytes_consumed": self.bytes_consumed,
                "stream": self.stream_name, "source": self.source, "totals": dict(self.totals),
                "config": dataclasses.asdict(self.cfg), "replay_credit": self.replay_credit}

    def weights_finite(self) -> bool:
        return all(bool(torch.isfinite(p).all()) for p in self.model.parameters())

    def save(self) -> Path:
        """Writes OUT/ckpt/last atomically (model files, optimizer, memory, replay, RNG, state)."""
        from bytelm.train.checkpoint import OPTIMIZER, RNG, atomic_write_dir, write_model_files
        if self.ckpt_dir is None:
            raise UserError("live: no output folder to checkpoint into")
        if not self.weights_finite():
            raise RuntimeError(f"live: non-finite weights at chunk {self.step}; not saving them "
                               f"(the last good checkpoint is in {self.ckpt_dir})")
        state = self.live_state()

        def write(d: Path) -> None:
            write_model_files(self.model, d)
            torch.save(self.optimizer.state_dict(), d / OPTIMIZER)
            (d / MEMORY).write_text(json.dumps(self.memory.to_dict()) + "\n")
            if self.replay is not None:
                meta, tensors = self.replay.state()
                save_file(tensors, str(d / REPLAY))
                state["replay"] = meta
            save_file({"cpu": torch.get_rng_state()}, str(d / RNG))
            (d / LIVE_STATE).write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
        atomic_write_dir(self.ckpt_dir, write)
        return self.ckpt_dir


def read_live_state(ckpt: Path) -> dict | None:
    """The live_state.json of a live checkpoint, or None for any other checkpoint."""
    f = Path(ckpt) / LIVE_STATE
    if not f.is_file():
        return None
    try:
        d = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"corrupted live checkpoint {ckpt}: {LIVE_STATE} ({e})") from None
    if (not isinstance(d, dict) or d.get("format") != LIVE_FORMAT
            or not isinstance(d.get("config"), dict)):
        raise UserError(f"corrupted live checkpoint {ckpt}: {LIVE_STATE} is not a bytelm-live state")
    return d
