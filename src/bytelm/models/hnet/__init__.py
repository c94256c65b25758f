"""Hierarchical byte model with learned dynamic chunking ("hnet"), presets hnet-*."""
from bytelm.models.hnet.model import HNetConfig, HNetLM
from bytelm.registry import register


def hnet_tiny() -> HNetConfig:
    """A few-second CPU model for tests: 1 + 1 byte blocks at width 32, a 2-block main network
    at width 64 over chunks of ~4 bytes, context 128."""
    return HNetConfig(d_byte=32, byte_heads=2, enc_layers=1, dec_layers=1, d_main=64,
                      main_layers=2, main_heads=4, context=128)


def hnet_30m() -> HNetConfig:
    """Sized against transformer-30m at equal time: 2 + 2 byte blocks at width 256 and a
    9-block main network at width 640 over learned chunks of ~4 bytes (320 slots per 1K bytes),
    context 1024; the byte stages at twice the learning rate (as H-Net; docs/hnet.md's CPU
    ablation)."""
    return HNetConfig(d_byte=256, byte_heads=4, enc_layers=2, dec_layers=2, d_main=640,
                      main_layers=9, main_heads=10, context=1024, byte_lr_mult=2.0)


register("hnet", HNetConfig, HNetLM, {
    "hnet-tiny": hnet_tiny,
    "hnet-30m": hnet_30m,
})

__all__ = ["HNetConfig", "HNetLM"]
