"""MFU of committed training runs recounted with today's ``flops_per_byte``.

``flops_per_byte`` is now checked against the FLOPs torch's FlopCounterMode counts
(tests/models/test_flops.py); BSFIN's estimate was 3.43x too low (69.08 M -> 236.94 M per byte
for bsfin-35m at 1,024 bytes) and AGIFORMER's 0.9% too low. The result files keep what was
computed when they were written (``train_summary.flops_per_byte`` / ``mfu``); this script
rebuilds each run's model from its preset and ``--model.*`` options, takes its
``flops_per_byte(seq_len)`` now, and recounts MFU = FLOPs/byte x steady bytes/s / peak (the
file's own peak_tflops), and the MFU against the bf16 matmul measured in the same call where the
file has it:

    python benchmarks/mfu_recount.py --out benchmarks/results/equal_time_30m/mfu_recount.json
"""
import argparse
import json
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from bytelm import create_model  # noqa: E402
from bytelm.bench.report import write_json  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def _value(raw: str):
    """A command-line value as JSON where it is JSON (numbers, true/false), else the string."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def train_options(commands: list[str]) -> tuple[dict, int | None]:
    """The ``--model.*`` overrides and ``--data.seq_len`` of the file's `bytelm train` command."""
    cmd = next((c for c in commands if " train " in c or " train\t" in c), "")
    model, seq_len = {}, None
    for tok in shlex.split(cmd):
        m = re.fullmatch(r"--model\.(\w+)=(.*)", tok)
        if m:
            model[m.group(1)] = _value(m.group(2))
        m = re.fullmatch(r"--(?:data|train)\.seq_len=(\d+)", tok)
        if m:
            seq_len = int(m.group(1))
    return model, seq_len


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rows = []
    for f in sorted(RESULTS.rglob("*.json")):
        try:
            d = json.loads(f.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        ts = d.get("train_summary") if isinstance(d, dict) else None
        if not isinstance(ts, dict) or ts.get("mfu") is None or not ts.get("peak_tflops"):
            continue
        overrides, seq_len = train_options(d.get("commands") or [])
        # the boundary rule decides where patches end, not how many slots are computed
        # (flops_per_byte counts every slot), and an entropy patcher's LM is not committed
        built = {k: v for k, v in overrides.items() if not k.startswith("patch")}
        model = create_model(ts["preset"], **built)
        fpb = model.flops_per_byte(seq_len)
        steady = ts["steady_bytes_per_s"] / ts.get("world_size", 1)
        matmul = (d.get("ceilings") or {}).get("bf16_matmul_tflops_measured")
        rows.append({
            "file": str(f.relative_to(ROOT)), "preset": ts["preset"], "model_overrides": overrides,
            "seq_len": seq_len or model.config.context,
            "flops_per_byte_recorded": ts["flops_per_byte"], "flops_per_byte_now": fpb,
            "ratio": fpb / ts["flops_per_byte"], "steady_bytes_per_s": steady,
            "mfu_recorded": ts["mfu"], "mfu_now": fpb * steady / (ts["peak_tflops"] * 1e12),
            "mfu_vs_measured_matmul_now": fpb * steady / (matmul * 1e12) if matmul else None,
        })
        r = rows[-1]
        print(f"{r['file']:60s} {r['preset']:16s} x{r['ratio']:.3f}  MFU {100 * r['mfu_recorded']:.2f}%"
              f" -> {100 * r['mfu_now']:.2f}%")
    write_json({"what": __doc__.split("\n\n")[0], "command":
                "python benchmarks/mfu_recount.py " + " ".join(sys.argv[1:]), "rows": rows}, a.out)


if __name__ == "__main__":
    main()
