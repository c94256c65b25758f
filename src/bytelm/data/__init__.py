"""Byte corpora: reading inputs of any format, preparing train/val/test splits, memory-mapped
access, samplers, the default corpus."""

from bytelm.data.default import DEFAULT_MAX_BYTES, cache_root, default_corpus_dir, stdlib_files
from bytelm.data.loader import (
    EvalBatch,
    RandomWindowSampler,
    SequentialWindows,
    Window,
    count_scored,
    plan_windows,
)
from bytelm.data.formats import FORMATS
from bytelm.data.shards import ByteSplit, open_split
from bytelm.data.sources import Input, iter_documents, iter_stream, resolve_inputs
from bytelm.data.splits import (
    ENWIK8_MD5,
    SPLIT_RULES,
    SPLITS,
    fraction_cuts,
    load_meta,
    prepare,
    split_enwik8,
    split_from_name,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "ENWIK8_MD5",
    "FORMATS",
    "SPLITS",
    "SPLIT_RULES",
    "ByteSplit",
    "EvalBatch",
    "Input",
    "RandomWindowSampler",
    "SequentialWindows",
    "Window",
    "cache_root",
    "count_scored",
    "default_corpus_dir",
    "fraction_cuts",
    "iter_documents",
    "iter_stream",
    "load_meta",
    "open_split",
    "plan_windows",
    "prepare",
    "resolve_inputs",
    "split_enwik8",
    "split_from_name",
    "stdlib_files",
]
