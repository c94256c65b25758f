"""The closure call every optimizer's ``step`` starts with (torch.optim's convention)."""
import torch


def call_closure(closure):
    """``closure()`` with gradients enabled (``step`` runs under no_grad), or None without one."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()
