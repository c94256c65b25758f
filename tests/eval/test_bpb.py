import math

import numpy as np
import pytest
import torch

import bytelm
from bytelm.eval.bpb import evaluate_bpb


def _naive_bpb(model, data: np.ndarray, seq_len: int, stride: int) -> tuple[float, int]:
    """Per-byte reference: byte i (1 <= i < N) is predicted from the window that scores it."""
    n = len(data)
    nats, count = 0.0, 0
    start = 0
    while True:
        n_t = min(seq_len, n - 1 - start)
        skip = 0 if start == 0 else seq_len - stride
        x = torch.tensor(data[start:start + n_t].astype(np.int64))[None]
        with torch.no_grad():
            logp = torch.log_softmax(model(x).logits.double(), -1)[0]
        for j in range(skip, n_t):
            nats -= logp[j, int(data[start + j + 1])].item()
            count += 1
        if start + n_t >= n - 1:
            break
        start += stride
    return nats / count / math.log(2), count


@pytest.mark.parametrize("stride", [32, 20])
def test_bpb_matches_naive_and_covers_all(stride):
    torch.manual_seed(0)
    m = bytelm.create_model("transformer-tiny", context=32).eval()
    data = np.frombuffer(("héllo wörld, " * 40).encode(), dtype=np.uint8)
    res = evaluate_bpb(m, data, seq_len=32, stride=stride, batch_size=3)
    ref, count = _naive_bpb(m, data, 32, stride)
    assert res["n_bytes"] == len(data) - 1 == count
    assert res["bpb"] == pytest.approx(ref, rel=1e-5)
    n_chars = sum(1 for b in data[1:] if (b & 0xC0) != 0x80)
    assert res["n_chars"] == n_chars
    assert res["bits_per_char"] == pytest.approx(ref * count / n_chars, rel=1e-5)


def test_untrained_model_is_near_uniform():
    torch.manual_seed(0)
    m = bytelm.create_model("transformer-tiny").eval()
    data = np.random.default_rng(0).integers(0, 256, 5000).astype(np.uint8)
    res = evaluate_bpb(m, data, seq_len=128)
    assert 7.9 < res["bpb"] < 8.2  # log2(256) = 8 for a near-uniform prediction


class _KnowsPatchStarts(torch.nn.Module):
    """Data 'abcd' repeated; the next byte is certain only where it opens a 4-byte block of the
    window (target column j with (j + 1) % 4 == 0), uniform elsewhere."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        B, T = x.shape
        logits = torch.zeros(B, T, 256)
        j = torch.arange(T)
        nxt = torch.tensor(list(b"abcd"))[(j + 1) % 4]
        opens = (j + 1) % 4 == 0
        logits[:, opens, :] = -50.0
        logits[:, opens, nxt[opens]] = 50.0
        return bytelm.models.base.ModelOutput(logits=logits + self.w)


@pytest.mark.parametrize("stride", [32, 24])
def test_bpb_by_offset(stride):
    data = np.frombuffer(b"abcd" * 60, dtype=np.uint8)
    res = evaluate_bpb(_KnowsPatchStarts(), data, seq_len=32, stride=stride, batch_size=2, by_offset=4)
    offs = res["by_offset"]
    assert [o["offset"] for o in offs] == [0, 1, 2, 3]
    assert sum(o["n_bytes"] for o in offs) == res["n_bytes"]
    assert offs[0]["bpb"] < 1e-6
    assert all(o["bpb"] == pytest.approx(8.0, abs=1e-6) for o in offs[1:])
    total = sum(o["bpb"] * o["n_bytes"] for o in offs) / res["n_bytes"]
    assert total == pytest.approx(res["bpb"], rel=1e-9)
