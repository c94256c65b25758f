"""Muon with the Newton-Schulz iterations of same-shaped matrices batched (``optim.muon_impl=batched``).

``torch.optim.Muon`` (the reference) orthogonalises one matrix at a time: 5 iterations of 3
matmuls and the elementwise work around them, per matrix. A 30M-class byte model has 36
(transformer-30m) to 57 (hnet-59m) hidden matrices in 4 to 10 distinct shapes, so a step
launches about a thousand small kernels, and on an H100 Muon cost transformer-30m 9% and
hnet-59m 24% of their steady training bytes/s (speedrun/speedrun_h100.json,
speedrun/speedrun_hnet_e1d3_h100.json) although Newton-Schulz is 2.6% and 7.0% of a step's FLOPs
(``newton_schulz_flops``). ``BatchedMuon`` runs the same algorithm with the matrices of one shape
stacked: ``torch.bmm``/``baddbmm`` over (n, rows, cols) and ``torch._foreach_*`` updates, so the
launches scale with the shapes, not the matrices. The momentum buffers are the reference's
(``state[p]["momentum_buffer"]``, fp32), so checkpoints load into either.
tests/optim/test_batched_muon.py equates its updates and states with ``torch.optim.Muon``'s.
"""
from collections import defaultdict

import torch
from torch import Tensor
from torch.optim._muon import _adjust_lr  # the reference's learning-rate scaling, shared

from bytelm.optim.closure import call_closure


def newton_schulz_batched(g: Tensor, coefficients: tuple[float, float, float], steps: int,
                          eps: float) -> Tensor:
    """The reference's quintic Newton-Schulz iteration on a stack of matrices.

    Args:
        g: (n, A, B) updates (any float dtype).
        coefficients, steps, eps: as ``torch.optim.Muon``'s ns_coefficients, ns_steps, eps.
    Returns:
        (n, A, B) bf16, each matrix orthogonalised as ``_zeropower_via_newtonschulz`` does it.
    """
    a, b, c = coefficients
    x = g.bfloat16()
    tall = g.shape[-2] > g.shape[-1]
    if tall:
        x = x.mT
    x = x / x.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)
    for _ in range(steps):
        gram = torch.bmm(x, x.mT)
        x = torch.baddbmm(x, torch.baddbmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.mT if tall else x


def newton_schulz_flops(shape: tuple[int, int], steps: int = 5) -> int:
    """Matmul FLOPs of the iteration on one (A, B) matrix: per step X X^T (2 m^2 n), the gram
    polynomial (2 m^3) and its product with X (2 m^2 n), m = min(A, B), n = max(A, B)."""
    m, n = sorted(shape)
    return steps * (4 * m * m * n + 2 * m ** 3)


class BatchedMuon(torch.optim.Muon):
    """``torch.optim.Muon`` (same arguments, param groups and state) with the matrices of each
    (group, shape, dtype, device) updated together."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = call_closure(closure)
        for group in self.param_groups:
            # the reference's own gathering: parameters with gradients, their momentum buffers
            # (created on first use), and its checks (no complex, no sparse gradients)
            ps, gs, bs = [], [], []
            self._init_group(group, ps, gs, bs)
            buckets: dict[tuple, list[int]] = defaultdict(list)
            for i, p in enumerate(ps):
                buckets[(tuple(p.shape), p.dtype, p.device)].append(i)
            lr, wd, mom = group["lr"], group["weight_decay"], group["momentum"]
            lr = lr.item() if isinstance(lr, Tensor) else lr
            for (shape, _, _), idx in buckets.items():
                params, grads, bufs = [ps[i] for i in idx], [gs[i] for i in idx], [bs[i] for i in idx]
                torch._foreach_lerp_(bufs, grads, 1 - mom)
                if group["nesterov"]:
                    upd = torch.stack(grads).lerp_(torch.stack(bufs), mom)
                else:
                    upd = torch.stack(bufs)
                o = newton_schulz_batched(upd, group["ns_coefficients"], group["ns_steps"], group["eps"])
                torch._foreach_mul_(params, 1 - lr * wd)
                torch._foreach_add_(params, list(o.unbind(0)),
                                    alpha=-_adjust_lr(lr, group["adjust_lr_fn"], torch.Size(shape)))
        return loss
