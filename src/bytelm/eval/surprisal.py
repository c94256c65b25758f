"""Per-byte surprisal of a text, scored exactly as ``bytelm eval`` scores a split.

The bytes are cut into the same windows (``bytelm.data.SequentialWindows``) and run through the
same forward pass (``bytelm.eval.bpb.score_batches``), so the totals equal ``evaluate_bpb`` on
the same bytes with the same seq_len, stride and batch size: byte 0 has no context and is not
scored, and a byte at offset j of its window is predicted from the j bytes before it.

Patch boundaries come from the model's own ``patch_ends`` on each window's input, the grouping
its forward used: the flag of byte i is taken from the window that scores byte i + 1 (the last
byte is never an input, so its flag is False).
"""
import math
from dataclasses import dataclass

import numpy as np
import torch

from bytelm.eval.bpb import add_totals, score_batches, totals_result


@dataclass
class ByteScores:
    """Per-byte scores of N bytes.

    bits: (N,) float64, -log2 p(byte i | the bytes before it in its window); NaN for byte 0.
    top_bytes, top_probs: (N, k) the k most likely bytes the model expected at position i and
        their probabilities (row 0 is -1 / 0: nothing predicts byte 0).
    ends: (N,) bool patch ends (``ByteLM.patch_ends``), or None for a model without patches.
    totals: ``evaluate_bpb``'s keys (bpb, bits_per_char, nats, n_bytes, n_chars, seq_len, stride).
    """

    bits: np.ndarray
    top_bytes: np.ndarray
    top_probs: np.ndarray
    ends: np.ndarray | None
    totals: dict


@torch.no_grad()
def score_bytes(model, data: bytes, seq_len: int, stride: int = 0, batch_size: int = 8,
                top_k: int = 5, precision: str = "auto") -> ByteScores:
    """Scores every byte of ``data`` with ``model`` as ``bytelm eval`` would.

    Args:
        model: a ByteLM in eval mode.
        data: at least 2 bytes.
        seq_len: window length in targets (<= the model's context); eval's default is the context.
        stride: window spacing, 0 means seq_len.
        batch_size: windows per forward (eval's default 8; the same value gives identical sums).
        top_k: candidates kept per byte.
        precision: "auto" (bf16 autocast on CUDA), "bf16" or "fp32".
    Returns:
        ByteScores.
    """
    from bytelm.data import SequentialWindows
    arr = np.frombuffer(bytes(data), dtype=np.uint8)
    windows = SequentialWindows(arr, seq_len, stride or seq_len, batch_size)
    n = len(arr)
    device = next(model.parameters()).device
    totals = torch.zeros(3, dtype=torch.float64, device=device)
    bits = np.full(n, np.nan)
    top_bytes = np.full((n, top_k), -1, dtype=np.int64)
    top_probs = np.zeros((n, top_k))
    ends = None
    for b in score_batches(model, windows, precision):
        add_totals(totals, b)
        group = windows.windows[b.index * batch_size:][:b.x.shape[0]]
        probs, cand = torch.softmax(b.logits.float(), -1).topk(top_k, dim=-1)  # (B, S, k)
        flags = model.patch_ends(b.x)
        if flags is not None and ends is None:
            ends = np.zeros(n, dtype=bool)
        nll, probs, cand = b.nll.double().cpu().numpy(), probs.double().cpu().numpy(), cand.cpu().numpy()
        flags = flags.cpu().numpy() if flags is not None else None
        for r, w in enumerate(group):
            # target column j scores byte start + j + 1; input column j holds byte start + j
            j = np.arange(w.skip, w.n_targets)
            pos = w.start + j + 1
            bits[pos] = nll[r, j] / math.log(2)
            top_bytes[pos], top_probs[pos] = cand[r, j], probs[r, j]
            if flags is not None:
                ends[pos - 1] = flags[r, j]
    res = {**totals_result(totals), "seq_len": seq_len, "stride": stride or seq_len}
    return ByteScores(bits, top_bytes, top_probs, ends, res)
