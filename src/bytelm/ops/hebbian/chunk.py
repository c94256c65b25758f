"""Chunked parallel Hebbian memory in pure PyTorch (any device); derivation in README.md.

Every decay is exp of a sum of g's over a span (s, t] with s <= t, so every exponent is <= 0:
values can underflow to 0 but never overflow.
"""
import torch

from bytelm.ops.chunking import from_chunks, segsum, to_chunks


def chunk_hebbian(q, k, v, g, scale: float = 1.0, initial_state=None,
                  output_final_state: bool = False, chunk_size: int = 64):
    """S_t = exp(g_t) S_{t-1} + k_t^T v_t;  o_t = scale * q_t S_t, computed chunk by chunk.

    Args:
        q, k: (B, T, H, K).
        v: (B, T, H, V).
        g: (B, T, H) log decay, <= 0.
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
        qf, kf, vf, gf = (x.float() for x in (q, k, v, g))
        # padded steps have g = 0 (no decay) and k = v = 0 (no write): S is unchanged
        q_, k_, v_ = (to_chunks(x, C) for x in (qf * scale, kf, vf))  # (B, H, N, C, *)
        g_ = to_chunks(gf, C)  # (B, H, N, C)

        seg = segsum(g_)  # (B, H, N, C, C), seg[t, s] = b_t - b_s <= 0 (s <= t)
        b = torch.cumsum(g_, dim=-1)  # (B, H, N, C), b_t <= 0
        decay_to_end = seg[..., -1, :]  # (B, H, N, C) = b_last - b_s <= 0
        chunk_decay = b[..., -1].exp()  # (B, H, N) = exp(b_last)

        # intra-chunk: o_t += sum_{s<=t} exp(b_t - b_s) (q_t . k_s) v_s
        attn = (q_ @ k_.transpose(-1, -2)) * seg.exp()  # (B, H, N, C, C)
        o = attn @ v_  # (B, H, N, C, V)

        # state written by each chunk alone: U_n = sum_s (k_s exp(b_last - b_s))^T v_s
        U = (k_ * decay_to_end.exp()[..., None]).transpose(-1, -2) @ v_  # (B, H, N, K, V)
        S = (torch.zeros(B, H, K, V, device=q.device, dtype=torch.float32)
             if initial_state is None else initial_state.float())
        S_prev = []
        for n in range(N):
            S_prev.append(S)
            # S_n = exp(b_last) S_{n-1} + U_n
            S = chunk_decay[:, :, n, None, None] * S + U[:, :, n]
        S_prev = torch.stack(S_prev, dim=2)  # (B, H, N, K, V), state entering each chunk

        # inter-chunk: o_t += (q_t exp(b_t)) S_{n-1}
        o = o + (q_ * b.exp()[..., None]) @ S_prev
        o = from_chunks(o, T)
    return o.to(v.dtype), (S if output_final_state else None)
