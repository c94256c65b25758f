"""Builds the optimizer named in ``OptimConfig`` over the model's weight-decay groups."""
import torch

from bytelm.config import OptimConfig


def build_optimizer(model, cfg: OptimConfig) -> torch.optim.Optimizer:
    """AdamW (fused on CUDA), Muon + AdamW, SGD with momentum, or EnhancedSGD; decay only on matrices
    (``model.param_groups``)."""
    from bytelm.io import unwrap
    groups = unwrap(model).param_groups(cfg.weight_decay)
    if cfg.name == "adamw":
        on_cuda = next(unwrap(model).parameters()).is_cuda
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps,
                                 fused=on_cuda or None)
    if cfg.name == "sgd":
        # decoupled weight decay is not SGD's default; the coupled L2 form is used here, as torch does
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    if cfg.name == "muon":
        from bytelm.optim.muon import build_muon
        return build_muon(unwrap(model), groups, cfg)
    if cfg.name == "enhanced_sgd":
        from bytelm.optim.enhanced_sgd import build_enhanced_sgd
        return build_enhanced_sgd(groups, cfg)
    raise ValueError(cfg.name)
