"""Byte sampling, UTF-8-safe streaming, cached generation."""
from bytelm.generate.sample import Utf8Stream, check_compilable, generate_bytes, iter_generate, sample_next

__all__ = ["Utf8Stream", "check_compilable", "generate_bytes", "iter_generate", "sample_next"]
