"""``bytelm train``: train a preset on a prepared corpus (or the default corpus)."""
import json
from pathlib import Path

from bytelm.cli._common import read_json_object
from bytelm.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model (torchrun-compatible)",
                       description="Extra options are dotted config keys, e.g. --train.steps=2000 "
                                   "--optim.lr=1e-3 --model.n_layers=4")
    p.add_argument("--preset", default="transformer-tiny", help="model preset (bytelm info lists them)")
    p.add_argument("--data", default=None, help="prepared corpus dir (default: the default corpus)")
    p.add_argument("--config", default=None, help="TOML file with [model]/[data]/[optim]/[train]/[eval]")
    p.add_argument("--out", default=None, help="run directory (= --train.out_dir)")
    p.add_argument("--resume", action="store_true", help="continue the run in the run directory")
    p.set_defaults(func=run, accepts_overrides=True)


def _flatten_saved(d: dict) -> dict:
    flat = {}
    for sec in ("model", "data", "optim", "train", "eval"):
        section = d.get(sec, {})
        if not isinstance(section, dict):
            raise UserError(f"cannot resume: [{sec}] of the saved run_config.json is not a table")
        for k, v in section.items():
            if sec == "model" and k == "family":
                continue
            flat[f"{sec}.{k}"] = list(v) if isinstance(v, tuple) else v
    return flat


def run(args) -> int:
    from bytelm.config import build_run_config
    from bytelm.train.loop import train
    overrides = dict(args.overrides)
    if args.data is not None:
        overrides["data.path"] = args.data
    if args.out is not None:
        overrides["train.out_dir"] = args.out
    preset = args.preset
    out_dir = overrides.get("train.out_dir")
    if out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise UserError(f"run directory {out_dir} exists and is not a folder; choose another --out")
    if args.resume:
        out = overrides.get("train.out_dir")
        if out is None:
            raise UserError("--resume needs --out RUN_DIR")
        saved = Path(out) / "run_config.json"
        if not saved.is_file():
            raise UserError(f"nothing to resume in {out} (no run_config.json)")
        d = read_json_object(saved, "run config")
        preset = d.get("preset")
        if not isinstance(preset, str):
            raise UserError(f"cannot resume from {saved}: it names no preset (damaged?)")
        overrides = {**_flatten_saved(d), **overrides}
    cfg = build_run_config(preset, overrides, args.config)
    summary = train(cfg, resume=args.resume)
    if summary and summary.get("run_dir"):
        keys = ("steps", "val_bpb", "best_val_bpb", "bytes_per_s", "mfu", "peak_memory_gib")
        print(json.dumps({k: summary.get(k) for k in keys}))
    return 0
