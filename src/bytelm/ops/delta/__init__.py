"""Gated delta rule memory (Gated DeltaNet): per head and step,

S_t = exp(g_t) (I - beta_t k_t^T k_t) S_{t-1} + beta_t k_t^T v_t,  o_t = scale * q_t S_t,

with S in (K, V) layout (the paper's S_{t-1}(I - beta k k^T) with S stored as (V, K)). Unlike the
Hebbian memory it first removes what S holds for k_t, then writes v_t: a key re-bound to a new value
replaces the old one instead of adding to it. See README.md for the chunked form.
"""
import torch

from bytelm.ops.delta.chunk import chunk_delta
from bytelm.ops.delta.naive import naive_delta
from bytelm.ops.dispatch import resolve_impl

__all__ = ["delta", "delta_step", "naive_delta", "chunk_delta", "select_impl"]

_IMPLS = {"naive": naive_delta, "chunk": chunk_delta}


def select_impl(impl: str, device) -> str:
    """The implementation ``delta(..., impl=impl)`` runs for inputs on ``device``.

    There is no GPU kernel yet (fla's chunk_gated_delta_rule would fit, see README.md): auto is
    "chunk" everywhere and "triton" is an error.
    """
    return resolve_impl(impl, device, triton_available=False, prefer_triton=False)


def delta(q, k, v, g, beta, scale: float = 1.0, initial_state=None,
          output_final_state: bool = False, impl: str = "auto", chunk_size: int = 64):
    """Gated delta rule over a whole sequence.

    Args:
        q, k: (B, T, H, K) queries and keys (any float dtype; accumulated in fp32); k should be
            L2-normalised.
        v: (B, T, H, V) values.
        g: (B, T, H) log decay per step, g <= 0 (0 = plain delta rule).
        beta: (B, T, H) write strength in (0, 1).
        scale: multiplies q.
        initial_state: (B, H, K, V) fp32 memory before step 0, or None (zeros).
        output_final_state: also return the memory after the last step.
        impl: "auto" | "naive" | "chunk" (see bytelm.ops.dispatch).
        chunk_size: chunk length of the chunked form.
    Returns:
        o (B, T, H, V) in v's dtype, final_state (B, H, K, V) fp32 or None.
    """
    fn = _IMPLS[select_impl(impl, q.device)]
    return fn(q, k, v, g, beta, scale=scale, initial_state=initial_state,
              output_final_state=output_final_state, chunk_size=chunk_size)


def delta_step(q, k, v, g, beta, state=None, scale: float = 1.0):
    """One generation step: S = exp(g) S;  S += beta k^T (v - k S);  o = scale * q S.

    Args:
        q, k: (B, H, K).
        v: (B, H, V).
        g: (B, H) log decay, <= 0.
        beta: (B, H) write strength in (0, 1).
        state: (B, H, K, V) fp32, or None (zeros).
        scale: multiplies q.
    Returns:
        o (B, H, V) in v's dtype, new_state (B, H, K, V) fp32.
    """
    with torch.autocast(device_type=q.device.type, enabled=False):
        qf, kf, vf, gf, bf = (x.float() for x in (q, k, v, g, beta))
        if state is None:
            u = bf[..., None] * vf
            S = kf[..., :, None] * u[..., None, :]
        else:
            S = gf[..., None, None].exp() * state.float()
            u = bf[..., None] * (vf - torch.einsum("bhk,bhkv->bhv", kf, S))
            S = S + kf[..., :, None] * u[..., None, :]
        o = scale * torch.einsum("bhk,bhkv->bhv", qf, S)
    return o.to(v.dtype), S
