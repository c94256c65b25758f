"""Choose an op implementation: "auto" | "naive" | "chunk" | "triton"; env BYTELM_IMPL overrides auto.

"naive" is the fp32 reference loop, "chunk" the pure-PyTorch parallel form (any device),
"triton" the GPU kernel. ``BYTELM_IMPL=naive`` runs a whole model on the references.
"""
import os

import torch

IMPLS = ("auto", "naive", "chunk", "triton")
ENV_VAR = "BYTELM_IMPL"


def resolve_impl(impl: str, device, *, triton_available: bool = True,
                 prefer_triton: bool = True) -> str:
    """Turn a requested implementation into a concrete one for tensors on ``device``.

    Args:
        impl: "auto", "naive", "chunk" or "triton".
        device: torch.device (or str) of the op's inputs.
        triton_available: whether the op's GPU kernel can be imported here; auto falls back to
            "chunk" without it.
        prefer_triton: whether auto picks the GPU kernel on CUDA; an op keeps this False until
            its kernel has passed its GPU tests on our hardware (explicit "triton" still works).
    Returns:
        "naive", "chunk" or "triton". auto is the env BYTELM_IMPL when set, else "triton" on
        CUDA (when available) and "chunk" elsewhere.
    Raises:
        ValueError: unknown name (argument or env), or "triton" on a non-CUDA device.
    """
    if impl not in IMPLS:
        raise ValueError(f"unknown impl {impl!r}; expected one of {IMPLS}")
    is_cuda = torch.device(device).type == "cuda"
    if impl == "auto":
        env = os.environ.get(ENV_VAR, "").strip()
        if env and env != "auto":
            if env not in IMPLS:
                raise ValueError(f"{ENV_VAR}={env!r} is not one of {IMPLS}")
            impl = env
        else:
            return "triton" if is_cuda and triton_available and prefer_triton else "chunk"
    if impl == "triton":
        if not is_cuda:
            raise ValueError(f"impl 'triton' needs CUDA tensors, got device {torch.device(device)}")
        if not triton_available:
            raise ValueError("impl 'triton' requested but its GPU kernel is not importable here")
    return impl


def probe_once(probe):
    """A capability check (e.g. "can the GPU kernel be imported?") run once per process.

    Returns a function that calls ``probe()`` on its first call and then returns that result.
    Under torch.compile it is a constant (``torch.compiler.assume_constant_result``): Dynamo
    calls it instead of tracing the probe's imports (functools.lru_cache is ignored by Dynamo,
    which then traced the probe at every call). ``.reset()`` forgets the result (tests).
    """
    result: list[bool] = []

    @torch.compiler.assume_constant_result
    def check() -> bool:
        if not result:
            result.append(bool(probe()))
        return result[0]

    check.reset = result.clear
    return check

