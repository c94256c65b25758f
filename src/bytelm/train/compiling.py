"""How the trainer compiles a model: the whole forward, or each repeated block ("regional").

``train.compile_scope=model`` wraps the whole forward in one ``torch.compile``: one graph, but its
compile time grows with the depth (every block is traced and code-generated again).
``train.compile_scope=blocks`` compiles each element of the model's ``nn.ModuleList``s in place
(``nn.Module.compile``): blocks of one class share one compiled graph (their weights are graph
inputs), so compile time is about that of one block per kind, and the glue between them runs
eagerly. Measured on 2 idle CPU cores, cold caches, batch 2 x 512, fp32
(benchmarks/results/compile/compile_scope_cpu.json): the first training step took 28.1 -> 17.0 s
(transformer-30m), 95.0 -> 37.8 s (agiformer-31m), 87.6 -> 38.9 s (bsfin-35m), 49.8 -> 26.1 s
(hnet-30m), the median step after it within -14% .. +8%. Not yet measured on a GPU, so "model"
stays the default. State-dict keys are the same in both scopes.
"""
from __future__ import annotations

import torch
from torch import nn


# Families whose compiled training step runs as CUDA graphs under compile_mode=auto: measured in
# real `bytelm train` on an H100 (2.5 minutes, the baseline's recipe). agiformer-31m: 2.70 M
# steady bytes/s with reduce-overhead (hnet/equal_time_2.5min_seeds_h100.json) against 1.49 M in
# the default mode (issue #20's measurement), validation matching its checkpoint's test score.
# The other families' training under CUDA graphs is not measured on a GPU, so they keep "default".
CUDA_GRAPH_FAMILIES = frozenset({"agiformer"})


def resolve_compile_mode(mode: str, family: str, device_type: str, world_size: int = 1,
                         curriculum: bool = False, grad_accum: int = 1) -> str:
    """train.compile_mode with "auto" resolved: "reduce-overhead" for a family of
    CUDA_GRAPH_FAMILIES on CUDA in one process without a curriculum (its stages change shapes
    and data, never measured under graphs) or gradient accumulation; "default" otherwise. Any
    other mode is returned as given."""
    if mode != "auto":
        return mode
    graphs = (family in CUDA_GRAPH_FAMILIES and device_type == "cuda" and world_size == 1
              and not curriculum and grad_accum == 1)
    return "reduce-overhead" if graphs else "default"


def compile_blocks(model: nn.Module, mode: str = "default") -> int:
    """Compiles, in place, every element of every ``nn.ModuleList`` inside ``model``.

    Nested lists are handled once: a block whose ancestor is already compiled is skipped.
    Returns the number of modules compiled (0 for a model without block lists).
    """
    done: list[nn.Module] = []
    for _, lst in model.named_modules():
        if not isinstance(lst, nn.ModuleList):
            continue
        for block in lst:
            if any(block is d or _contains(d, block) for d in done):
                continue
            block.compile(mode=mode)
            done.append(block)
    return len(done)


def _contains(parent: nn.Module, child: nn.Module) -> bool:
    return any(m is child for m in parent.modules())


def compiled_forward(model: nn.Module, scope: str, mode: str):
    """The callable the trainer runs: ``torch.compile(model)`` for scope "model", ``model`` with
    its blocks compiled in place for "blocks" (the whole model compiled when it has no block
    lists)."""
    if scope == "blocks":
        inner = model.module if hasattr(model, "module") else model  # DDP / FSDP wrappers
        if compile_blocks(inner, mode):
            return model
    elif scope != "model":
        raise ValueError(f"compile scope must be 'model' or 'blocks', got {scope!r}")
    return torch.compile(model, mode=mode)
