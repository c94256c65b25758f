"""Causal sliding-window softmax attention, O(T*W): query t attends keys t - W < s <= t.

Layout (B, H, T, D), the layout of F.scaled_dot_product_attention, since it feeds attention code.
Implementations: "naive" (full masked softmax, reference), "chunk" = blocked (pure PyTorch,
any device), "triton" = flex (torch flex_attention, which generates Triton kernels, CUDA).
"""
import torch

from bytelm.ops.dispatch import resolve_impl
from bytelm.ops.swa.blocked import blocked_sliding_window_attention
from bytelm.ops.swa.flex import flex_sliding_window_attention
from bytelm.ops.swa.flex import is_available as _flex_available
from bytelm.ops.swa.naive import naive_sliding_window_attention

__all__ = ["sliding_window_attention", "naive_sliding_window_attention",
           "blocked_sliding_window_attention", "flex_sliding_window_attention", "select_impl"]

# the dispatcher's names: "chunk" is the pure-PyTorch form, "triton" the GPU one
_ALIASES = {"blocked": "chunk", "flex": "triton"}
_IMPLS = {"naive": naive_sliding_window_attention, "chunk": blocked_sliding_window_attention,
          "triton": flex_sliding_window_attention}


# auto picks flex_attention on CUDA inside a torch.compile'd model: it passed tests/ops -m gpu
# and benchmarks/gpu_ops_check.py on the H100 (benchmarks/results/mixer/gpu_ops_h100.json,
# gpu_tests/pytest_gpu_h100.log, 2026-11-25). Eager callers (evaluation of a training run's bare model,
# generation) get the blocked form: in a process that also trains a compiled model, flex's own
# compiled wrapper ran into dynamo's recompile limit and fell back to flex's slow eager path
# (docs/benchmarks.md, the curriculum runs).
AUTO_TRITON = True


def select_impl(impl: str, device) -> str:
    """The implementation ("naive", "chunk" = blocked or "triton" = flex) run on ``device``."""
    is_cuda = torch.device(device).type == "cuda"
    prefer = AUTO_TRITON and torch.compiler.is_compiling()
    return resolve_impl(_ALIASES.get(impl, impl), device,
                        triton_available=is_cuda and _flex_available(), prefer_triton=prefer)


def sliding_window_attention(q, k, v, window: int, impl: str = "auto"):
    """Causal sliding-window attention; scale 1/sqrt(D).

    Args:
        q, k, v: (B, H, T, D), the SDPA layout (not the (B, T, H, D) of the recurrent ops).
        window: W >= 1, keys per query including itself (W >= T is plain causal attention).
        impl: "auto" | "naive" | "chunk" (alias "blocked") | "triton" (alias "flex").
    Returns:
        o (B, H, T, D) in q's dtype.
    """
    if int(window) < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    return _IMPLS[select_impl(impl, q.device)](q, k, v, int(window))
