"""The one way an optimizer hears about the run it trains: ``FeedbackOptimizer``.

Most optimizers (AdamW, SGD, Muon + AdamW) need nothing but gradients and the learning rate
written into their param groups. An optimizer that also steers itself from the run's loss and
gradient norm (``EnhancedSGD``'s Q-controller) subclasses ``FeedbackOptimizer`` next to
``torch.optim.Optimizer``; the shared training step (``bytelm.train.step``) then calls
``observe`` after every update, and the trainer logs ``log_fields`` and ``drain_decisions``.
Callers ask through the functions below, never with ``hasattr``: an optimizer is either a
``FeedbackOptimizer`` (and has all three methods) or it is not.
"""
import abc
from typing import Any

import torch


class FeedbackOptimizer(abc.ABC):
    """Mixin for a ``torch.optim.Optimizer`` that observes the training run.

    ``class MyOpt(torch.optim.Optimizer, FeedbackOptimizer)``: ``observe`` is required,
    ``log_fields`` and ``drain_decisions`` default to nothing.
    """

    @abc.abstractmethod
    def observe(self, loss: torch.Tensor, grad_norm: torch.Tensor) -> bool:
        """One finished update: ``loss`` () the step's mean training loss (all-reduced over
        ranks), ``grad_norm`` () the global gradient norm BEFORE clipping; both device tensors,
        read without a host sync where possible. Returns whether the optimizer changed its
        settings (e.g. a controller decided) at this step."""

    def log_fields(self) -> dict[str, float]:
        """Host-side numbers for the trainer's metrics line (no device sync)."""
        return {}

    def drain_decisions(self) -> list[dict[str, Any]]:
        """Decisions made since the last call, each a metrics record (``state_bins``: a dict)."""
        return []


def wants_feedback(optimizer) -> bool:
    """Whether ``optimizer`` is a ``FeedbackOptimizer`` (the training step must call observe)."""
    return isinstance(optimizer, FeedbackOptimizer)


def log_fields(optimizer) -> dict[str, float]:
    """``optimizer.log_fields()`` of a ``FeedbackOptimizer``; {} for any other."""
    return optimizer.log_fields() if wants_feedback(optimizer) else {}


def drain_decisions(optimizer) -> list[dict[str, Any]]:
    """``optimizer.drain_decisions()`` of a ``FeedbackOptimizer``; [] for any other."""
    return optimizer.drain_decisions() if wants_feedback(optimizer) else []
