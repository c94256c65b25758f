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


def hnet_59m() -> HNetConfig:
    """The best shape measured against transformer-30m at equal time (docs/hnet.md, ablation M):
    hnet-30m with byte stages at width 512 (1 encoder + 3 decoder blocks) and the main network
    at half the learning rate; 59.2 M parameters, 183.5 MFLOP per byte (0.91x transformer-30m)."""
    return HNetConfig(d_byte=512, byte_heads=8, enc_layers=1, dec_layers=3, d_main=640,
                      main_layers=9, main_heads=10, context=1024, byte_lr_mult=2.0,
                      main_lr_mult=0.5)


register("hnet", HNetConfig, HNetLM, {
    "hnet-tiny": hnet_tiny,
    "hnet-30m": hnet_30m,
    "hnet-59m": hnet_59m,
})

__all__ = ["HNetConfig", "HNetLM"]
