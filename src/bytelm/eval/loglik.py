"""Log-likelihoods of byte spans, batched: what an evaluation harness asks a language model.

Every request is a byte string ``seq`` whose last ``n`` bytes are scored, each predicted from
the bytes before it. A request longer than the model's context ``C`` is cut into windows that
score ``<= C`` bytes each, every target exactly once, each window reading as much of the
preceding text as fits (lm-evaluation-harness's rolling rule: disjoint windows, so the first
byte of a window has one byte of context, except the first and the last window, which read up
to ``C`` bytes back). Windows of all requests are sorted by length and run ``batch_size`` at a
time, right-padded: a causal model's logits at a position never depend on later bytes (the
contract tests check this for every family), so padding changes no score.
"""
import torch

from bytelm.nn.loss import byte_cross_entropy


def pair_request(context: str, continuation: str, prefix: bytes = b"\n") -> tuple[bytes, int]:
    """(seq, n) scoring ``continuation`` after ``context`` (``prefix`` if the context is empty)."""
    x = continuation.encode("utf-8")
    return (context.encode("utf-8") or prefix) + x, len(x)


def rolling_request(text: str, prefix: bytes = b"\n") -> tuple[bytes, int]:
    """(seq, n) scoring every byte of ``text``, the first one after ``prefix``."""
    x = text.encode("utf-8")
    return prefix + x, len(x)


def windows(seq: bytes, n: int, context: int) -> list[tuple[bytes, int]]:
    """Splits "score the last n bytes of seq" into model calls.

    Returns [(inputs, k)]: feed ``inputs`` (<= context bytes); its last k logits predict the k
    bytes of seq that follow their positions. Needs ``n < len(seq)`` (a first byte to read).
    """
    if not 0 < n < len(seq):
        raise ValueError(f"need 0 < n < len(seq), got n={n}, len(seq)={len(seq)}")
    out, t = [], len(seq) - n
    while t < len(seq):
        m = min(context, len(seq) - t)
        end = t + m - 1  # inputs stop before the last target
        out.append((seq[max(0, end - context):end], m))
        t += m
    return out


@torch.no_grad()
def score_requests(model, requests: list[tuple[bytes, int]], batch_size: int = 16,
                   precision: str = "auto", progress: str | None = None) -> list[tuple[float, bool]]:
    """Sum of ln p over the last n bytes of each (seq, n), and whether greedy decoding
    (argmax at every scored byte) reproduces them.

    Args:
        model: a ByteLM.
        requests: (seq bytes, n) pairs, n < len(seq); n == 0 scores 0.0 (probability 1).
        batch_size: windows per forward.
        precision: "auto" (bf16 autocast on CUDA), "bf16" or "fp32".
        progress: a tqdm bar with this title over the batches (None: no bar).
    Returns:
        [(log-likelihood in nats, is_greedy)] in the order of ``requests``.
    """
    from bytelm.precision import autocast_ctx
    device = next(model.parameters()).device
    C = model.config.context
    jobs = [(i, inp, k, seq_part) for i, (seq, n) in enumerate(requests) if n
            for inp, k, seq_part in _with_targets(seq, n, C)]
    jobs.sort(key=lambda j: -len(j[1]))
    total = [0.0] * len(requests)
    greedy = [True] * len(requests)
    starts = range(0, len(jobs), batch_size)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc=progress, unit="batch", dynamic_ncols=True)
    for b in starts:
        chunk = jobs[b:b + batch_size]
        T = len(chunk[0][1])
        x = torch.zeros(len(chunk), T, dtype=torch.long)
        y = torch.zeros(len(chunk), T, dtype=torch.long)
        mask = torch.zeros(len(chunk), T, dtype=torch.bool)
        for r, (_, inp, k, tgt) in enumerate(chunk):
            L = len(inp)
            x[r, :L] = torch.tensor(list(inp))
            y[r, L - k:L] = torch.tensor(list(tgt))
            mask[r, L - k:L] = True
        x, y, mask = x.to(device), y.to(device), mask.to(device)
        with autocast_ctx(device, precision):
            logits = model(x).logits
        nll = byte_cross_entropy(logits, y, reduction="none").double()
        hit = (logits.argmax(-1) == y) | ~mask
        for r, (i, *_rest) in enumerate(chunk):
            total[i] -= float(nll[r][mask[r]].sum())
            greedy[i] = greedy[i] and bool(hit[r].all())
    return list(zip(total, greedy))


def _with_targets(seq: bytes, n: int, context: int):
    """windows() plus the target bytes each window scores."""
    t = len(seq) - n
    for inp, k in windows(seq, n, context):
        yield inp, k, seq[t:t + k]
        t += k
