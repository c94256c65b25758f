"""``bytelm export-hf``: write a checkpoint as a Hugging Face transformers directory."""
from pathlib import Path

from bytelm.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("export-hf", help="export a checkpoint for transformers "
                                         "(AutoModelForCausalLM, trust_remote_code=True)")
    p.add_argument("ckpt", help="checkpoint dir or run dir (uses ckpt/best)")
    p.add_argument("out", help="directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=run)


def run(args) -> int:
    from bytelm.hf import require
    from bytelm.train.checkpoint import load_model, resolve_checkpoint
    require("transformers")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise UserError(f"{out} is not empty (pass --overwrite to replace it)")
    ckpt = resolve_checkpoint(args.ckpt)
    model = load_model(ckpt)
    from bytelm.hf.export import export_hf
    export_hf(model, out)
    print(f"wrote {out} ({model.config.family}, {model.n_params():,} parameters) from {ckpt}; load with "
          f"AutoModelForCausalLM.from_pretrained({str(out)!r}, trust_remote_code=True)")
    return 0
