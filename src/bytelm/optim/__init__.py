"""Optimizers."""
from bytelm.optim.build import build_optimizer
from bytelm.optim.enhanced_sgd import EnhancedSGD, QController, build_enhanced_sgd

__all__ = ["EnhancedSGD", "QController", "build_enhanced_sgd", "build_optimizer"]
