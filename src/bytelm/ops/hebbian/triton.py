"""GPU Hebbian memory through flash-linear-attention's ``chunk_gla`` (Triton kernels).

GLA has a per-key-channel log decay g (B, T, H, K); our scalar decay per head is the special
case g[..., None].expand(K). fla is imported lazily so the package works without it.
Tested against fla-core 0.6.0, whose signature is
``chunk_gla(q, k, v, g, scale, initial_state, output_final_state, state_v_first, cu_seqlens,
cu_seqlens_cpu)`` with q, k, g (B, T, H, K), v (B, T, H, V), state (N, H, K, V) fp32.
"""
import functools
import math
import os
import sys

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
    if os.environ.get("BYTELM_FLA_AUTOTUNE", "0") != "1":
        pin_fla_configs()
    return True


def _config_preference(config) -> tuple:
    """Sort key of a triton.Config: 4 warps, 2 stages, tiles of 64 first (a safe Hopper choice)."""
    tiles = sum(abs(math.log2(v / 64)) for k, v in config.kwargs.items()
                if k in ("BK", "BV", "BT", "BS", "BC") and isinstance(v, int) and v > 0)
    stages = config.num_stages if config.num_stages >= 2 else 9
    return (abs(config.num_warps - 4), stages, tiles, str(config.kwargs))


def pin_fla_configs() -> int:
    """Make every autotuned fla kernel run one fixed config instead of benchmarking all.

    fla-core 0.6.0 autotunes each kernel over 4-48 configs, compiling every one: the first
    chunk_gla forward+backward took more than 8 minutes on the H100 (2026-11-25). Here each
    Autotuner keeps its own pruning (which drops tiles unsafe for the shape) and then takes the
    first survivor by `_config_preference`, so a kernel compiles once per shape. Set
    BYTELM_FLA_AUTOTUNE=1 to let fla autotune instead. Returns the number of kernels pinned.
    """
    from triton.runtime.autotuner import Autotuner

    pinned = 0
    for name, module in list(sys.modules.items()):
        if not name.startswith("fla.") or module is None:
            continue
        for obj in list(vars(module).values()):
            for _ in range(4):  # unwrap triton.heuristics / other wrappers around the autotuner
                if isinstance(obj, Autotuner) or not hasattr(obj, "fn"):
                    break
                obj = obj.fn
            if not isinstance(obj, Autotuner) or getattr(obj, "_bytelm_pinned", False):
                continue
            obj.early_config_prune = _pinning_prune(obj.early_config_prune)
            obj._bytelm_pinned = True
            pinned += 1
    return pinned


def _pinning_prune(original):
    def prune(configs, nargs, **kwargs):
        survivors = original(configs, nargs, **kwargs) if original is not None else configs
        return [min(survivors, key=_config_preference)]
    return prune


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

    is_available()  # pins fla's kernel configs once (see pin_fla_configs)
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
