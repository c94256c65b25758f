"""Each preset's ``flops_per_byte`` (the estimate MFU and the FLOP-matched BPE budget use)
against the matrix-multiply FLOPs that ``torch.utils.flop_counter.FlopCounterMode`` counts in
one forward + backward over real text (CPU, initial weights; attention kernels that the
counter does not see, e.g. CPU SDPA, and elementwise work are not counted):

    python benchmarks/flop_count.py transformer-30m agiformer-31m bsfin-35m \
        --text ../shared/data/small/en.txt --out benchmarks/results/flops/flop_count_cpu.json
"""
import argparse
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from bytelm.bench.report import environment, write_json  # noqa: E402
from bytelm.registry import create_model  # noqa: E402


def count(preset: str, text: bytes, batch: int, seq_len: int) -> dict:
    """{"preset", "seq_len", "flops_per_byte", "counted_per_byte", "counted_forward_per_byte",
    "ratio", "by_module_forward", "outside_modules_forward"}: counted FLOPs per input byte
    (forward by top-level module, and what the model's own forward computes outside them)."""
    torch.manual_seed(0)
    model = create_model(preset)
    T = min(seq_len, model.config.context)
    if len(text) < batch * T:
        raise SystemExit(f"--text has {len(text)} bytes, {batch * T} needed")
    x = torch.tensor(list(text[:batch * T]), dtype=torch.long).view(batch, T)
    fwd = FlopCounterMode(display=False, depth=3)
    with fwd:
        out = model(x)
    total = FlopCounterMode(display=False)
    model.zero_grad(set_to_none=True)
    with total:
        out = model(x)
        out.logits.float().logsumexp(-1).mean().backward()
    n = x.numel()
    name = type(model).__name__
    counts = {k: sum(v.values()) / n for k, v in fwd.get_flop_counts().items()}
    by_module = {}
    for k, v in counts.items():  # top-level children; a ModuleList's entries summed under it
        parts = k.split(".")
        if parts[0] == name and (len(parts) == 2 or (len(parts) == 3 and
                                                      ".".join(parts[:2]) not in counts)):
            by_module[parts[1]] = by_module.get(parts[1], 0.0) + v
    # matmuls in the model's own forward, outside any child module
    outside = fwd.get_total_flops() / n - sum(by_module.values())
    est, got = model.flops_per_byte(T), total.get_total_flops() / n
    return {"preset": preset, "seq_len": T, "batch": batch, "flops_per_byte": est,
            "counted_per_byte": got, "counted_forward_per_byte": fwd.get_total_flops() / n,
            "ratio": got / est, "by_module_forward": by_module, "outside_modules_forward": outside,
            "stats": {k: float(v) for k, v in (out.stats or {}).items()
                      if torch.as_tensor(v).numel() == 1}}


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("presets", nargs="+")
    ap.add_argument("--text", required=True, help="a text file (its first batch x seq-len bytes)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    text = Path(args.text).read_bytes()
    out = {"benchmark": "flop_count", "command": "python benchmarks/flop_count.py " +
           " ".join(argv), "env": environment(torch.device("cpu")),
           "runs": [count(p, text, args.batch, args.seq_len) for p in args.presets]}
    write_json(out, args.out)
    for r in out["runs"]:
        print(f"{r['preset']}: flops_per_byte {r['flops_per_byte']:.3g}, counted "
              f"{r['counted_per_byte']:.3g} (x{r['ratio']:.2f})")
    return out


if __name__ == "__main__":
    main()
