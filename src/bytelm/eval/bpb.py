"""Bits per byte over a whole split, with documented context handling.

The split is cut into windows of ``seq_len`` targets starting every ``stride`` bytes
(``bytelm.data.SequentialWindows``). Every byte 1..N-1 is scored exactly once (byte 0 has no
context and is not scored). With stride == seq_len (the default) windows do not overlap and a
byte at offset j of its window is predicted from the j bytes before it in that window; with
stride < seq_len each window re-reads seq_len - stride bytes already scored, so every byte after
the first window sees at least seq_len - stride bytes of context.

bpb = (sum of -ln p(byte) over scored bytes) / (number of scored bytes * ln 2).
Bits per character divides the same total by the number of UTF-8 characters among the scored
bytes (bytes that are not continuation bytes 0b10xxxxxx).
"""
import math
from dataclasses import dataclass
from typing import Iterator

import torch

from bytelm.nn.loss import byte_cross_entropy


@dataclass
class ScoredBatch:
    """One batch of evaluation windows after the forward pass.

    index: the batch's number in the windows' order (its windows are
    ``windows.windows[index * batch_size:][:B]``); x, y, mask: (B, seq_len) inputs, targets and
    score mask on the model's device; logits: (B, seq_len, 256); nll: (B, seq_len) fp32 nats.
    """

    index: int
    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor
    logits: torch.Tensor
    nll: torch.Tensor


def score_batches(model, windows, precision: str = "auto", rank: int = 0, world: int = 1,
                  progress: bool = False) -> Iterator[ScoredBatch]:
    """The forward pass of evaluation, shared by ``evaluate_bpb`` and per-byte views
    (``bytelm.eval.surprisal``) so both score every byte identically.

    Args:
        model: a ByteLM (or a wrapper of one).
        windows: a ``bytelm.data.SequentialWindows``.
        precision: "auto" (bf16 autocast on CUDA), "bf16" or "fp32".
        rank, world: under torchrun each rank scores every world-th batch.
        progress: show a tqdm bar.
    Yields:
        a ScoredBatch per batch this rank scores, in order.
    """
    from bytelm.precision import autocast_ctx
    device = next(model.parameters()).device
    it = enumerate(windows)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, total=len(windows), desc="eval", unit="batch", dynamic_ncols=True)
    for i, (x, y, mask) in it:
        if i % world != rank:
            continue
        x, y, mask = x.to(device), y.to(device), mask.to(device)
        with torch.no_grad():
            with autocast_ctx(device, precision):
                logits = model(x).logits
            nll = byte_cross_entropy(logits, y, reduction="none")
        yield ScoredBatch(i, x, y, mask, logits, nll)


def add_totals(totals: torch.Tensor, b: ScoredBatch) -> None:
    """Adds a batch's scored nats, bytes and UTF-8 characters to totals (3,) float64."""
    is_char = (b.y & 0xC0) != 0x80
    totals[0] += (b.nll.double() * b.mask).sum()
    totals[1] += b.mask.sum()
    totals[2] += (b.mask & is_char).sum()


def totals_result(totals: torch.Tensor) -> dict:
    """{"bpb", "bits_per_char", "nats", "n_bytes", "n_chars"} of summed totals (3,)."""
    nats, n_bytes, n_chars = totals.tolist()
    return {"bpb": nats / (n_bytes * math.log(2)), "bits_per_char": nats / (max(n_chars, 1) * math.log(2)),
            "nats": nats, "n_bytes": int(n_bytes), "n_chars": int(n_chars)}


@torch.no_grad()
def evaluate_bpb(model, split, seq_len: int, stride: int = 0, batch_size: int = 8,
                 max_bytes: int | None = None, precision: str = "auto", info=None,
                 progress: bool = False, by_offset: int = 0) -> dict:
    """Scores ``split`` (a ByteSplit or uint8 array) with ``model``.

    Args:
        model: a ByteLM (or a DDP/compiled wrapper of one).
        split: the bytes to score.
        seq_len: window length in targets (<= the model's context).
        stride: window spacing, 0 means seq_len.
        batch_size: windows per forward.
        max_bytes: score only the first max_bytes bytes (None: the whole split).
        precision: "auto" (bf16 autocast on CUDA), "bf16" or "fp32".
        info: DistInfo; under torchrun each rank scores every world_size-th batch and the
            totals are summed.
        by_offset: P > 0 also splits the bits by the target byte's offset in its P-byte block
            of the window (the byte at window position t has offset t mod P; position 0 is the
            window's first input byte): for a model with P-byte patches aligned to its input
            (AGIFORMER), offset 0 is the first byte of a patch, predicted from the previous
            patch's latent alone.
    Returns:
        {"bpb", "bits_per_char", "nats", "n_bytes", "n_chars", "seq_len", "stride"}, plus
        "by_offset": [{"offset", "bpb", "n_bytes"} for offsets 0..P-1] when by_offset > 0.
    """
    from bytelm.data import SequentialWindows
    device = next(model.parameters()).device
    windows = SequentialWindows(split, seq_len, stride or seq_len, batch_size, max_bytes)
    totals = torch.zeros(3, dtype=torch.float64, device=device)  # nats, bytes, chars
    per_off = torch.zeros(2, max(by_offset, 1), dtype=torch.float64, device=device)  # nats, bytes
    rank, world = (info.rank, info.world_size) if info is not None else (0, 1)
    for b in score_batches(model, windows, precision, rank, world, progress):
        y, mask, nll = b.y, b.mask, b.nll
        add_totals(totals, b)
        if by_offset:
            # target column j is the byte at window position j + 1
            off = (torch.arange(1, y.shape[1] + 1, device=device) % by_offset).expand_as(y)
            per_off[0].index_add_(0, off[mask], nll.double()[mask])
            per_off[1].index_add_(0, off[mask], torch.ones_like(off[mask], dtype=torch.float64))
    if world > 1:
        import torch.distributed as dist
        dist.all_reduce(totals)
        dist.all_reduce(per_off)
    res = {**totals_result(totals), "seq_len": seq_len, "stride": stride or seq_len}
    if by_offset:
        res["by_offset"] = [{"offset": o, "bpb": n / (max(c, 1) * math.log(2)), "n_bytes": int(c)}
                            for o, (n, c) in enumerate(zip(*per_off.tolist()))]
    return res
