"""Optimizers."""
from bytelm.optim.build import build_optimizer

__all__ = ["build_optimizer"]
