"""Reference gated delta rule: a time loop in fp32, obviously correct, never optimised."""
import torch


def naive_delta(q, k, v, g, beta, scale: float = 1.0, initial_state=None,
                output_final_state: bool = False, chunk_size: int = 64):
    """S_t = exp(g_t) (I - beta_t k_t^T k_t) S_{t-1} + beta_t k_t^T v_t;  o_t = scale * q_t S_t.

    Args:
        q, k: (B, T, H, K); k should be L2-normalised (the rule contracts S only if
            beta_t |k_t|^2 <= 2).
        v: (B, T, H, V).
        g: (B, T, H) log decay, <= 0.
        beta: (B, T, H) write strength in (0, 1).
        scale: multiplies q.
        initial_state: (B, H, K, V) or None (zeros).
        output_final_state: return S_T as well.
        chunk_size: unused; kept so every implementation has the same signature.
    Returns:
        o (B, T, H, V) in v's dtype, final_state (B, H, K, V) fp32 or None.
    """
    B, T, H, K = q.shape
    V = v.shape[-1]
    with torch.autocast(device_type=q.device.type, enabled=False):
        qf, kf, vf, gf, bf = (x.float() for x in (q, k, v, g, beta))
        S = (torch.zeros(B, H, K, V, device=q.device, dtype=torch.float32)
             if initial_state is None else initial_state.float())
        outs = []
        for t in range(T):
            k_t, b_t = kf[:, t], bf[:, t, :, None]  # (B, H, K), (B, H, 1)
            S = gf[:, t, :, None, None].exp() * S
            # the value the memory already holds for k_t, replaced by v_t at rate beta_t
            u = b_t * (vf[:, t] - torch.einsum("bhk,bhkv->bhv", k_t, S))  # (B, H, V)
            S = S + k_t[..., :, None] * u[..., None, :]
            outs.append(scale * torch.einsum("bhk,bhkv->bhv", qf[:, t], S))
        o = torch.stack(outs, dim=1) if T else vf.new_zeros(B, 0, H, V)
    return o.to(v.dtype), (S if output_final_state else None)
