"""Collects finished ``bytelm train`` runs into one result JSON: per run, its config overrides
(run_config.json), the validation curve (step, bpb) and the last train record's chunk
statistics, from metrics.jsonl.

    python benchmarks/collect_runs.py --out RESULT.json --command "how the runs were made" RUN...
"""
import argparse
import datetime
import json
import os
import subprocess
from pathlib import Path


def collect(run: Path) -> dict:
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    val = [(r["step"], r["bpb"]) for r in recs if r.get("kind") == "val"]
    train = [r for r in recs if r.get("kind") == "train"]
    keys = ("chunk_len", "chunk_overflow", "boundary_rate", "ratio_loss")
    last = {k: train[-1][k] for k in keys if train and k in train[-1]}
    cfg = json.loads((run / "run_config.json").read_text())
    return {"name": run.name, "model": cfg.get("model"), "val_curve": val,
            "final_val_bpb": val[-1][1] if val else None, "last_train_stats": last,
            "steps": train[-1]["step"] if train else 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--command", required=True)
    a = ap.parse_args()
    commit = os.environ.get("GIT_COMMIT") or subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    out = {"command": a.command, "git_commit": commit,
           "date": datetime.date.today().isoformat(), "runs": [collect(r) for r in a.runs]}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1) + "\n")
    for r in out["runs"]:
        print(f"{r['name']:14s} steps {r['steps']:5d}  val {r['final_val_bpb']}")


if __name__ == "__main__":
    main()
