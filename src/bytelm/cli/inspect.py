"""``bytelm inspect``: what an AGIFORMER checkpoint does on real text, read with forward hooks
(the model is not edited): HybridBlock gates per layer, Hebbian memory decay per head, ACT steps
and update sizes per patch position, and the plasticity in force. Prints a table and writes a
PNG. Other families have none of these parts; for them only parameter norms are printed.
"""
import math
from pathlib import Path

import numpy as np

from bytelm.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("inspect", help="gate, memory-decay and ACT statistics of a checkpoint")
    p.add_argument("ckpt", help="checkpoint dir or run dir (uses ckpt/best)")
    p.add_argument("--data", default=None,
                   help="prepared corpus whose val split is read (default: the training corpus)")
    p.add_argument("--bytes", type=int, default=4096, help="bytes of val data to run (default 4096)")
    p.add_argument("--out", default="inspect.png", help="PNG to write (default: inspect.png)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)


def _val_window(ckpt: Path, data: str | None, n_bytes: int, context: int):
    """(B, T) LongTensor: the first n_bytes of the val split cut into rows of <= context bytes."""
    import torch

    from bytelm.cli.evaluate import data_dir_of
    from bytelm.data import default_corpus_dir, open_split
    data = data if data is not None else data_dir_of(ckpt)
    if data is None:
        raise UserError("this checkpoint does not record its corpus: pass --data DIR")
    split = open_split(data or default_corpus_dir(), "val", min_len=2)
    n = min(n_bytes, len(split))
    T = min(context, n)
    B = n // T
    arr = np.asarray(split.data[:B * T], dtype=np.int64).reshape(B, T)
    return torch.from_numpy(arr), data or "the default corpus"


def collect(model, x) -> dict:
    """Runs ``model(x)`` with hooks and returns the statistics (see module docstring).

    Args:
        model: an AgiformerLM in eval mode.
        x: LongTensor (B, T) of bytes.
    Returns:
        {"plasticity", "gate": {"mean", "std", "head_mean"}, "decay": {"values": per head},
         "act": {"steps_pos", "dz_pos", "dz_step", "steps_hist"} or None, "stats": out.stats}.
    """
    import torch
    gates: dict[int, torch.Tensor] = {}
    decay: list[torch.Tensor] = []
    reason_out: list = []
    r_gate: list[torch.Tensor] = []
    r_mlp: list[torch.Tensor] = []
    handles = []

    def keep(store, i=None, fn=lambda t: t):
        def hook(_mod, _inp, out):
            t = fn(out).detach().float().cpu()
            if i is None:
                store.append(t)
            else:
                store[i] = t
        return hook
    for i, blk in enumerate(model.blocks):
        if getattr(blk, "gate", None) is not None:
            handles.append(blk.gate.register_forward_hook(keep(gates, i, torch.sigmoid)))
    handles.append(model.memory.decay.register_forward_hook(keep(decay)))
    reason = getattr(model, "reason", None)
    if reason is not None:
        handles.append(reason.register_forward_hook(keep(reason_out, fn=lambda o: o[2])))
        handles.append(reason.gate.register_forward_hook(keep(r_gate, fn=torch.sigmoid)))
        handles.append(reason.mlp.register_forward_hook(keep(r_mlp)))
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    c = model.config
    alpha = float(model.plasticity)
    g_mean, g_std, g_head = [], [], []
    for i in range(len(model.blocks)):
        if i in gates:  # (B, N, H)
            g = gates[i]
            g_mean.append(g.mean().item())
            g_std.append(g.std().item() if g.numel() > 1 else 0.0)
            g_head.append(g.mean(dim=(0, 1)).tolist())
        else:  # a fixed mix
            g_mean.append(float(model.blocks[i].alpha))
            g_std.append(0.0)
            g_head.append([])
    # lambda = plasticity * (lambda_min + (1 - lambda_min) * sigmoid(decay(x)))
    lam = alpha * (c.lambda_min + (1 - c.lambda_min) * torch.sigmoid(decay[0]))  # (B, N, H)
    rep = {"plasticity": alpha, "stats": {k: float(v) for k, v in out.stats.items()},
           "gate": {"mean": g_mean, "std": g_std, "head_mean": g_head},
           "decay": {"values": [lam[..., h].flatten().numpy() for h in range(lam.shape[-1])]},
           "act": None}
    if reason_out:
        steps = reason_out[0]  # (B, N) steps taken per position
        rep["act"] = {"steps_pos": steps.mean(0).numpy(),
                      "steps_hist": {int(k): int((steps == k).sum()) for k in steps.unique()}}
        rep["act"].update(_dz_per_position(steps, r_gate, r_mlp))
    return rep


def _dz_per_position(steps, gate_outs: list, mlp_outs: list) -> dict:
    """|dz| per position and per ACT step from the hooked gate and MLP outputs of the reasoning
    block: dz_n = sigmoid(gate(u)) * mlp(u). Step 1 runs on every position; in eval mode step
    n > 1 runs only on the positions still active (steps >= n), in row-major order."""
    B, N = steps.shape
    total = np.zeros((B, N))
    per_step = []
    for n, (g, m) in enumerate(zip(gate_outs, mlp_outs), start=1):
        norm = (g * m).norm(dim=-1).reshape(-1).numpy()
        active = (steps >= n).numpy()
        if norm.size != active.sum():
            return {"dz_pos": None, "dz_step": per_step}  # not the layout assumed above
        total[active] += norm
        per_step.append(float(norm.mean()) if norm.size else 0.0)
    return {"dz_pos": total.mean(0), "dz_step": per_step}


def _param_norms(model) -> None:
    print(f"{'parameter':<44}{'shape':>18}{'norm':>11}{'rms':>11}")
    for name, p in model.named_parameters():
        t = p.detach().float()
        print(f"{name:<44}{str(tuple(t.shape)):>18}{t.norm().item():>11.4f}"
              f"{t.pow(2).mean().sqrt().item():>11.4f}")


def run(args) -> int:
    from bytelm.eval.plots import plot_inspection
    from bytelm.train.checkpoint import load_model, resolve_checkpoint
    from bytelm.train.distributed import pick_device
    if args.bytes < 2:
        raise UserError("--bytes must be >= 2")
    out = Path(args.out)
    if out.is_dir() or out.suffix.lower() != ".png":
        raise UserError(f"--out {args.out}: give a .png file name")
    ckpt = resolve_checkpoint(args.ckpt)
    model = load_model(ckpt, device=pick_device(args.device))
    fam = model.config.family
    print(f"checkpoint {ckpt} ({fam}, {model.n_params():,} params)")
    if fam != "agiformer":
        print(f"{fam} has no gates, memory or ACT to inspect; parameter norms only (no PNG)")
        _param_norms(model)
        return 0
    x, data = _val_window(ckpt, args.data, args.bytes, model.config.context)
    rep = collect(model, x.to(next(model.parameters()).device))
    B, T = x.shape
    print(f"data       val split of {data}: {B * T:,} bytes as {B} x {T}")
    print(f"plasticity {rep['plasticity']:.4g} (in force for this forward; curriculum runs save "
          "the final stage's)")
    print("\nHybridBlock gate g = sigmoid(gate(u)): weight of window attention vs linear attention")
    print(f"{'layer':>5} {'mean':>7} {'std':>7}  per head")
    g = rep["gate"]
    for i, (m, s, h) in enumerate(zip(g["mean"], g["std"], g["head_mean"])):
        print(f"{i:>5} {m:>7.3f} {s:>7.3f}  {' '.join(f'{v:.2f}' for v in h) or '(fixed)'}")
    lm = model.config.lambda_min
    print(f"\nmemory decay lambda = plasticity * ({lm} + {1 - lm:.3g} * sigmoid(decay(x))), "
          "half-life in patches")
    print(f"{'head':>5} {'mean':>8} {'std':>8} {'min':>8} {'max':>8} {'half-life':>10}")
    for h, v in enumerate(rep["decay"]["values"]):
        mean = float(v.mean())
        half = math.log(0.5) / math.log(mean) if 0 < mean < 1 else math.inf
        print(f"{h:>5} {mean:>8.4f} {float(v.std()):>8.4f} {float(v.min()):>8.4f} "
              f"{float(v.max()):>8.4f} {half:>10.1f}")
    act = rep["act"]
    if act:
        hist = ", ".join(f"{k}: {v}" for k, v in sorted(act["steps_hist"].items()))
        st = rep["stats"]
        print(f"\nACT: mean steps {st.get('act_steps', float('nan')):.3f}, mean |dz| "
              f"{st.get('act_dz', float('nan')):.4f}, ponder {st.get('ponder', float('nan')):.3f}")
        print(f"     positions by steps taken: {hist}")
        if act["dz_step"]:
            print("     mean |dz| at step n: " + ", ".join(
                f"{n}: {v:.4f}" for n, v in enumerate(act["dz_step"], start=1)))
    else:
        print("\nACT: no reasoning block (think_steps = 0)")
    rep["title"] = f"{ckpt}  plasticity {rep['plasticity']:.3g}"
    print(f"wrote {plot_inspection(rep, out)}")
    return 0
