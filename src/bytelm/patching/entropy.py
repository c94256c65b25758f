"""Entropy-model patching (Byte Latent Transformer style): a patch ends after byte t when a small
causal byte LM finds the next byte hard to predict.

ends[t] is a candidate when H(p(x_{t+1} | x_{<=t})) > threshold (bits): the LM's logits at t
see bytes <= t only, so the rule is causal and the next patch starts at the hard byte. Any
bytelm model works as the LM (e.g. a ``transformer-tiny`` trained with ``bytelm train``).
"""
import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bytelm.errors import UserError
from bytelm.patching.base import Patcher, PatcherConfig, as_byte_batch, register_patcher
from bytelm.patching.constrain import constrain_ends, size_limits
from bytelm.patching.utf8 import char_end_mask

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class EntropyModelConfig(PatcherConfig):
    """Next-byte entropy boundaries within the size limits."""

    threshold: float = 2.0
    """a candidate end at t when the LM's next-byte entropy at t exceeds this many bits
    (``fit_threshold`` picks one for a target mean patch size)."""
    path: str = ""
    """checkpoint of the LM, loaded with ``bytelm.load`` (unused when a model is passed)."""
    stride: int = 0
    """inputs longer than the LM's context are scored in windows of the context starting every
    stride bytes; each window scores its last stride bytes (0: half the context)."""
    batch_size: int = 16
    """windows per LM forward pass."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not math.isfinite(self.threshold):
            raise UserError(f"threshold must be a finite number, got {self.threshold}")
        if self.stride < 0:
            raise UserError(f"stride must be >= 0 (0: half the context), got {self.stride}")
        if self.batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {self.batch_size}")


@torch.no_grad()
def next_byte_entropy(model, x: torch.Tensor, stride: int = 0, batch_size: int = 16) -> torch.Tensor:
    """Entropy of the LM's next-byte distribution at every position.

    Inputs of T <= context bytes are one window. Longer ones are cut into windows of C = context
    bytes starting at 0, S, 2S, ... (right-padded with zeros, harmless for a causal model);
    window 0 scores bytes 0..C-1 and window k >= 1 its last S bytes, so every byte from C on is
    scored with at least C - S bytes of context, and which window scores byte t depends on t
    alone (the result stays causal). The model runs in eval mode (restored afterwards).

    Args:
        model: a ByteLM.
        x: (B, T) bytes.
        stride: S in 1..C (0: C // 2).
        batch_size: windows per forward.
    Returns:
        (B, T) float32 bits, [b, t] = H(p(x_{t+1} | x_{<=t})) from the window scoring t.
    """
    x = as_byte_batch(x)
    B, T = x.shape
    C = model.config.context
    S = stride or max(1, C // 2)
    if not 1 <= S <= C:
        raise UserError(f"stride must be in 1..{C} (the model's context), got {S}")
    device = next(model.parameters()).device
    if T <= C:
        K, windows = 1, x.to(device)
    else:
        K = 1 + -(-(T - C) // S)
        padded = F.pad(x, (0, (K - 1) * S + C - T)).to(device)
        windows = padded.unfold(1, C, S).reshape(B * K, C)
    was_training = model.training
    model.eval()
    try:
        h = []
        for i in range(0, windows.shape[0], batch_size):
            logp = model(windows[i:i + batch_size]).logits.float().log_softmax(-1)
            h.append(-(logp.exp() * logp).sum(-1) / math.log(2))
    finally:
        model.train(was_training)
    h = torch.cat(h).reshape(B, K, -1)
    if K > 1:
        h = torch.cat([h[:, 0], h[:, 1:, C - S:].reshape(B, -1)], 1)
    return h.reshape(B, -1)[:, :T].to(x.device)


@register_patcher
class EntropyModelPatcher(Patcher):
    """Candidate end at t iff the LM's next-byte entropy at t > threshold.

    Args:
        config: an EntropyModelConfig (or pass its fields as keywords).
        model: the LM; if None, loaded from ``config.path`` with ``bytelm.load``. It is kept as
            a plain attribute (not a submodule) and never trained here. An LM the patcher
            loaded itself follows the data: it moves to the device of the bytes it scores (a
            BSFIN moved to the GPU does not move its patcher's LM, which would otherwise run on
            the CPU every step); a model passed in stays where the caller put it.
    """

    name = "entropy-model"
    config_class = EntropyModelConfig
    config: EntropyModelConfig

    def __init__(self, config: EntropyModelConfig | None = None, *, model=None, **overrides):
        super().__init__(config, **overrides)
        self.owns_model = model is None
        if model is None:
            if not self.config.path:
                raise UserError("the entropy-model patcher needs a model (path=CHECKPOINT or model=)")
            from bytelm import load
            model = load(self.config.path)
        self.model = model
        C = model.config.context
        if self.config.stride > C:
            raise UserError(f"stride must be <= the model's context {C}, got {self.config.stride}")

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T) bytes -> (B, T) next-byte entropy in bits."""
        if self.owns_model and next(self.model.parameters()).device != x.device:
            self.model.to(x.device)
        return next_byte_entropy(self.model, x, self.config.stride, self.config.batch_size)

    def candidates(self, x: torch.Tensor) -> torch.Tensor:
        return self.scores(x) > self.config.threshold


def fit_threshold(patcher: EntropyModelPatcher, sample, target_size: float, iters: int = 24) -> float:
    """A threshold giving mean patch size ~ target_size on ``sample`` under the patcher's limits.

    Without size limits the (1 - 1/target_size) quantile of the entropies gives the target
    exactly (one end per target_size bytes); min/max sizes and the UTF-8 rule move it, so the
    quantile level is refined by bisection on the mean size actually produced (bytes / patches,
    the tail counted as a patch). The entropies are computed once.

    Args:
        patcher: the entropy-model patcher (its min/max/UTF-8 options are used).
        sample: (B, T) or (T,) bytes tensor, or a bytes object.
        target_size: wanted mean patch length in bytes, >= 1.
    Returns:
        the threshold (set it with ``patcher.config.threshold = ...``).
    """
    if isinstance(sample, (bytes, bytearray)):
        sample = torch.frombuffer(bytearray(sample), dtype=torch.uint8)
    x = as_byte_batch(sample)
    if x.numel() == 0:
        raise UserError("cannot fit a threshold on an empty sample")
    if not target_size >= 1:
        raise UserError(f"target patch size must be >= 1, got {target_size}")
    c = patcher.config
    ent = patcher.scores(x)
    soft, hard = size_limits(c.min_size, c.max_size, c.overflow, c.utf8)
    allowed = char_end_mask(x) if c.utf8 else None
    levels = ent.flatten().double().sort().values

    def theta_at(q: float) -> float:
        return levels[round(q * (len(levels) - 1))].item()

    def mean_size(theta: float) -> float:
        ends = constrain_ends(ent > theta, allowed, c.min_size, soft, hard)
        return x.numel() / (ends.sum().item() + (~ends[:, -1]).sum().item())

    # the mean size grows with the level; keep the level whose mean is closest to the target
    lo, hi = 0.0, 1.0
    q = min(max(1.0 - 1.0 / target_size, 0.0), 1.0)
    best = (float("inf"), theta_at(q))
    for _ in range(iters):
        theta = theta_at(q)
        m = mean_size(theta)
        best = min(best, (abs(m - target_size), theta))
        lo, hi = (q, hi) if m < target_size else (lo, q)
        q = (lo + hi) / 2
    if best[0] > 0.1 * target_size:
        log.warning("mean patch size %.2f is the closest to the target %.2f this sample allows",
                    mean_size(best[1]), target_size)
    return best[1]
