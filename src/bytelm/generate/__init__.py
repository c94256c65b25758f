"""Byte sampling, UTF-8-safe streaming, cached generation.

The package is also callable: ``bytelm.generate(model, prompt, ...)`` is the public API, and
importing this subpackage replaces the attribute ``bytelm.generate`` (the function defined in
``bytelm/__init__.py``) with this module, so the module must do what the function did.
"""
import sys
import types

from bytelm.generate.sample import Utf8Stream, check_compilable, generate_bytes, iter_generate, sample_next

__all__ = ["Utf8Stream", "check_compilable", "generate_bytes", "iter_generate", "sample_next"]


class _CallableModule(types.ModuleType):
    def __call__(self, model, prompt, **kwargs) -> bytes:
        """Generates bytes after ``prompt`` (bytes or str); see ``iter_generate``."""
        return generate_bytes(model, prompt, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
