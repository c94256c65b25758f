"""Transformer baseline family ("gpt"), presets transformer-*."""
from bytelm.models.gpt.model import GPT, GPTConfig
from bytelm.registry import register


def transformer_tiny() -> GPTConfig:
    """A few-second CPU model for tests: 2 layers, width 64, context 128."""
    return GPTConfig(d_model=64, n_layers=2, n_heads=4, context=128)


def transformer_mini() -> GPTConfig:
    """~0.8M parameters, context 256: sized for a few minutes of CPU training (the demo)."""
    return GPTConfig(d_model=128, n_layers=4, n_heads=4, context=256)


def transformer_small() -> GPTConfig:
    """~3.3M parameters, context 512."""
    return GPTConfig(d_model=256, n_layers=4, n_heads=4, context=512)


def transformer_30m() -> GPTConfig:
    """~29M parameters, context 1024: the baseline for agiformer-31m and bsfin-35m."""
    return GPTConfig(d_model=512, n_layers=9, n_heads=8, context=1024)


def transformer_129m() -> GPTConfig:
    """~128M parameters, context 1024: the baseline for agiformer-129m."""
    return GPTConfig(d_model=768, n_layers=18, n_heads=12, context=1024)


register("gpt", GPTConfig, GPT, {
    "transformer-tiny": transformer_tiny,
    "transformer-mini": transformer_mini,
    "transformer-small": transformer_small,
    "transformer-30m": transformer_30m,
    "transformer-129m": transformer_129m,
})

__all__ = ["GPT", "GPTConfig"]
