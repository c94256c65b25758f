"""Memory numbers for bench results: device peak, free memory, and the host's peak RSS."""
import gc
import resource
import sys

import torch


def reset_peak(device) -> None:
    """Frees cached blocks and restarts CUDA peak-memory tracking (no-op on CPU)."""
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def device_peak_gib(device) -> float | None:
    """CUDA max_memory_allocated since the last ``reset_peak``, GiB; None on CPU."""
    if torch.device(device).type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**30


def host_peak_rss_gib() -> float:
    """Peak resident memory of this whole process so far (getrusage maxrss), GiB.

    Not per-measurement: it only grows, so it bounds each row from above (the CPU stand-in for
    the CUDA peak).
    """
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes
    return rss / 2**30 if sys.platform == "darwin" else rss / 2**20


def free_bytes(device) -> int | None:
    """Memory a new allocation can still get on ``device``: CUDA free memory, or the host's
    MemAvailable on CPU (None when unknown)."""
    if torch.device(device).type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def failure_status(err: BaseException) -> str:
    """The row status for an exception raised while timing one case: an out-of-memory error is
    "skipped: out of memory" (too big for this device, a result), anything else "error: ..."."""
    if is_oom(err):
        return "skipped: out of memory"
    first = (str(err).strip().splitlines() or [""])[0][:200]
    return f"error: {type(err).__name__}: {first}"


def is_oom(err: BaseException) -> bool:
    """True for an out-of-memory error (CUDA or a failed CPU allocation)."""
    if isinstance(err, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    msg = str(err)
    return isinstance(err, RuntimeError) and ("out of memory" in msg
                                              or "can't allocate memory" in msg)
