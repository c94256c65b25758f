"""Reference Hebbian memory: a time loop in fp32, obviously correct, never optimised."""
import torch


def naive_hebbian(q, k, v, g, scale: float = 1.0, initial_state=None,
                  output_final_state: bool = False, chunk_size: int = 64):
    """S_t = exp(g_t) S_{t-1} + k_t^T v_t;  o_t = scale * q_t S_t, one step at a time.

    Args:
        q, k: (B, T, H, K).
        v: (B, T, H, V).
        g: (B, T, H) log decay, <= 0.
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
        qf, kf, vf, gf = (x.float() for x in (q, k, v, g))
        S = (torch.zeros(B, H, K, V, device=q.device, dtype=torch.float32)
             if initial_state is None else initial_state.float())
        outs = []
        for t in range(T):
            S = gf[:, t, :, None, None].exp() * S + kf[:, t, :, :, None] * vf[:, t, :, None, :]
            outs.append(scale * torch.einsum("bhk,bhkv->bhv", qf[:, t], S))
        o = torch.stack(outs, dim=1) if T else vf.new_zeros(B, 0, H, V)
    return o.to(v.dtype), (S if output_final_state else None)


def naive_hebbian_backward(q, k, v, g, do, scale: float = 1.0, initial_state=None,
                           dfinal_state=None):
    """Gradients of ``naive_hebbian``'s (o, final_state), by the reverse time loop (no autograd,
    so it can run inside a custom op's kernel, where autograd is off: ``op.py``).

    With dS the gradient of S_t (seeded by dfinal_state at t = T), going back in time:
    dS += scale q_t^T do_t;  dq_t = scale S_t do_t;  dk_t = dS v_t;  dv_t = dS^T k_t;
    dg_t = exp(g_t) <dS, S_{t-1}>;  then dS <- exp(g_t) dS (the gradient of S_{t-1}).

    Args:
        q, k, v, g, scale, initial_state: as ``naive_hebbian``.
        do: (B, T, H, V) gradient of o.
        dfinal_state: (B, H, K, V) gradient of the final state, or None (zero).
    Returns:
        dq, dk, dv in the dtypes of q, k, v; dg (B, T, H) in g's dtype; dh0 (B, H, K, V) fp32,
        or None without an initial state.
    """
    B, T, H, K = q.shape
    V = v.shape[-1]
    with torch.autocast(device_type=q.device.type, enabled=False):
        qf, kf, vf, gf, dof = (x.float() for x in (q, k, v, g, do))
        S = (torch.zeros(B, H, K, V, device=q.device, dtype=torch.float32)
             if initial_state is None else initial_state.float())
        states = [S]  # states[t] = S_{t-1}, states[t + 1] = S_t
        for t in range(T):
            S = gf[:, t, :, None, None].exp() * S + kf[:, t, :, :, None] * vf[:, t, :, None, :]
            states.append(S)
        dS = (torch.zeros(B, H, K, V, device=q.device, dtype=torch.float32)
              if dfinal_state is None else dfinal_state.float())
        dq, dk, dv, dg = ([None] * T for _ in range(4))
        for t in reversed(range(T)):
            dS = dS + scale * qf[:, t, :, :, None] * dof[:, t, :, None, :]
            dq[t] = scale * torch.einsum("bhkv,bhv->bhk", states[t + 1], dof[:, t])
            dk[t] = torch.einsum("bhkv,bhv->bhk", dS, vf[:, t])
            dv[t] = torch.einsum("bhkv,bhk->bhv", dS, kf[:, t])
            decay = gf[:, t].exp()
            dg[t] = decay * (dS * states[t]).sum((-2, -1))
            dS = decay[..., None, None] * dS

        def stack(xs, like, last):
            return (torch.stack(xs, 1) if T else like.new_zeros(B, 0, H, *last)).to(like.dtype)

        grads = (stack(dq, q, (K,)), stack(dk, k, (K,)), stack(dv, v, (V,)), stack(dg, g, ()))
    return (*grads, None if initial_state is None else dS)
