"""GPU Hebbian memory through flash-linear-attention's ``chunk_gla`` (Triton kernels).

GLA has a per-key-channel log decay g (B, T, H, K); our scalar decay per head is the special
case g[..., None].expand(K). fla is imported lazily so the package works without it.
Tested against fla-core 0.6.0, whose signature is
``chunk_gla(q, k, v, g, scale, initial_state, output_final_state, state_v_first, cu_seqlens,
cu_seqlens_cpu)`` with q, k, g (B, T, H, K), v (B, T, H, V), state (N, H, K, V) fp32.

fla's ``chunk_gla`` is ``@torch.compiler.disable``: every call was a graph break in a compiled
model (7 per forward of agiformer-31m). ``triton_hebbian`` therefore runs fla's forward and
backward (``fla_forward``, ``fla_backward``: what its ``ChunkGLAFunction`` runs) inside the
custom ops of ``bytelm.ops.hebbian.op``, which torch.compile keeps in the graph as opaque calls:
this module registers them as those ops' CUDA kernels (``register_kernel``; the op module itself
holds only the CPU bodies and imports nothing from here).
"""
import math
import os
import sys

import torch

from bytelm.ops.dispatch import probe_once
from bytelm.ops.hebbian.op import bwd_outputs, fwd_outputs, hebbian_bwd, hebbian_fwd, hebbian_op


def _probe() -> bool:
    """True when CUDA and fla's chunk_gla can be imported (pins fla's kernel configs, see
    ``pin_fla_configs``)."""
    if not torch.cuda.is_available():
        return False
    try:
        from fla.ops.gla import chunk_gla  # noqa: F401
        from fla.ops.simple_gla import chunk as _simple_gla  # noqa: F401 - pinned below too
    except Exception:  # noqa: BLE001 - any import failure (missing fla, triton mismatch) means no
        return False
    if os.environ.get("BYTELM_FLA_AUTOTUNE", "0") != "1":
        pin_fla_configs()
    return True


# probed once per process, a constant under torch.compile; the lambda reads the module's _probe
# at call time (tests replace it)
is_available = probe_once(lambda: _probe())


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
    """S_t = exp(g_t) S_{t-1} + k_t^T v_t;  o_t = scale * q_t S_t, with fla's chunk_gla kernels.

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
    dtype = _compute_dtype(q, k, v)
    with torch.autocast(device_type="cuda", enabled=False):
        h0 = None if initial_state is None else initial_state.float()
        if os.environ.get("BYTELM_HEBBIAN_OP", "custom") != "fla":
            o, final_state = hebbian_op(q.to(dtype), k.to(dtype), v.to(dtype), g.float(),
                                        scale=scale, initial_state=h0,
                                        output_final_state=output_final_state)
        else:
            o, final_state = _fla_autograd(q.to(dtype), k.to(dtype), v.to(dtype), g.float(),
                                           scale, h0, output_final_state)
    return o.to(v.dtype), final_state


def _fla_autograd(q, k, v, g, scale: float, h0, output_final_state: bool):
    """fla's own chunk_gla (its autograd.Function), with ``BYTELM_HEBBIAN_OP=fla``. fla marks it
    ``torch.compiler.disable``, so inside torch.compile every call is a graph break (60 compiled
    regions per agiformer-31m training step on the H100; train_speed/profile_train_agiformer_fla_h100.json).
    The default, the custom op (``bytelm.ops.hebbian.op``), runs the same kernels in one graph
    (train_speed/profile_train_agiformer_custom_h100.json: 1 region, 55.1 against 74.3 ms per step)."""
    from fla.ops.gla import chunk_gla

    is_available()  # pins fla's kernel configs once (see pin_fla_configs)
    q, k, v, g4, h0 = _fla_inputs(q, k, v, g, h0)
    o, final_state = chunk_gla(q, k, v, g4, scale=float(scale), initial_state=h0,
                               output_final_state=output_final_state)
    return o, (final_state.float() if output_final_state else None)


def _fla_inputs(q, k, v, g, initial_state):
    """fla's layouts: q, k, v contiguous, the per-head log decay g (B, T, H) broadcast to
    (B, T, H, K) fp32, the state fp32 (or None)."""
    q, k, v = (x.contiguous() for x in (q, k, v))
    g4 = g.float()[..., None].expand(*g.shape, q.shape[-1]).contiguous()
    h0 = None if initial_state is None else initial_state.float().contiguous()
    return q, k, v, g4, h0


def _fla_chunk_size(T: int) -> int:
    import triton
    return min(64, max(16, triton.next_power_of_2(T)))  # as fla's ChunkGLAFunction.forward


def fla_forward(q, k, v, g, initial_state, scale: float, output_final_state: bool):
    """fla's chunk_gla forward (``chunk_gla_fwd``, as ``ChunkGLAFunction.forward`` runs it without
    cu_seqlens): q, k, v (B, T, H, *) of one dtype, g (B, T, H) fp32, initial_state fp32 or None
    -> o (B, T, H, V) in v's dtype, final state (B, H, K, V) fp32 or None."""
    from fla.ops.gla.chunk import chunk_gla_fwd

    is_available()  # pins fla's kernel configs once (see pin_fla_configs); eager, never traced
    q, k, v, g4, h0 = _fla_inputs(q, k, v, g, initial_state)
    with torch.cuda.device(q.device):
        _, _, _, ht, o = chunk_gla_fwd(
            q=q, k=k, v=v, g=g4, g_cumsum=None, scale=scale, initial_state=h0,
            output_final_state=output_final_state, state_v_first=False, cu_seqlens=None,
            chunk_size=_fla_chunk_size(q.shape[1]), chunk_indices=None)
    return o, ht


def fla_backward(q, k, v, g, initial_state, do, dfinal_state, scale: float):
    """fla's chunk_gla backward (``chunk_gla_bwd``, as ``ChunkGLAFunction.backward`` runs it):
    the gradients (dq, dk, dv, dg (B, T, H) fp32, dh0 or None) of ``fla_forward``'s outputs.

    ``ChunkGLAFunction`` saves the chunk-local cumulative decays and the intra-chunk scores A of
    its forward; here both are recomputed from the inputs (fla's own cumsum and A kernels, the
    same calls as its forward), so the custom op's interface stays the op's own arguments.
    """
    from fla.ops.gla.chunk import chunk_gla_bwd, chunk_gla_fwd_intra_gk
    from fla.ops.utils.constant import RCP_LN2
    from fla.ops.utils.cumsum import chunk_local_cumsum

    is_available()
    q, k, v, g4, h0 = _fla_inputs(q, k, v, g, initial_state)
    do = do.contiguous()
    dht = None if dfinal_state is None else dfinal_state.float().contiguous()
    chunk_size = _fla_chunk_size(q.shape[1])
    with torch.cuda.device(q.device):
        g_cumsum = chunk_local_cumsum(g4, chunk_size, scale=RCP_LN2, cu_seqlens=None)
        A = chunk_gla_fwd_intra_gk(q=q, k=k, g=g_cumsum, scale=scale, cu_seqlens=None,
                                   chunk_size=chunk_size, chunk_indices=None)
        dq, dk, dv, dg, dh0 = chunk_gla_bwd(
            q=q, k=k, v=v, g=None, g_cumsum=g_cumsum, scale=scale, initial_state=h0,
            h=None, A=A, do=do, dht=dht, state_v_first=False, cu_seqlens=None,
            chunk_size=chunk_size, chunk_indices=None)
    return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), dg.float().sum(-1), dh0


# fla's simple-GLA path: a scalar log decay per head and step, as ours is. Its kernels
# (fla.ops.common.chunk_h / chunk_o) read g as (B, T, H) instead of chunk_gla's (B, T, H, K)
# broadcast copy, and have no intra-chunk per-channel decay to apply.
SGLA_CHUNK = 64  # ChunkSimpleGLAFunction's default


def _sgla_inputs(q, k, v, g, initial_state):
    """simple-GLA's layouts: q, k, v contiguous; g (B, T, H) -> its chunk-local cumulative sum
    in log2 units (fla's kernels use exp2: ``ChunkSimpleGLAFunction.forward`` does the same)."""
    from fla.ops.utils.constant import RCP_LN2
    from fla.ops.utils.cumsum import chunk_local_cumsum

    q, k, v = (x.contiguous() for x in (q, k, v))
    g_cumsum = chunk_local_cumsum(g.float().contiguous(), chunk_size=SGLA_CHUNK, scale=RCP_LN2)
    h0 = None if initial_state is None else initial_state.float().contiguous()
    return q, k, v, g_cumsum, h0


def sgla_forward(q, k, v, g, initial_state, scale: float, output_final_state: bool):
    """fla's ``chunk_simple_gla_fwd`` with ``fla_forward``'s contract (same shapes, dtypes)."""
    from fla.ops.simple_gla.chunk import chunk_simple_gla_fwd

    is_available()
    q, k, v, g_cumsum, h0 = _sgla_inputs(q, k, v, g, initial_state)
    with torch.cuda.device(q.device):
        o, ht = chunk_simple_gla_fwd(
            q=q, k=k, v=v, g=g_cumsum, g_gamma=None, scale=scale, initial_state=h0,
            output_final_state=output_final_state, state_v_first=False, cu_seqlens=None,
            chunk_size=SGLA_CHUNK, chunk_indices=None)
    return o, ht


def sgla_backward(q, k, v, g, initial_state, do, dfinal_state, scale: float):
    """fla's ``chunk_simple_gla_bwd`` with ``fla_backward``'s contract: (dq, dk, dv, dg (B, T, H)
    fp32, dh0 or None). As ``ChunkSimpleGLAFunction.backward``: the kernel's gradient with
    respect to the chunk-local cumulative decay, reverse-cumsummed within each chunk, is dg."""
    from fla.ops.simple_gla.chunk import chunk_simple_gla_bwd
    from fla.ops.utils.cumsum import chunk_local_cumsum

    is_available()
    q, k, v, g_cumsum, h0 = _sgla_inputs(q, k, v, g, initial_state)
    do = do.contiguous()
    dht = None if dfinal_state is None else dfinal_state.float().contiguous()
    with torch.cuda.device(q.device):
        dq, dk, dv, dg, dh0 = chunk_simple_gla_bwd(
            q=q, k=k, v=v, g=g_cumsum, g_gamma=None, initial_state=h0, do=do, dht=dht,
            scale=scale, state_v_first=False, cu_seqlens=None, chunk_size=SGLA_CHUNK,
            chunk_indices=None)
        dg = chunk_local_cumsum(dg, chunk_size=SGLA_CHUNK, reverse=True)
    return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), dg.float(), dh0


KERNELS = {"gla": (fla_forward, fla_backward), "simple_gla": (sgla_forward, sgla_backward)}
DEFAULT_KERNEL = "gla"


def kernel_name() -> str:
    """The fla kernels the custom ops run on CUDA: ``BYTELM_HEBBIAN_KERNEL`` = "gla" (chunk_gla,
    the decay broadcast over K; the default) or "simple_gla" (chunk_simple_gla, the scalar decay
    as it is). Read when a kernel runs (eager, never traced)."""
    name = os.environ.get("BYTELM_HEBBIAN_KERNEL", DEFAULT_KERNEL)
    if name not in KERNELS:
        raise ValueError(f"BYTELM_HEBBIAN_KERNEL={name!r}: expected one of {sorted(KERNELS)}")
    return name


@hebbian_fwd.register_kernel("cuda")
def _hebbian_fwd_cuda(q, k, v, g, initial_state, scale, output_final_state):
    o, S = KERNELS[kernel_name()][0](q, k, v, g, initial_state, scale, output_final_state)
    return fwd_outputs(o, S, q, v, output_final_state)


@hebbian_bwd.register_kernel("cuda")
def _hebbian_bwd_cuda(q, k, v, g, initial_state, do, dfinal_state, scale):
    grads = KERNELS[kernel_name()][1](q, k, v, g, initial_state, do, dfinal_state, scale)
    return bwd_outputs(grads, q, k, v, g, initial_state)
