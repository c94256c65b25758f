"""Hebbian fast-weight memory: gated linear attention with a scalar log decay per head and step.

S_t = exp(g_t) S_{t-1} + k_t^T v_t,  o_t = scale * q_t S_t.  See README.md for the derivation.
"""
import torch

from bytelm.ops.dispatch import resolve_impl
from bytelm.ops.hebbian.chunk import chunk_hebbian
from bytelm.ops.hebbian.naive import naive_hebbian
from bytelm.ops.hebbian.op import hebbian_op
from bytelm.ops.hebbian.triton import is_available as _triton_available
from bytelm.ops.hebbian.triton import triton_hebbian

__all__ = ["hebbian", "hebbian_step", "naive_hebbian", "chunk_hebbian", "triton_hebbian",
           "hebbian_op", "select_impl"]

_IMPLS = {"naive": naive_hebbian, "chunk": chunk_hebbian, "triton": triton_hebbian}


# auto picks fla's chunk_gla on CUDA: with pinned configs (triton.pin_fla_configs) it passed
# tests/ops -m gpu and benchmarks/gpu_ops_check.py on the H100 (o, state and every grad within
# 2.4e-3 relative RMS of the fp32 reference; benchmarks/results/mixer/gpu_ops_h100.json, 2026-11-25).
AUTO_TRITON = True


def select_impl(impl: str, device) -> str:
    """The implementation ``hebbian(..., impl=impl)`` runs for inputs on ``device``.

    Traceable by torch.compile without a graph break: the availability probe is a constant
    there (``triton.is_available``), the env override is read as Dynamo reads os.environ."""
    is_cuda = torch.device(device).type == "cuda"
    return resolve_impl(impl, device, triton_available=is_cuda and _triton_available(),
                        prefer_triton=AUTO_TRITON)


def hebbian(q, k, v, g, scale: float = 1.0, initial_state=None, output_final_state: bool = False,
            impl: str = "auto", chunk_size: int = 64):
    """Decaying Hebbian memory over a whole sequence.

    Args:
        q, k: (B, T, H, K) queries and keys (any float dtype; accumulated in fp32).
        v: (B, T, H, V) values.
        g: (B, T, H) log decay per step, g <= 0 (0 = plain causal linear attention).
        scale: multiplies q.
        initial_state: (B, H, K, V) fp32 memory before step 0, or None (zeros).
        output_final_state: also return the memory after the last step.
        impl: "auto" | "naive" | "chunk" | "triton" (see bytelm.ops.dispatch).
        chunk_size: chunk length of the chunked form.
    Returns:
        o (B, T, H, V) in v's dtype, final_state (B, H, K, V) fp32 or None.
    """
    fn = _IMPLS[select_impl(impl, q.device)]
    return fn(q, k, v, g, scale=scale, initial_state=initial_state,
              output_final_state=output_final_state, chunk_size=chunk_size)


def hebbian_step(q, k, v, g, state=None, scale: float = 1.0):
    """One generation step: S = exp(g) S + k^T v;  o = scale * q S.

    Args:
        q, k: (B, H, K).
        v: (B, H, V).
        g: (B, H) log decay, <= 0.
        state: (B, H, K, V) fp32, or None (zeros).
        scale: multiplies q.
    Returns:
        o (B, H, V) in v's dtype, new_state (B, H, K, V) fp32.
    """
    with torch.autocast(device_type=q.device.type, enabled=False):
        qf, kf, vf, gf = (x.float() for x in (q, k, v, g))
        S = kf[..., :, None] * vf[..., None, :]
        if state is not None:
            S = gf[..., None, None].exp() * state.float() + S
        o = scale * torch.einsum("bhk,bhkv->bhv", qf, S)
    return o.to(v.dtype), S
