"""Byte sampling, UTF-8-safe streaming, cached and batched generation on any decoder."""
from bytelm.generate.decoder import DECODE_MODES, make_decoder
from bytelm.generate.batch import generate_bytes, generate_many, iter_batch, iter_generate
from bytelm.generate.sample import Utf8Stream, check_compilable, sample_next

__all__ = ["DECODE_MODES", "Utf8Stream", "check_compilable", "generate_bytes", "generate_many",
           "iter_batch", "iter_generate", "make_decoder", "sample_next"]
