"""Exact parameter counts of presets with model-field overrides, recorded as a result file:

    python benchmarks/param_counts.py agiformer-129m:n_layers=8 --out benchmarks/results/sizes/param_counts.json

Each spec is PRESET or PRESET:FIELD=VALUE[,FIELD=VALUE] (values parsed as ``--model.FIELD``).
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from bytelm.bench.report import write_json  # noqa: E402
from bytelm.overrides import apply_overrides# noqa: E402
from bytelm.registry import create_model, preset_config  # noqa: E402


def count(spec: str) -> dict:
    """{"spec", "config", "n_params", "n_params_non_embedding"} of one spec."""
    preset, _, rest = spec.partition(":")
    over = dict(kv.split("=", 1) for kv in rest.split(",")) if rest else {}
    cfg = apply_overrides(preset_config(preset), over, "model")
    model = create_model(cfg)
    return {"spec": spec, "config": cfg.to_dict(), "n_params": model.n_params(),
            "n_params_non_embedding": model.n_params(non_embedding=True)}


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    out = {"benchmark": "param_counts", "command": "python benchmarks/param_counts.py " +
           " ".join(argv), "counts": [count(s) for s in args.specs]}
    write_json(out, args.out)
    for c in out["counts"]:
        print(f"{c['spec']}: {c['n_params']:,} parameters ({c['n_params_non_embedding']:,} "
              "without embeddings)")
    return out


if __name__ == "__main__":
    main()
