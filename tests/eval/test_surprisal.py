import math

import numpy as np
import pytest
import torch

import bytelm
from bytelm.eval.bpb import evaluate_bpb
from bytelm.eval.surprisal import score_bytes

DATA = ("héllo wörld, çiçek ağaç " * 20).encode()


@pytest.mark.parametrize("preset", ["transformer-tiny", "bsfin-tiny", "agiformer-tiny"])
@pytest.mark.parametrize("stride, batch_size", [(0, 8), (20, 3)])
def test_score_bytes_equals_eval(preset, stride, batch_size, one_thread):
    """Same windows, same forward: the totals are evaluate_bpb's exactly, and every byte's bits
    are the log-probability its window gives it (a window run alone, byte by byte)."""
    m = bytelm.create_model(preset, context=32).eval()
    arr = np.frombuffer(DATA, dtype=np.uint8)
    ref = evaluate_bpb(m, arr, seq_len=32, stride=stride, batch_size=batch_size)
    s = score_bytes(m, DATA, 32, stride, batch_size=batch_size, top_k=3)
    assert s.totals == ref
    assert math.isnan(s.bits[0]) and not np.isnan(s.bits[1:]).any()
    assert s.bits[1:].sum() * math.log(2) == pytest.approx(ref["nats"], rel=1e-9)
    # byte 40 against the window that scores it, run alone
    step = stride or 32
    start = max(0, (40 - 1 - (32 - step)) // step * step) if stride else (40 - 1) // 32 * 32
    with torch.no_grad():
        logp = torch.log_softmax(m(torch.tensor([list(DATA[start:start + 32])])).logits.double(), -1)[0]
    assert s.bits[40] == pytest.approx(-logp[40 - start - 1, DATA[40]].item() / math.log(2), rel=1e-4)
    top = logp[40 - start - 1].topk(3)
    assert s.top_bytes[40].tolist() == top.indices.tolist()
    assert s.top_probs[40] == pytest.approx(top.values.exp().numpy(), rel=1e-4)
    assert s.top_bytes[0].tolist() == [-1] * 3


def test_patch_ends_are_the_models_own(one_thread):
    gpt = bytelm.create_model("transformer-tiny", context=32).eval()
    assert score_bytes(gpt, DATA, 32).ends is None
    agi = bytelm.create_model("agiformer-tiny", context=32).eval()
    ends = score_bytes(agi, DATA, 32).ends
    P = agi.config.patch_size
    # fixed patches aligned to each 32-byte window; the last byte is never an input
    assert ends[:-1].tolist() == [(i % 32 + 1) % P == 0 for i in range(len(DATA) - 1)]
    bsfin = bytelm.create_model("bsfin-tiny", context=32).eval()
    s = score_bytes(bsfin, DATA, 32)
    with torch.no_grad():
        second = bsfin.boundaries(torch.tensor([list(DATA[32:64])]))[0]
    assert s.ends[32:64].tolist() == second.tolist()
    assert 0 < s.ends.sum() < len(DATA) - 1
