"""``bytelm train``: train a preset on a prepared corpus (or the default corpus), or through the
stages of a curriculum file."""
import json
from pathlib import Path

from bytelm.cli._common import read_json_object
from bytelm.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model (torchrun-compatible)",
                       description="Extra options are dotted config keys, e.g. --train.steps=2000 "
                                   "--optim.lr=1e-3 --model.n_layers=4; --help-config lists them "
                                   "all with types, defaults and docs")
    p.add_argument("--preset", default=None,
                   help="model preset (bytelm info lists them); wins over a config file's preset "
                        "(default: the file's, else transformer-tiny)")
    p.add_argument("--data", default=None, help="prepared corpus dir (default: the default corpus)")
    p.add_argument("--config", default=None, help="TOML file with [model]/[data]/[optim]/[train]/[eval]")
    p.add_argument("--curriculum", default=None, metavar="FILE",
                   help="TOML file with [[curriculum.stages]] (and optionally the usual tables); "
                        "see configs/curriculum_tr.toml")
    p.add_argument("--out", default=None, help="run directory (= --train.out_dir)")
    p.add_argument("--resume", action="store_true", help="continue the run in the run directory")
    p.add_argument("--help-config", action="store_true",
                   help="list every dotted key (type, default, doc) for --preset and exit")
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


def _curriculum_file(args) -> str | None:
    """The TOML file to read: --config or --curriculum (which must hold a [curriculum] table)."""
    if args.curriculum is None:
        return args.config
    from bytelm.options import load_toml
    if args.config is not None:
        raise UserError("give either --config or --curriculum (a curriculum file may hold the "
                        "[model]/[train]/[optim] tables too)")
    if args.data is not None:
        raise UserError("--data does not apply to a curriculum run: its stages name their data")
    if "curriculum" not in load_toml(args.curriculum):
        raise UserError(f"{args.curriculum} has no [curriculum] table ([[curriculum.stages]])")
    return args.curriculum


def run(args) -> int:
    if args.help_config:
        from bytelm.config_docs import format_keys
        print(format_keys(args.preset or "transformer-tiny"))
        return 0
    from bytelm.options import build_run_config
    from bytelm.train.loop import train
    config_file = _curriculum_file(args)
    saved_curriculum = None
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
        saved_curriculum = d.get("curriculum")
    cfg = build_run_config(preset, overrides, config_file, curriculum=saved_curriculum)
    summary = train(cfg, resume=args.resume)
    if summary and summary.get("run_dir"):
        keys = ("steps", "val_bpb", "best_val_bpb", "bytes_per_s", "mfu", "peak_memory_gib")
        print(json.dumps({k: summary.get(k) for k in keys}))
    return 0
