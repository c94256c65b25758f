"""bytelm: tokenizer-free byte-level language models.

Public API: ``create_model``, ``list_presets``, ``load``, ``generate``.
"""
from bytelm.version import __version__

from bytelm.errors import UserError
from bytelm.registry import create_model, list_presets


def load(path, device=None):
    """Loads a model saved with ``model.save(path)`` or by the trainer (a checkpoint directory)."""
    from bytelm.train.checkpoint import load_model
    return load_model(path, device=device)


def generate(model, prompt, **kwargs) -> bytes:
    """Generates bytes after ``prompt`` (bytes or str); see ``bytelm.generate.sample.generate``."""
    from bytelm.generate.sample import generate_bytes
    return generate_bytes(model, prompt, **kwargs)


__all__ = ["UserError", "create_model", "generate", "list_presets", "load", "__version__"]
