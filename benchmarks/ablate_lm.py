"""Language-model ablation at equal steps: one preset, several sets of model overrides, the same
data, seed and recipe; writes the validation curve and final val bpb of each to one JSON.

    python benchmarks/ablate_lm.py --preset agiformer-tiny --data DATA_DIR --steps 600 \
        --variants 'default=;no_encoder_norm=encoder_norm=false' \
        --out benchmarks/results/ablations/ablate_encoder_norm_cpu.json -- --train.batch_size=16

DATA_DIR is a `bytelm prepare` output. Options after `--` apply to every run (train.* / optim.*).
"""
import argparse
import shlex
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from bytelm.bench.report import environment, write_json  # noqa: E402
from bytelm.options import build_run_config# noqa: E402
from bytelm.train.loop import train  # noqa: E402
from bytelm.train.metrics import read_metrics  # noqa: E402


def parse_variants(text: str, prefix: str = "model.") -> list[tuple[str, dict]]:
    """'name=k=v,k=v;name2=' -> [(name, {prefix + "k": "v", ...}), ...] (also the --variants of
    benchmarks/bsfin_stability.py, with prefix "")."""
    out = []
    for item in filter(None, (v.strip() for v in text.split(";"))):
        name, _, rest = item.partition("=")
        over = dict(kv.split("=", 1) for kv in filter(None, rest.split(",")))
        out.append((name, {f"{prefix}{k}": v for k, v in over.items()}))
    return out


def split_argv(argv: list[str]) -> tuple[list[str], dict]:
    """The script's own arguments, and the run-config options after ``--`` as {key: value}
    (``--train.batch_size=16`` -> {"train.batch_size": "16"}; also benchmarks/tr_test_split.py)."""
    split = argv.index("--") if "--" in argv else len(argv)
    return argv[:split], dict(a.lstrip("-").split("=", 1) for a in argv[split + 1:])


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    own, common = split_argv(argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--evals", type=int, default=4, help="validations along the run")
    ap.add_argument("--variants", required=True, help="'name=key=value,...;name2=...'")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(own)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, over in parse_variants(args.variants):
            cfg = build_run_config(args.preset, {
                "data.path": args.data, "train.out_dir": str(Path(tmp) / name),
                "train.steps": args.steps, "train.eval_every": max(1, args.steps // args.evals),
                "train.eval_bytes": 0, "train.progress": False, **common, **over})
            summary = train(cfg)
            recs = read_metrics(Path(tmp) / name)
            runs.append({"name": name, "overrides": over, "final_val_bpb": summary["val_bpb"],
                         "n_params": summary.get("n_params"),
                         "val_curve": [{"step": r["step"], "bpb": r["bpb"]} for r in recs
                                       if r["kind"] == "val"],
                         "train_time_s": summary.get("train_time_s")})
            print(f"{name}: val bpb {summary['val_bpb']:.4f}", flush=True)
    res = {"command": shlex.join(["python", "benchmarks/ablate_lm.py", *argv]),
           "env": environment(torch.device("cpu")), "preset": args.preset, "data": args.data,
           "steps": args.steps, "common": common, "runs": runs}
    write_json(res, args.out)
    return res


if __name__ == "__main__":
    main()
