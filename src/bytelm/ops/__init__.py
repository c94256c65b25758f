"""Kernels with a reference (naive), a pure-PyTorch (chunk) and a GPU (triton) implementation.

Each op lives in its own subpackage; ``dispatch.resolve_impl`` picks the implementation.
"""
from bytelm.ops.dispatch import IMPLS, resolve_impl
from bytelm.ops.hebbian import hebbian, hebbian_step
from bytelm.ops.swa import sliding_window_attention

__all__ = ["IMPLS", "resolve_impl", "hebbian", "hebbian_step", "sliding_window_attention"]
