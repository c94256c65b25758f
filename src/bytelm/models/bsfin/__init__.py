"""BSFIN family: presets bsfin-tiny, bsfin-35m."""
from bytelm.models.bsfin.model import BsfinConfig, BsfinLM
from bytelm.registry import register


def bsfin_tiny() -> BsfinConfig:
    """CPU test model: local 32, complex 32, 2 layers, context 128."""
    return BsfinConfig(d_local=32, d_model=32, n_layers=2, n_heads=4, d_memory=48,
                       hash_buckets=512, decoder_layers=2, context=128)


def bsfin_35m() -> BsfinConfig:
    """Near the README config: local 256, complex 512, 6 layers, 8 heads, memory 768, n-grams 3/4."""
    return BsfinConfig(d_local=256, d_model=512, n_layers=6, n_heads=8, d_memory=768,
                       ngrams=(3, 4), hash_buckets=8192, decoder_layers=4, context=1024)


register("bsfin", BsfinConfig, BsfinLM, {"bsfin-tiny": bsfin_tiny, "bsfin-35m": bsfin_35m})

__all__ = ["BsfinConfig", "BsfinLM"]
