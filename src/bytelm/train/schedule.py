"""Learning-rate schedules as a pure function of the step (so resume needs only the step)."""
import math


def lr_factor(step: int, total: int, warmup: int, kind: str = "cosine",
              min_ratio: float = 0.1, decay_frac: float = 0.2) -> float:
    """Multiplier of the peak lr at optimizer step ``step`` (0-based) of ``total``.

    Linear warmup over ``warmup`` steps (step 0 gets 1/warmup, not 0), then
      cosine: min_ratio + (1 - min_ratio) * (1 + cos(pi * p)) / 2, p the post-warmup progress;
      wsd: 1 until the last ``decay_frac`` of the run, then linear down to min_ratio;
      constant: 1.
    """
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    span = max(1, total - warmup)
    p = min(1.0, (step - warmup) / span)
    if kind == "cosine":
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p))
    if kind == "wsd":
        start = 1.0 - decay_frac
        if p < start:
            return 1.0
        return 1.0 - (1 - min_ratio) * (p - start) / decay_frac
    raise ValueError(f"unknown schedule {kind!r}")


def effective_warmup(warmup: int, total: int, max_frac: float) -> int:
    """``warmup`` steps capped at ``max_frac`` of a run of ``total`` steps (0: no cap), so a short
    run (60 steps with the default 200) still reaches its peak learning rate."""
    if max_frac <= 0:
        return warmup
    return min(warmup, max(1, int(max_frac * total)) if warmup else 0)
