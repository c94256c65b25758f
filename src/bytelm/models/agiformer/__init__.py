"""AGIFORMER family: presets agiformer-tiny, agiformer-31m, agiformer-129m."""
from bytelm.models.agiformer.model import AgiformerConfig, AgiformerLM
from bytelm.registry import register


def agiformer_tiny() -> AgiformerConfig:
    """Seconds-scale CPU model for tests: width 64, 2 layers, window 8 patches, context 128."""
    return AgiformerConfig(d_model=64, n_layers=2, n_heads=4, window=8, context=128, d_decoder=64,
                           think_steps=3)


def agiformer_31m() -> AgiformerConfig:
    """d_model 512, 6 layers, 8 heads, window 128 patches, 3 thinking steps, 1024-byte context."""
    return AgiformerConfig(d_model=512, n_layers=6, n_heads=8, window=128, think_steps=3,
                           context=1024)


def agiformer_129m() -> AgiformerConfig:
    """d_model 768, 12 layers, 12 heads, window 256 patches, lambda_min 0.995 (Phase 8)."""
    return AgiformerConfig(d_model=768, n_layers=12, n_heads=12, window=256, think_steps=3,
                           lambda_min=0.995, context=1024)


register("agiformer", AgiformerConfig, AgiformerLM, {
    "agiformer-tiny": agiformer_tiny,
    "agiformer-31m": agiformer_31m,
    "agiformer-129m": agiformer_129m,
})

__all__ = ["AgiformerConfig", "AgiformerLM"]
