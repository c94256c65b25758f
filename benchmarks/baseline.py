"""Baseline Transformer benchmark: prepare a corpus, train for a fixed time, evaluate the
best-validation checkpoint on the whole test split, write one JSON result with the exact
commands.

    python benchmarks/baseline.py --name en --source DATA/en/text --minutes 9 --out benchmarks/results/equal_time_30m/
    python benchmarks/baseline.py --name tr --source DATA/tr/text --minutes 5 --out benchmarks/results/equal_time_30m/

Each step runs the public CLI (``python -m bytelm ...``) so the recorded commands are the
ones a user would type.
"""
import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def sh(cmd: list[str], log) -> None:
    line = " ".join(shlex.quote(c) for c in cmd)
    print(f"$ {line}", flush=True)
    log.append(line)
    subprocess.run(cmd, check=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--source", required=True, help="text folder or file to prepare")
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--out", required=True, help="folder for the result JSON")
    ap.add_argument("--work", default="runs/bench", help="scratch folder (data, run dir)")
    ap.add_argument("--preset", default="transformer-30m")
    ap.add_argument("--result", default=None,
                    help="result file name in --out (default baseline_NAME.json)")
    ap.add_argument("--needle", choices=("en", "tr"), default=None,
                    help="after the test eval, run `bytelm needle --lang LANG` on the best "
                         "checkpoint into OUT/needle_NAME (heat map + JSON)")
    ap.add_argument("--by-offset", type=int, default=0, metavar="P",
                    help="test bpb also by byte offset mod P (bytelm eval --by-offset)")
    ap.add_argument("train_args", nargs="*", help="extra --key=value training options")
    args = ap.parse_args()
    from gpu_ceilings import measure
    py = [sys.executable, "-m", "bytelm"]
    work = Path(args.work)
    data, run = work / f"data_{args.name}", work / f"run_{args.name}"
    cmds: list[str] = []
    t0 = time.time()
    ceilings = measure()
    if not (data / "meta.json").is_file():
        sh(py + ["prepare", args.source, "--out", str(data)], cmds)
    train_opts = [f"--train.time_budget_min={args.minutes}", "--train.steps=1000000",
                  "--train.progress=false", *args.train_args]
    sh(py + ["train", "--preset", args.preset, "--data", str(data), "--out", str(run), *train_opts], cmds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result_path = out / (args.result or f"baseline_{args.name}.json")
    # the training record is written before the test eval, so a timeout there keeps it
    result_path.write_text(json.dumps(record(args, cmds, ceilings, run, data, None, t0), indent=2) + "\n")
    test_json = work / f"test_{args.name}.json"
    sh(py + ["eval", str(run / "ckpt" / "best"), "--split", "test", "--batch-size", "16",
             "--json", str(test_json)] + (["--by-offset", str(args.by_offset)] if args.by_offset else []),
       cmds)
    test = json.loads(test_json.read_text())
    result = record(args, cmds, ceilings, run, data, test, t0)
    result_path.write_text(json.dumps(result, indent=2) + "\n")
    if args.needle:
        sh(py + ["needle", str(run / "ckpt" / "best"), "--lang", args.needle,
                 "--out", str(out / f"needle_{args.name}")], cmds)
        result["commands"] = cmds
        result_path.write_text(json.dumps(result, indent=2) + "\n")
    summary = result["train_summary"]
    print(json.dumps({k: result[k] for k in ("benchmark", "best_val", "test", "mfu_vs_measured_matmul")}
                     | {"steady_bytes_per_s": summary["steady_bytes_per_s"], "mfu": summary["mfu"],
                        "peak_memory_gib": summary["peak_memory_gib"], "steps": summary["steps"]},
                     indent=1))


def train_point(r: dict) -> dict:
    """One train_curve point from a metrics "train" record: bpb and pre-clip gradient norm of the
    interval's last step, the interval's worst bpb and largest gradient norm (loss spikes between
    logged steps show), throughput. Fields the record lacks (older runs) are left out."""
    p = {"step": r["step"], "bpb": r["bpb"], "interval_bytes_per_s": r["interval_bytes_per_s"]}
    if "grad_norm" in r:
        p["grad_norm"] = r["grad_norm"]
    if "grad_norm_max" in r:
        p["grad_norm_max"] = r["grad_norm_max"]
    if r.get("losses"):
        p["bpb_max"] = max(r["losses"]) / math.log(2)
    return p


def record(args, cmds, ceilings, run: Path, data: Path, test: dict | None, t0: float) -> dict:
    """The result JSON: commands, ceilings, corpus, training summary, curves, test bpb."""
    summary = json.loads((run / "summary.json").read_text())
    meta = json.loads((data / "meta.json").read_text())
    metrics = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    val_curve = [{"step": r["step"], "bytes_seen": r["bytes_seen"], "bpb": r["bpb"]}
                 for r in metrics if r["kind"] == "val"]
    train_curve = [train_point(r) for r in metrics if r["kind"] == "train"]
    best = min(val_curve, key=lambda r: r["bpb"]) if val_curve else None
    result = {
        "benchmark": f"baseline_{args.name}", "preset": args.preset,
        "git_commit": os.environ.get("GIT_COMMIT", "unknown"),
        "commands": cmds, "ceilings": ceilings,
        "corpus": {"source": args.source, "splits": {k: v["bytes"] for k, v in meta["splits"].items()}},
        "train_summary": summary, "best_val": best,
        "test": ({k: test[k] for k in ("bpb", "bits_per_char", "n_bytes", "n_chars", "seq_len", "stride",
                                       "by_offset") if k in test}
                 if test is not None else None),
        "mfu_vs_measured_matmul": (summary["flops_per_byte"] * summary["steady_bytes_per_s"]
                                   / (ceilings["bf16_matmul_tflops_measured"] * 1e12)
                                   if "bf16_matmul_tflops_measured" in ceilings else None),
        "val_curve": val_curve, "train_curve": train_curve[::max(1, len(train_curve) // 200)],
        "wall_s": time.time() - t0,
    }
    return result


if __name__ == "__main__":
    main()
