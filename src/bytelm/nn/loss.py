"""Next-byte cross-entropy, in fp32, normalised by the number of real (unmasked) bytes."""
import torch
import torch.nn.functional as F


def byte_cross_entropy(logits: torch.Tensor, targets: torch.Tensor,
                       mask: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy in nats.

    Args:
        logits: (B, T, V) scores; logits[:, i] predicts targets[:, i].
        targets: (B, T) byte ids.
        mask: optional (B, T) bool, True where the byte counts.
        reduction: "mean" (over counted bytes), "sum", or "none" ((B, T) nats).
    Returns:
        scalar tensor (or (B, T) for "none").
    """
    nll = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none")
    nll = nll.view(targets.shape)
    if reduction == "none":
        return nll
    if mask is not None:
        nll = nll * mask
        total = nll.sum()
        return total if reduction == "sum" else total / mask.sum().clamp_min(1)
    return nll.sum() if reduction == "sum" else nll.mean()
