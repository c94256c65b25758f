"""bytelm: tokenizer-free byte-level language models.

Public API: ``create_model``, ``list_presets``, ``load``, ``generate``.
"""
from bytelm.version import __version__

from bytelm.errors import UserError
from bytelm.registry import create_model, list_presets
# loaded before the function below is defined: loading the subpackage later would rebind the
# name ``bytelm.generate`` to it, and the function would stop being callable after one call
import bytelm.generate  # noqa: E402,F401


def load(path, device=None):
    """Loads a model saved with ``model.save(path)`` or by the trainer (a checkpoint directory)."""
    from bytelm.train.checkpoint import load_model
    return load_model(path, device=device)


def generate(model, prompt, **kwargs):
    """Generates bytes after ``prompt`` (bytes or str), or after each of a list of prompts in
    one batch (a list of bytes back); options of ``bytelm.generate.iter_batch`` (max_bytes,
    temperature, top_k, top_p, seed, stop, mode, decode="auto" | "eager" | "compiled")."""
    from bytelm.generate.batch import generate_many
    if isinstance(prompt, (list, tuple)):
        return generate_many(model, list(prompt), **kwargs)
    return generate_many(model, [prompt], **kwargs)[0]


__all__ = ["UserError", "create_model", "generate", "list_presets", "load", "__version__"]
