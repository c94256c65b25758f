"""RecurrentReasoningBlock ("System 2") with Adaptive Computation Time (Graves 2016).

Per position (patch latent) z_0 = x; step n: z_n = z_{n-1} + sigmoid(W_g u) * MLP(u), u =
norm(z_{n-1}); halting unit h_n = sigmoid(w . z_n + b). The position halts at the first N with
sum_{n<=N} h_n >= 1 - eps (or N = max_steps); weights p_n = h_n for n < N and the remainder
R = 1 - sum_{n<N} h_n at n = N; output sum_n p_n z_n; ponder cost N + R (only R carries a
gradient). In eval mode halted positions are dropped from later steps' computation (unless
``early_exit=False``, or under torch.compile: every position computes every step, with no host
sync; same output). Training always computes every step (halted positions get weight 0).
"""
import torch
from torch import nn

from bytelm.nn import RMSNorm, SwiGLU


class RecurrentReasoningBlock(nn.Module):
    """z (B, N, d) -> (out (B, N, d), ponder (B, N), steps (B, N), mean |dz| (scalar))."""

    def __init__(self, d_model: int, d_ff: int, max_steps: int, eps: float = 0.01,
                 halt_bias: float = -1.0, norm_eps: float = 1e-6):
        super().__init__()
        self.max_steps, self.eps = max_steps, eps
        self.norm = RMSNorm(d_model, norm_eps)
        self.mlp = SwiGLU(d_model, d_ff)
        self.gate = nn.Linear(d_model, d_model)
        self.halt = nn.Linear(d_model, 1)
        nn.init.constant_(self.halt.bias, halt_bias)

    def _update(self, z: torch.Tensor) -> torch.Tensor:
        u = self.norm(z)
        return torch.sigmoid(self.gate(u)) * self.mlp(u)

    def forward(self, x: torch.Tensor, early_exit: bool = True):
        z = x
        lead = x.shape[:-1]
        cum = torch.zeros(lead, device=x.device, dtype=torch.float32)
        out = torch.zeros_like(x, dtype=torch.float32)
        halted = torch.zeros(lead, device=x.device, dtype=torch.bool)
        steps = torch.zeros(lead, device=x.device, dtype=torch.float32)
        ponder = torch.zeros(lead, device=x.device, dtype=torch.float32)
        dz_sum = x.new_zeros((), dtype=torch.float32)
        # the early exit is a host sync with data-dependent shapes: graph breaks under compile
        early_exit = early_exit and not self.training and not torch.compiler.is_compiling()
        for n in range(1, self.max_steps + 1):
            if early_exit and n > 1:
                active = ~halted
                if not bool(active.any()):
                    break
                dz = torch.zeros_like(z)
                dz[active] = self._update(z[active])
            else:
                dz = self._update(z)
            z = z + dz
            dz_sum = dz_sum + dz.float().norm(dim=-1).masked_fill(halted, 0).sum()
            h = torch.sigmoid(self.halt(z).float().squeeze(-1))
            stop = (cum + h >= 1 - self.eps) if n < self.max_steps else torch.ones_like(halted)
            remainder = 1 - cum
            p = torch.where(stop, remainder, h).masked_fill(halted, 0.0)
            out = out + p[..., None] * z.float()
            newly = stop & ~halted
            ponder = ponder + torch.where(newly, n + remainder, torch.zeros_like(remainder))
            steps = steps + (~halted).float()
            cum = cum + p
            halted = halted | stop
        n_pos = max(1, halted.numel())
        return out.to(x.dtype), ponder, steps, dz_sum / (steps.sum().clamp_min(1) if n_pos else 1)
