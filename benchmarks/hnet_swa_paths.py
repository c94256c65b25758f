"""Do hnet's two sliding-window paths compute the same model? (issue #19, the window-128 loss).

Training runs the byte stages' window attention as flex_attention inside the compiled model
(``bytelm.ops.swa.select_impl`` picks it while compiling); validation and test of the bare model
run the blocked form eagerly. On one GPU this script measures, at the real shapes:

1. the op alone: ``sliding_window_attention`` called inside a ``torch.compile``d function (flex,
   its block mask built in the graph) and eagerly (blocked), against the naive fp32 reference,
   bf16 inputs (B, H, T, D) = (8, 8, 1024, 64), windows 128 and 512; outputs and input gradients;
2. the model: ``hnet-59m`` with ``--model.byte_mixer=swa`` at each window, seeded weights, a
   batch of English validation bytes: the loss and logits of the compiled model (flex) against
   the eager model (blocked), both under bf16 autocast, beside the eager fp32 loss as the scale of
   bf16's own noise; and the gradients' relative difference.

    python benchmarks/hnet_swa_paths.py --out OUT/hnet_swa_paths.json

A path bug would show as a difference far above bf16's (the fp32-vs-bf16 gap of the same model).
"""
import argparse
import shlex
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bytelm.bench.report import environment, write_json  # noqa: E402
from bytelm.nn.loss import byte_cross_entropy  # noqa: E402
from bytelm.ops import swa as swa_mod  # noqa: E402
from bytelm.registry import create_model  # noqa: E402
from profile_train import git_commit  # noqa: E402

VALID = ROOT.parent / "shared" / "data" / "en" / "text" / "enwiki_valid.txt"


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-30)).item()


def op_check(window: int, device) -> dict:
    torch.manual_seed(0)
    B, H, T, D = 8, 8, 1024, 64
    q, k, v = (torch.randn(B, H, T, D, device=device, dtype=torch.bfloat16, requires_grad=True)
               for _ in range(3))
    traced = []

    def f(q, k, v):
        traced.append(swa_mod.select_impl("auto", q.device))  # at trace time: the compiled choice
        return swa_mod.sliding_window_attention(q, k, v, window)

    g = torch.randn(B, H, T, D, device=device, dtype=torch.bfloat16)
    outs = {}
    for name, fn in (("compiled", torch.compile(f)), ("eager", f)):
        o = fn(q, k, v)
        grads = torch.autograd.grad(o, (q, k, v), g)
        outs[name] = (o.detach(), grads)
    q32, k32, v32 = (t.detach().float().requires_grad_() for t in (q, k, v))
    ref = swa_mod.naive_sliding_window_attention(q32, k32, v32, window)
    ref_grads = torch.autograd.grad(ref, (q32, k32, v32), g.float())
    res = {"window": window, "shape": [B, H, T, D], "impl_compiled": traced[0],
           "impl_eager": swa_mod.select_impl("auto", device)}
    for name, (o, grads) in outs.items():
        res[name] = {"max_abs_out": (o.float() - ref).abs().max().item(), "rel_out": _rel(o, ref),
                     "rel_grad_qkv": [_rel(a, b) for a, b in zip(grads, ref_grads)]}
    res["compiled_vs_eager_max_abs"] = (outs["compiled"][0].float() - outs["eager"][0].float()).abs().max().item()
    return res


def batch(device, B=8, T=1024) -> torch.Tensor:
    if VALID.is_file():
        raw = VALID.read_bytes()[: B * (T + 1)]
        x = torch.frombuffer(bytearray(raw), dtype=torch.uint8).long()
        if x.numel() == B * (T + 1):
            return x.view(B, T + 1).to(device)
    torch.manual_seed(1)
    return torch.randint(0, 256, (B, T + 1), device=device)


def model_check(window: int, device) -> dict:
    torch.manual_seed(0)
    m = create_model("hnet-59m", byte_mixer="swa", window=window).to(device)
    x = batch(device)

    def loss_of(fn, dtype):
        m.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype, enabled=dtype != torch.float32):
            out = fn(x[:, :-1])
            loss = byte_cross_entropy(out.logits, x[:, 1:])
        loss.backward()
        return loss.item(), out.logits.detach().float(), [p.grad.detach().clone() for p in m.parameters()
                                                         if p.grad is not None]

    l_c, z_c, g_c = loss_of(torch.compile(m), torch.bfloat16)
    l_e, z_e, g_e = loss_of(m, torch.bfloat16)
    l_32, z_32, g_32 = loss_of(m, torch.float32)
    flat = lambda gs: torch.cat([g.float().flatten() for g in gs])  # noqa: E731
    return {"window": window, "batch": list(x.shape), "data": str(VALID.name if VALID.is_file() else "random"),
            "loss_compiled_bf16": l_c, "loss_eager_bf16": l_e, "loss_eager_fp32": l_32,
            "logits_max_abs_compiled_vs_eager": (z_c - z_e).abs().max().item(),
            "logits_max_abs_eager_bf16_vs_fp32": (z_e - z_32).abs().max().item(),
            "grad_rel_compiled_vs_eager": _rel(flat(g_c), flat(g_e)),
            "grad_rel_eager_bf16_vs_fp32": _rel(flat(g_e), flat(g_32))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--windows", type=int, nargs="+", default=[128, 512])
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    doc = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv), "git_commit": git_commit(),
           "env": environment(device), "op": [], "model": []}
    for w in args.windows:
        doc["op"].append(op_check(w, device))
        print(doc["op"][-1], flush=True)
        doc["model"].append(model_check(w, device))
        print(doc["model"][-1], flush=True)
        write_json(doc, args.out)


if __name__ == "__main__":
    main()
