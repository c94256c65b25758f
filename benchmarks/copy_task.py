"""Copy task: can a model reproduce 16 random bytes it saw 20 bytes earlier?

Each sequence is 16 random characters of a 16-letter alphabet, '||||', then the same 16
characters; the loss counts only the copy (bytes 20..35). A Transformer solves this with
one attention head at a fixed offset. AGIFORMER must carry the exact bytes through its 4-byte
patch latents, the sliding-window attention over patches, the (optional) ACT block and the
local byte head. This measures how fast each learns it (CPU, tiny presets, same optimizer).

    python benchmarks/copy_task.py --steps 1200 --out benchmarks/results/copy_task/copy_task.json
"""
import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from bytelm.experiments.recall import split_specs  # noqa: E402
from bytelm.nn.loss import byte_cross_entropy  # noqa: E402

MODELS = "transformer-tiny,agiformer-tiny,agiformer-tiny[think_steps=0]"
N, SEP = 16, 4


def build(spec: str):
    """A model from 'PRESET[key=value,...]' (the syntax of bytelm recall --models)."""
    from bytelm.overrides import apply_overrides
    from bytelm.experiments.recall import parse_model_spec
    from bytelm.registry import model_class, preset_config
    preset, over = parse_model_spec(spec)
    cfg = apply_overrides(preset_config(preset), over, "model")
    return preset, over, model_class(cfg)(cfg)


def run(spec: str, steps: int, batch: int, lr: float, every: int, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    preset, over, m = build(spec)
    opt = torch.optim.AdamW(m.parameters(), lr=lr)
    alpha = torch.tensor(list(b"0123456789abcdef"))
    gen = torch.Generator().manual_seed(seed)
    curve, t0 = [], time.time()
    for step in range(steps):
        src = alpha[torch.randint(0, 16, (batch, N), generator=gen)]
        x = torch.cat([src, torch.full((batch, SEP), ord("|")), src], 1)
        out = m(x[:, :-1])
        mask = torch.zeros(batch, x.shape[1] - 1, dtype=torch.bool)
        mask[:, N + SEP - 1:] = True  # predictions of bytes N+SEP .. end (the copy)
        loss = byte_cross_entropy(out.logits, x[:, 1:], mask)
        opt.zero_grad()
        (loss + out.aux_loss).backward()
        opt.step()
        if (step + 1) % every == 0:
            curve.append({"step": step + 1, "copy_nats_per_byte": float(loss.detach())})
    return {"preset": preset, "overrides": over, "n_params": m.n_params(), "curve": curve,
            "final_copy_nats_per_byte": curve[-1]["copy_nats_per_byte"],
            "time_s": time.time() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0, help="model init and data seed")
    ap.add_argument("--models", default=MODELS, help="comma-separated PRESET[key=value,...] specs")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    res = {"task": f"{N} random chars of 16, {SEP} separators, copy; loss on the copy only",
           "chance_nats_per_byte": float(torch.log(torch.tensor(16.0))),
           "steps": args.steps, "batch": args.batch, "lr": args.lr, "seed": args.seed,
           "torch": torch.__version__,
           "models": args.models,
           "runs": [run(spec, args.steps, args.batch, args.lr, max(1, args.steps // 12), args.seed)
                    for spec in split_specs(args.models)]}
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    for r in res["runs"]:
        print(f"{r['preset']} {r['overrides'] or ''}: copy loss {r['final_copy_nats_per_byte']:.3f} "
              f"nats/byte after {args.steps} steps (chance {res['chance_nats_per_byte']:.3f})")


if __name__ == "__main__":
    main()
