"""``export_hf``: a bytelm checkpoint -> a transformers directory (trust_remote_code=True).

    OUT/config.json               ByteLMConfig: auto_map + the bytelm model config under "bytelm"
    OUT/model.safetensors         the same weights, prefixed "bytelm." (the wrapper's attribute)
    OUT/generation_config.json    transformers' generation defaults
    OUT/tokenizer_config.json     ByteLMTokenizer (ids = bytes) + auto_map
    OUT/configuration_bytelm.py   shims importing bytelm.hf's classes (bytelm must be importable)
    OUT/modeling_bytelm.py
    OUT/tokenization_bytelm.py

``bytelm.load(OUT)`` reads it back (the bytelm config and the unprefixed weights).
"""
import json
from pathlib import Path

from bytelm.hf import require

PREFIX = "bytelm."
AUTO_MAP = {"AutoConfig": "configuration_bytelm.ByteLMConfig",
            "AutoModelForCausalLM": "modeling_bytelm.ByteLMForCausalLM"}
TOKENIZER_AUTO_MAP = {"AutoTokenizer": ["tokenization_bytelm.ByteLMTokenizer", None]}
SHIMS = {
    "configuration_bytelm.py": "ByteLMConfig",
    "modeling_bytelm.py": "ByteLMForCausalLM",
    "tokenization_bytelm.py": "ByteLMTokenizer",
}


def _shim(module: str, cls: str) -> str:
    return (f'"""{cls} for a bytelm model exported by `bytelm export-hf`; needs bytelm '
            f'(pip install \'bytelm[hf]\')."""\n'
            f"from bytelm.hf.{module[:-3]} import {cls}\n\n__all__ = [\"{cls}\"]\n")


def to_hf(model):
    """The transformers wrapper (``ByteLMForCausalLM``) around a copy of bytelm ``model``'s weights."""
    require("transformers")
    from bytelm.hf.configuration_bytelm import ByteLMConfig
    from bytelm.hf.modeling_bytelm import ByteLMForCausalLM
    from bytelm.train.checkpoint import model_state_dict, unwrap
    m = unwrap(model)
    config = ByteLMConfig(bytelm=m.config.to_dict(), max_position_embeddings=m.config.context,
                          architectures=["ByteLMForCausalLM"], auto_map=dict(AUTO_MAP),
                          dtype="float32")
    hf = ByteLMForCausalLM(config)
    hf.bytelm.load_state_dict(model_state_dict(m), strict=True)
    return hf.eval()


def export_hf(model, out) -> Path:
    """Writes ``model`` (a bytelm model) as a transformers directory ``out``, atomically.

    Returns the directory. Loading it needs ``trust_remote_code=True`` and bytelm importable.
    """
    from bytelm.hf.tokenization_bytelm import ByteLMTokenizer
    from bytelm.train.checkpoint import atomic_write_dir
    hf = to_hf(model)

    def write(d: Path) -> None:
        hf.save_pretrained(d)
        ByteLMTokenizer().save_pretrained(d)
        tok_cfg = d / "tokenizer_config.json"
        cfg = json.loads(tok_cfg.read_text())
        cfg["auto_map"] = TOKENIZER_AUTO_MAP
        tok_cfg.write_text(json.dumps(cfg, indent=2) + "\n")
        for name, cls in SHIMS.items():
            (d / name).write_text(_shim(name, cls))

    atomic_write_dir(Path(out), write)
    return Path(out)
