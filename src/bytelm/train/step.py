"""One optimizer step: the only training step in bytelm.

The trainer (``bytelm.train.loop``), recall training (``bytelm.experiments.recall``), the BPE baseline
(``bytelm.experiments.bpe_baseline``), live learning (``bytelm.live.learner``), ``bytelm overfit`` and the
training benchmark (``bytelm.bench.train``) all update weights through ``TrainStep``:

1. the step's learning rate into every param group: ``lr * group.get("lr_mult", 1)`` (the
   per-stage multipliers of ``model.param_groups``);
2. for each of ``grad_accum`` micro-batches: its loss (a ``MicroLoss``; ``lm_loss`` is the
   next-byte loss of a batch, forward under autocast), then backward of
   ``(loss + aux) / grad_accum`` (DDP all-reduces gradients on the last micro-batch only);
3. the global gradient norm (before clipping), clipped to ``grad_clip`` (<= 0: not clipped);
4. optionally (``skip_nonfinite``) no update when the loss or the norm is NaN/Inf;
5. ``optimizer.step()``; a ``bytelm.optim.FeedbackOptimizer`` then observes the mean loss
   (reduced over ranks by ``reduce``) and the pre-clip norm; gradients are set to None.

No host sync unless ``skip_nonfinite``: the loss and norm come back as device tensors.
The LR schedule, data order, non-finite policy and logging stay with the caller.
"""
import contextlib
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Callable

import torch

from bytelm.nn.loss import byte_cross_entropy
from bytelm.optim.feedback import wants_feedback
from bytelm.precision import autocast_ctx


@dataclass(kw_only=True)
class StepConfig:
    precision: str = "auto"
    """autocast of ``TrainStep.forward``: "auto" (bf16 on CUDA), "bf16" or "fp32"."""
    grad_clip: float = 0.0
    """max global gradient norm; <= 0: no clipping (the norm is still measured)."""
    grad_accum: int = 1
    """micro-batches whose gradients add up to one update."""
    skip_nonfinite: bool = False
    """no optimizer step (and no observe) when the loss or gradient norm is NaN/Inf; costs one
    host sync per step."""
    cuda_graphs: bool = False
    """the forward is a CUDA-graph replay (torch.compile mode reduce-overhead): every forward
    starts a new iteration (``torch.compiler.cudagraph_mark_step_begin``)."""

    def __post_init__(self):
        if self.grad_accum < 1:
            raise ValueError(f"grad_accum must be >= 1, got {self.grad_accum}")


@dataclass
class MicroLoss:
    """The loss of one micro-batch."""
    loss: torch.Tensor
    """() the loss that is logged, averaged over micro-batches and observed (with autograd)."""
    aux: torch.Tensor | float = 0.0
    """() added to ``loss`` for the gradient only (e.g. ACT ponder cost, H-Net ratio loss)."""
    stats: dict = field(default_factory=dict)
    """model diagnostics (``ModelOutput.stats``); the last micro-batch's are returned."""


@dataclass
class StepResult:
    loss: torch.Tensor
    """() mean ``MicroLoss.loss`` over the micro-batches, detached, on the device."""
    grad_norm: torch.Tensor
    """() global gradient norm before clipping (a plain tensor also under FSDP), on the device."""
    stats: dict
    """{name: detached tensor copy, int or float} of the last micro-batch's ``stats``."""
    skipped: bool = False
    """True when ``skip_nonfinite`` withheld the update."""


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Every param group's lr = ``lr * group.get("lr_mult", 1.0)``."""
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_mult", 1.0)


MicroFn = Callable[[int], MicroLoss]
"""micro-batch index (0 .. grad_accum - 1) -> its MicroLoss, called in order, once each."""


class TrainStep:
    """One optimizer step of ``model`` with ``optimizer``; call ``step(lr, micro)``.

    Args:
        model: the trained module: its parameters' gradients are clipped (under FSDP the
            sharded module itself).
        optimizer: any ``torch.optim.Optimizer``; a ``FeedbackOptimizer`` also observes.
        cfg: the StepConfig.
        forward: what runs the forward in ``forward``/``lm_loss``: ``model`` unless given (e.g.
            ``torch.compile(DDP(model))``).
        no_sync: a context manager factory that suspends the gradient all-reduce (DDP's
            ``no_sync``), entered for every micro-batch but the last; None: no such thing.
        reduce: the mean over ranks of a () tensor, for the loss a FeedbackOptimizer observes
            (every rank's controller must see the same loss); None: identity.
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 cfg: StepConfig | None = None, *, forward: Callable | None = None,
                 no_sync: Callable[[], AbstractContextManager] | None = None,
                 reduce: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.model, self.optimizer = model, optimizer
        self.cfg = cfg or StepConfig()
        self.fwd = forward if forward is not None else model
        self.no_sync, self.reduce = no_sync, reduce

    def forward(self, x: torch.Tensor):
        """``forward(x)`` under the configured autocast. x: (B, T) byte ids -> ModelOutput with
        logits (B, T, V)."""
        if self.cfg.cuda_graphs:  # a new iteration: earlier replays' outputs may be overwritten
            torch.compiler.cudagraph_mark_step_begin()
        with autocast_ctx(x.device, self.cfg.precision):
            return self.fwd(x)

    def lm_loss(self, batch: torch.Tensor, mask: torch.Tensor | None = None) -> MicroLoss:
        """Next-byte loss of ``batch`` (B, T + 1) ids: inputs batch[:, :-1], targets batch[:, 1:];
        mean nats over the targets (where ``mask`` (B, T) is True, if given), the model's aux
        loss and stats. The loss is computed outside autocast (fp32 logits)."""
        out = self.forward(batch[:, :-1])
        loss = byte_cross_entropy(out.logits, batch[:, 1:].long(), mask=mask)
        return MicroLoss(loss=loss, aux=out.aux_loss, stats=out.stats)

    def step(self, lr: float, micro: MicroFn | torch.Tensor) -> StepResult:
        """One update at learning rate ``lr`` (times each group's lr_mult).

        Args:
            lr: this step's base learning rate (the caller's schedule).
            micro: a ``MicroFn``, or a (B, T + 1) batch of byte ids split into ``grad_accum``
                equal micro-batches along B (B divisible by grad_accum), each scored by
                ``lm_loss``.
        Returns:
            StepResult (device tensors; no host sync unless cfg.skip_nonfinite).
        """
        cfg, accum = self.cfg, self.cfg.grad_accum
        if torch.is_tensor(micro):
            micro = self._split(micro)
        set_lr(self.optimizer, lr)
        loss_sum, last = None, None
        for i in range(accum):
            # gradients are all-reduced only on the last micro-batch
            sync = (self.no_sync() if i < accum - 1 and self.no_sync is not None
                    else contextlib.nullcontext())
            with sync:
                last = micro(i)
                total = last.loss + last.aux
                (total / accum if accum > 1 else total).backward()
            loss = last.loss.detach()
            loss_sum = loss if loss_sum is None else loss_sum + loss
        mean_loss = loss_sum / accum if accum > 1 else loss_sum
        # copied: a CUDA-graph replay owns its outputs only until the next one
        stats = {k: v.detach().clone() if torch.is_tensor(v) else v for k, v in last.stats.items()
                 if torch.is_tensor(v) or isinstance(v, (int, float))}
        params = [p for p in self.model.parameters() if p.grad is not None]
        clip = cfg.grad_clip if cfg.grad_clip > 0 else float("inf")
        gnorm = torch.nn.utils.clip_grad_norm_(params, clip)
        if hasattr(gnorm, "full_tensor"):  # FSDP2: a DTensor; a plain tensor for logging
            gnorm = gnorm.full_tensor()
        if cfg.skip_nonfinite and not bool(torch.isfinite(mean_loss) & torch.isfinite(gnorm)):
            self.optimizer.zero_grad(set_to_none=True)
            return StepResult(loss=mean_loss, grad_norm=gnorm, stats=stats, skipped=True)
        self.optimizer.step()
        if wants_feedback(self.optimizer):
            observed = mean_loss if self.reduce is None else self.reduce(mean_loss)
            self.optimizer.observe(loss=observed, grad_norm=gnorm)
        self.optimizer.zero_grad(set_to_none=True)
        return StepResult(loss=mean_loss, grad_norm=gnorm, stats=stats)

    __call__ = step

    def _split(self, batch: torch.Tensor) -> MicroFn:
        """A MicroFn over ``grad_accum`` equal slices of ``batch`` (B, T + 1) along B."""
        accum = self.cfg.grad_accum
        if batch.shape[0] % accum:
            raise ValueError(f"a batch of {batch.shape[0]} rows does not split into "
                             f"grad_accum={accum} equal micro-batches")
        parts = batch.split(batch.shape[0] // accum)
        return lambda i: self.lm_loss(parts[i])
