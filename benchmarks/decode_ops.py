"""Host-side work per decoded byte: top-level PyTorch ops that one greedy ``step`` dispatches.

Eager decoding of one byte dispatches every op from Python; at ~5-10 us of host time per op
(dispatch + kernel launch on a GPU), this count bounds single-stream bytes/s whatever the GPU.
Counted on CPU with torch.profiler (top-level ``aten::`` events, averaged over 8 steps after a
256-byte prompt and 8 warm-up steps, so patch boundaries are included).

    python benchmarks/decode_ops.py --out benchmarks/results/generate/decode_ops.json
"""
import argparse
import json
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import bytelm  # noqa: E402

PRESETS = ["agiformer-31m", "transformer-30m", "bsfin-35m"]


def ops_per_byte(name: str, steps: int = 8) -> float:
    torch.manual_seed(0)
    m = bytelm.create_model(name).eval()
    x = torch.randint(0, 256, (1, 256))
    with torch.no_grad():
        _, st = m.step(x, m.init_state(1))
        for i in range(steps):
            _, st = m.step(x[:, i:i + 1], st)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for i in range(steps):
                _, st = m.step(x[:, i:i + 1], st)
    top = [e for e in prof.events() if e.name.startswith("aten::") and e.cpu_parent is None]
    return len(top) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    res = {"method": __doc__.strip().splitlines()[2:5], "torch": torch.__version__,
           "ops_per_byte": {p: ops_per_byte(p) for p in PRESETS}}
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res["ops_per_byte"]))


if __name__ == "__main__":
    main()
