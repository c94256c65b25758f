"""GPU Hebbian memory through flash-linear-attention's ``chunk_gla`` (Triton kernels).

GLA has a per-key-channel log decay g (B, T, H, K); our scalar decay per head is the special
case g[..., None].expand(K). fla is imported lazily so the package works without it.
Tested against fla-core 0.6.0, whose signature is
``chunk_gla(q, k, v, g, scale, initial_state, output_final_state, state_v_first, cu_seqlens,
cu_seqlens_cpu)`` with q, k, g (B, T, H, K), v (B, T, H, V), state (N, H, K, V) fp32.
"""
import functools

import torch


@functools.lru_cache(maxsize=1)
def is_available() -> bool:
    """True when CUDA and fla's chunk_gla can be imported."""
    if not torch.cuda.is_available():
        return False
    try:
        from fla.ops.gla import chunk_gla  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure (missing fla, triton mismatch) means no
        return False
    return True


def _compute_dtype(*xs: torch.Tensor) -> torch.dtype:
    # autocast decides the matmul precision as it would for a matmul; else the widest input
    if torch.is_autocast_enabled("cuda"):
        return torch.get_autocast_dtype("cuda")
    dtype = xs[0].dtype
    for x in xs[1:]:
        dtype = torch.promote_types(dtype, x.dtype)
    return dtype


def triton_hebbian(q, k, v, g, scale: float = 1.0, initial_state=None,
                   output_final_state: bool = False, chunk_size: int = 64):
    """S_t = exp(g_t) S_{t-1} + k_t^T v_t;  o_t = scale * q_t S_t, with fla's chunk_gla.

    Args:
        q, k: (B, T, H, K) CUDA tensors.
        v: (B, T, H, V).
        g: (B, T, H) log decay, <= 0 (kept in fp32 for the kernel's cumulative sums).
        scale: multiplies q.
        initial_state: (B, H, K, V) or None (zeros).
        output_final_state: return S_T as well.
        chunk_size: unused (fla picks its own, 64).
    Returns:
        o (B, T, H, V) in v's dtype, final_state (B, H, K, V) fp32 or None.
    """
    from fla.ops.gla import chunk_gla

    dtype = _compute_dtype(q, k, v)
    K = q.shape[-1]
    with torch.autocast(device_type="cuda", enabled=False):
        g_BTHK = g.float()[..., None].expand(*g.shape, K)
        h0 = None if initial_state is None else initial_state.float()
        o, final_state = chunk_gla(
            q.to(dtype), k.to(dtype), v.to(dtype), g_BTHK,
            scale=float(scale), initial_state=h0, output_final_state=output_final_state,
        )
    return o.to(v.dtype), (final_state.float() if output_final_state else None)
