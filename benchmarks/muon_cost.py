"""What Muon adds to a training step, counted from the code (no timing): the hidden matrices
``optim.name=muon`` orthogonalises, their distinct shapes (the batches of
``optim.muon_impl=batched``), and the Newton-Schulz FLOPs against the step's model FLOPs
(``flops_per_byte`` x batch x context).

    python benchmarks/muon_cost.py --out benchmarks/results/optimizers/muon_ns_flops.json
"""
import argparse
import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from bytelm.optim.batched_muon import newton_schulz_flops  # noqa: E402
from bytelm.optim.muon import muon_param_names  # noqa: E402
from bytelm.registry import create_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--presets", nargs="+", default=["transformer-30m", "hnet-59m", "agiformer-31m", "bsfin-35m"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rows = []
    for preset in args.presets:
        m = create_model(preset)
        names = muon_param_names(m)
        shapes: dict[str, int] = {}
        ns = 0
        for n, p in m.named_parameters():
            if n in names:
                shapes[str(tuple(p.shape))] = shapes.get(str(tuple(p.shape)), 0) + 1
                ns += newton_schulz_flops(tuple(p.shape))
        step = m.flops_per_byte() * args.batch * m.config.context
        rows.append({"preset": preset, "muon_matrices": sum(shapes.values()), "distinct_shapes": len(shapes),
                     "shapes": shapes, "ns_flops_per_step": ns, "model_flops_per_step": step,
                     "ns_share": ns / step})
        print(f"{preset}: {rows[-1]['muon_matrices']} matrices in {len(shapes)} shapes, "
              f"Newton-Schulz {ns / 1e9:.0f} GFLOP = {100 * ns / step:.1f}% of the step's model FLOPs")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
                               "batch": args.batch, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
