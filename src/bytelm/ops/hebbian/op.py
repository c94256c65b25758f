"""The Hebbian memory as torch.library custom ops, ``bytelm::hebbian_fwd`` and its backward
``bytelm::hebbian_bwd``, so that torch.compile keeps a model that runs the GPU kernels in one
graph: Dynamo records each op as one opaque call (shapes from ``register_fake``), AOTAutograd
puts its backward into the compiled backward graph (``register_autograd``).

Kernels: the ops' own bodies run the pure-PyTorch ``chunk_hebbian`` forward and the
reverse-loop ``naive_hebbian_backward`` (a reference, slow for long sequences: it is there so
the op's compile path can be tested on CPU; the CPU training path itself is ``chunk_hebbian``).
On CUDA, ``bytelm.ops.hebbian.triton`` registers fla's chunk_gla forward and backward as the
ops' CUDA kernels (``register_kernel``), so this module never imports the GPU code.

Custom ops return tensors only: a final state that was not asked for is an empty (0,) tensor
(and so is dh0 without an initial state); ``hebbian_op`` turns it back into None.
"""
from typing import Optional

import torch

from bytelm.ops.hebbian.chunk import chunk_hebbian
from bytelm.ops.hebbian.naive import naive_hebbian_backward

Tensor = torch.Tensor


def _none(like: Tensor) -> Tensor:
    return like.new_zeros(0, dtype=torch.float32)


@torch.library.custom_op("bytelm::hebbian_fwd", mutates_args=())
def hebbian_fwd(q: Tensor, k: Tensor, v: Tensor, g: Tensor, initial_state: Optional[Tensor],
                scale: float, output_final_state: bool) -> tuple[Tensor, Tensor]:
    """o (B, T, H, V) in v's dtype and the final state (B, H, K, V) fp32, or (0,) if not asked."""
    o, S = chunk_hebbian(q, k, v, g, scale=scale, initial_state=initial_state,
                         output_final_state=output_final_state)
    return fwd_outputs(o, S, q, v, output_final_state)


def fwd_outputs(o: Tensor, S: Optional[Tensor], q: Tensor, v: Tensor,
                output_final_state: bool) -> tuple[Tensor, Tensor]:
    """A forward kernel's (o, S) as ``hebbian_fwd`` returns them (every device's kernel)."""
    # outputs have the fake's (contiguous) layout, and never alias an input
    return o.to(v.dtype).contiguous(), (S.float().contiguous() if output_final_state else _none(q))


@hebbian_fwd.register_fake
def _(q, k, v, g, initial_state, scale, output_final_state):
    B, T, H, K = q.shape
    V = v.shape[-1]
    state = (B, H, K, V) if output_final_state else (0,)
    return v.new_empty(B, T, H, V), q.new_empty(state, dtype=torch.float32)


@torch.library.custom_op("bytelm::hebbian_bwd", mutates_args=())
def hebbian_bwd(q: Tensor, k: Tensor, v: Tensor, g: Tensor, initial_state: Optional[Tensor],
                do: Tensor, dfinal_state: Optional[Tensor],
                scale: float) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """dq, dk, dv, dg in the dtypes of q, k, v, g; dh0 fp32 ((0,) without an initial state)."""
    grads = naive_hebbian_backward(q, k, v, g, do, scale=scale, initial_state=initial_state,
                                   dfinal_state=dfinal_state)
    return bwd_outputs(grads, q, k, v, g, initial_state)


def bwd_outputs(grads: tuple, q: Tensor, k: Tensor, v: Tensor, g: Tensor,
                initial_state: Optional[Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """A backward kernel's (dq, dk, dv, dg, dh0) as ``hebbian_bwd`` returns them."""
    dq, dk, dv, dg, dh0 = grads
    dh0 = _none(q) if initial_state is None else dh0.float().contiguous()
    return (dq.to(q.dtype).contiguous(), dk.to(k.dtype).contiguous(),
            dv.to(v.dtype).contiguous(), dg.to(g.dtype).contiguous(), dh0)


@hebbian_bwd.register_fake
def _(q, k, v, g, initial_state, do, dfinal_state, scale):
    dh0 = (0,) if initial_state is None else initial_state.shape
    return (q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape),
            g.new_empty(g.shape), q.new_empty(dh0, dtype=torch.float32))


def _setup_context(ctx, inputs, output):
    q, k, v, g, initial_state, scale, output_final_state = inputs
    ctx.save_for_backward(q, k, v, g, initial_state)
    ctx.scale, ctx.output_final_state = scale, output_final_state


def _backward(ctx, do, dfinal_state):
    q, k, v, g, initial_state = ctx.saved_tensors
    if not ctx.output_final_state:
        dfinal_state = None
    dq, dk, dv, dg, dh0 = torch.ops.bytelm.hebbian_bwd(q, k, v, g, initial_state, do,
                                                       dfinal_state, ctx.scale)
    return dq, dk, dv, dg, (None if initial_state is None else dh0), None, None


hebbian_fwd.register_autograd(_backward, setup_context=_setup_context)


def hebbian_op(q, k, v, g, scale: float = 1.0, initial_state=None,
               output_final_state: bool = False, chunk_size: int = 64):
    """``chunk_hebbian``'s contract through the custom ops (CUDA: fla's kernels).

    Args:
        q, k, v: (B, T, H, K), (B, T, H, K), (B, T, H, V); on CUDA of one dtype (fla's).
        g: (B, T, H) log decay, fp32.
        initial_state: (B, H, K, V) fp32, or None (zeros).
        chunk_size: unused (each kernel has its own).
    Returns:
        o (B, T, H, V) in v's dtype, final_state (B, H, K, V) fp32 or None.
    """
    o, S = torch.ops.bytelm.hebbian_fwd(q, k, v, g, initial_state, float(scale),
                                        bool(output_final_state))
    return o, (S if output_final_state else None)
