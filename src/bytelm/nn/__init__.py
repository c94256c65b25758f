"""Blocks shared by two or more model families."""
from bytelm.nn.attention import CausalSelfAttention, KVCache, sdpa
from bytelm.nn.loss import byte_cross_entropy
from bytelm.nn.mlp import SwiGLU
from bytelm.nn.norm import RMSNorm
from bytelm.nn.rope import Rotary, apply_rotary

__all__ = ["CausalSelfAttention", "KVCache", "RMSNorm", "Rotary", "SwiGLU", "apply_rotary",
           "byte_cross_entropy", "sdpa"]
