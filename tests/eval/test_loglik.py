"""Batched byte log-likelihoods: windows cover every target once; scores equal a direct forward,
bytelm eval's bits per byte, and do not depend on batching (right padding)."""
import math

import numpy as np
import pytest
import torch

import bytelm
from bytelm.eval.bpb import evaluate_bpb
from bytelm.eval.loglik import pair_request, rolling_request, score_requests, windows


@pytest.mark.parametrize("length,n,C", [(5, 4, 8), (40, 39, 8), (41, 10, 8), (17, 16, 16), (100, 3, 7)])
def test_windows(length, n, C):
    seq = bytes(range(length))
    covered = []
    for inp, k in windows(seq, n, C):
        assert 1 <= k <= len(inp) <= C
        # the last k inputs are followed by their targets in seq: inputs end right before the last one
        end = seq.index(inp[-1]) + 1 if inp else 0
        covered += list(range(end - k + 1, end + 1))
        # as much context as fits: a window is shorter than C only at the start of seq
        assert len(inp) == C or inp == seq[:len(inp)]
    assert covered == list(range(length - n, length))


def test_windows_bad():
    with pytest.raises(ValueError):
        windows(b"ab", 2, 4)


def _direct(model, seq: bytes, n: int) -> tuple[float, bool]:
    """ln p of the last n bytes of seq (len(seq) - 1 <= context) from one forward."""
    x = torch.tensor([list(seq)])
    with torch.no_grad():
        logp = torch.log_softmax(model(x[:, :-1]).logits.double(), -1)[0]
    tgt = x[0, 1:]
    lp = logp[torch.arange(len(tgt)), tgt][-n:]
    return float(lp.sum()), bool((logp.argmax(-1) == tgt)[-n:].all())


@pytest.mark.parametrize("preset", ["transformer-tiny", "agiformer-tiny", "bsfin-tiny"])
def test_score_requests(preset, one_thread):
    """Equal to a direct forward per request, at any batch size (right padding is harmless)."""
    torch.manual_seed(0)
    model = bytelm.create_model(preset).eval()
    g = np.random.default_rng(0)
    reqs = [pair_request("The cat", " sat"), pair_request("", "x"), rolling_request("hello world"),
            (bytes(g.integers(0, 256, 129).tolist()), 100), pair_request("a", "")]
    want = [_direct(model, s, n) if n else (0.0, True) for s, n in reqs]
    for bs in (1, 3, 16):
        got = score_requests(model, reqs, batch_size=bs, precision="fp32")
        for (ll, gr), (wll, wgr) in zip(got, want):
            assert ll == pytest.approx(wll, rel=1e-5, abs=1e-5)
            assert gr == wgr


def test_score_greedy(one_thread):
    """is_greedy: True for the model's own greedy continuation, False once a byte differs."""
    from bytelm.generate.batch import generate_bytes
    torch.manual_seed(0)
    model = bytelm.create_model("transformer-tiny").eval()
    cont = generate_bytes(model, "Hello", max_bytes=12, temperature=0)
    wrong = cont[:5] + bytes([(cont[5] + 1) % 256]) + cont[6:]
    res = score_requests(model, [(b"Hello" + cont, 12), (b"Hello" + wrong, 12)], precision="fp32")
    assert res[0][1] and not res[1][1]
    assert res[0][0] > res[1][0]


def test_rolling_equals_bpb(one_thread):
    """A long document scored in rolling windows == bytelm eval over the same bytes (every byte
    after the first, non-overlapping windows of the context)."""
    torch.manual_seed(0)
    model = bytelm.create_model("transformer-tiny").eval()
    C = model.config.context
    data = bytes(np.random.default_rng(1).integers(0, 256, 3 * C + 1).tolist())
    (ll, _), = score_requests(model, [(data, len(data) - 1)], batch_size=2, precision="fp32")
    res = evaluate_bpb(model, np.frombuffer(data, dtype=np.uint8), seq_len=C, precision="fp32")
    assert res["n_bytes"] == len(data) - 1
    assert -ll == pytest.approx(res["nats"], rel=1e-6)
    assert -ll / ((len(data) - 1) * math.log(2)) == pytest.approx(res["bpb"], rel=1e-6)
