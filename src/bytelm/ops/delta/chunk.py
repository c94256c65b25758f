"""Chunked gated delta rule in pure PyTorch (any device): the WY / UT-transform form of the
Gated DeltaNet paper (as in flash-linear-attention's ``chunk_gated_delta_rule``). Derivation in
README.md.

Every decay is exp of a sum of g's over a span (s, t] with s <= t, so every exponent is <= 0.
"""
import torch

from bytelm.ops.chunking import from_chunks, segsum, to_chunks


def chunk_delta(q, k, v, g, beta, scale: float = 1.0, initial_state=None,
                output_final_state: bool = False, chunk_size: int = 64):
    """S_t = exp(g_t) (I - beta_t k_t^T k_t) S_{t-1} + beta_t k_t^T v_t;  o_t = scale * q_t S_t,
    computed chunk by chunk.

    Args:
        q, k: (B, T, H, K); k should be L2-normalised.
        v: (B, T, H, V).
        g: (B, T, H) log decay, <= 0.
        beta: (B, T, H) write strength in (0, 1).
        scale: multiplies q.
        initial_state: (B, H, K, V) or None (zeros).
        output_final_state: return S_T as well.
        chunk_size: C; memory is O(B*T*H*(K + V + C)) plus one (K, V) state per chunk.
    Returns:
        o (B, T, H, V) in v's dtype, final_state (B, H, K, V) fp32 or None.
    """
    B, T, H, K = q.shape
    V = v.shape[-1]
    C = int(chunk_size)
    if C < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    N = max(1, -(-T // C))
    with torch.autocast(device_type=q.device.type, enabled=False):
        qf, kf, vf, gf, bf = (x.float() for x in (q, k, v, g, beta))
        # padded steps have g = 0 (no decay) and beta = k = v = 0 (no write): S is unchanged
        q_, k_, v_ = (to_chunks(x, C) for x in (qf * scale, kf, vf))  # (B, H, N, C, *)
        g_ = to_chunks(gf, C)  # (B, H, N, C)
        b_ = to_chunks(bf, C)[..., None]  # (B, H, N, C, 1)

        seg = segsum(g_)  # (B, H, N, C, C), seg[t, s] = b_t - b_s <= 0 (s <= t), else -inf
        b = torch.cumsum(g_, dim=-1)  # (B, H, N, C), b_t <= 0
        decay_to_end = seg[..., -1, :]  # (B, H, N, C) = b_last - b_s <= 0
        chunk_decay = b[..., -1].exp()  # (B, H, N)

        # UT transform: (I + A) [U0 | W] = [beta v | beta exp(b) k] with
        # A[t, s] = beta_t exp(b_t - b_s) (k_t . k_s) for s < t (strictly lower triangular)
        strict = torch.tril(torch.ones(C, C, dtype=torch.bool, device=q.device), diagonal=-1)
        A = (b_ * (k_ @ k_.transpose(-1, -2)) * seg.exp()).masked_fill(~strict, 0.0)
        eye = torch.eye(C, device=q.device, dtype=torch.float32)
        rhs = torch.cat([b_ * v_, b_ * b.exp()[..., None] * k_], -1)  # (B, H, N, C, V + K)
        X = torch.linalg.solve_triangular(eye + A, rhs, upper=False, unitriangular=True)
        U0, W = X[..., :V], X[..., V:]  # (B, H, N, C, V), (B, H, N, C, K)

        S = (torch.zeros(B, H, K, V, device=q.device, dtype=torch.float32)
             if initial_state is None else initial_state.float())
        S_prev, U = [], []
        for n in range(N):
            S_prev.append(S)
            # pseudo-values u_t = beta_t (v_t - k_t (decayed S before t)), all t at once
            u = U0[:, :, n] - W[:, :, n] @ S  # (B, H, C, V)
            U.append(u)
            # S_n = exp(b_last) S_{n-1} + sum_s exp(b_last - b_s) k_s^T u_s
            S = chunk_decay[:, :, n, None, None] * S + \
                (k_[:, :, n] * decay_to_end[:, :, n, :, None].exp()).transpose(-1, -2) @ u
        S_prev = torch.stack(S_prev, dim=2)  # (B, H, N, K, V)
        U = torch.stack(U, dim=2)  # (B, H, N, C, V)

        # o_t = (q_t exp(b_t)) S_{n-1} + sum_{s<=t} exp(b_t - b_s) (q_t . k_s) u_s
        attn = (q_ @ k_.transpose(-1, -2)) * seg.exp()  # (B, H, N, C, C)
        o = (q_ * b.exp()[..., None]) @ S_prev + attn @ U
        o = from_chunks(o, T)
    return o.to(v.dtype), (S if output_final_state else None)
