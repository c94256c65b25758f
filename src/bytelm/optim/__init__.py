"""Optimizers."""
from bytelm.optim.build import build_optimizer
from bytelm.optim.enhanced_sgd import EnhancedSGD, QController, build_enhanced_sgd
from bytelm.optim.feedback import FeedbackOptimizer

__all__ = ["EnhancedSGD", "FeedbackOptimizer", "QController", "build_enhanced_sgd",
           "build_optimizer"]
