import math

import pytest
import torch

from bytelm.errors import UserError
from bytelm.patching import EntropyModelPatcher, fit_threshold, next_byte_entropy

from .lm import tiny_lm

TEXT = ("Entropy patching starts a new patch where the next byte is hard to predict. "
        "Merhaba dünya! 日本語 😀 ").encode() * 6


def direct_entropy(model, x):
    logp = model(x).logits.float().log_softmax(-1)
    return -(logp.exp() * logp).sum(-1) / math.log(2)


def test_next_byte_entropy_short_input_is_one_window():
    m = tiny_lm()
    x = torch.tensor([list(TEXT[:100]), list(TEXT[100:200])])
    with torch.no_grad():
        torch.testing.assert_close(next_byte_entropy(m, x), direct_entropy(m, x))


@pytest.mark.parametrize("stride", [0, 32, 128])
def test_next_byte_entropy_windows(stride):
    m = tiny_lm()
    C = m.config.context
    S = stride or C // 2
    x = torch.tensor([list(TEXT[:411])])
    h = next_byte_entropy(m, x, stride=stride, batch_size=3)
    assert h.shape == x.shape
    for t in [0, 5, C - 1, C, C + S - 1, C + S, 300, 410]:
        # the window scoring t: the first if t < C, else the one whose last S bytes hold t
        s = 0 if t < C else ((t - C) // S + 1) * S
        with torch.no_grad():
            want = direct_entropy(m, x[:, s:s + C])[0, t - s]
        torch.testing.assert_close(h[0, t], want, atol=1e-5, rtol=1e-5)


def test_entropy_model_patcher_candidates_and_mode():
    m = tiny_lm()
    m.train()
    p = EntropyModelPatcher(model=m, threshold=3.0, min_size=1, max_size=0, utf8=False)
    x = torch.tensor([list(TEXT[:120])])
    with torch.no_grad():
        want = direct_entropy(m.eval(), x) > 3.0
    m.train()
    assert torch.equal(p(x), want)
    assert m.training  # restored
    m.eval()


def test_entropy_model_from_path(tmp_path):
    tiny_lm().save(tmp_path / "lm")
    p = EntropyModelPatcher(path=str(tmp_path / "lm"), threshold=3.0)
    q = EntropyModelPatcher(model=tiny_lm(), threshold=3.0)
    x = torch.tensor([list(TEXT[:200])])
    assert torch.equal(p(x), q(x))
    with pytest.raises(UserError, match="needs a model"):
        EntropyModelPatcher()
    with pytest.raises(UserError, match="not found"):
        EntropyModelPatcher(path=str(tmp_path / "nope"))
    with pytest.raises(UserError, match="stride"):
        EntropyModelPatcher(model=tiny_lm(), stride=1000)


def test_fit_threshold():
    p = EntropyModelPatcher(model=tiny_lm(), min_size=1, max_size=32)
    thetas = []
    for target in (2.0, 4.0, 8.0):
        theta = fit_threshold(p, TEXT, target)
        p.config.threshold = theta
        ends = p(torch.tensor(list(TEXT)))
        mean = len(TEXT) / (int(ends.sum()) + (not ends[-1]))
        assert abs(mean - target) / target < 0.15, (target, mean)
        thetas.append(theta)
    assert thetas == sorted(thetas)
    with pytest.raises(UserError, match="target"):
        fit_threshold(p, TEXT, 0.5)


def test_loaded_lm_follows_the_data_device(tmp_path, monkeypatch):
    """An LM the patcher loaded itself moves to the bytes' device (a BSFIN moved to the GPU
    would otherwise score every batch with its patcher's LM on the CPU); a model passed in is
    left where it is. The meta device stands in for a second device; the LM's forward is
    stubbed (it cannot run on meta), the move is what is checked."""
    import bytelm.patching.entropy as E
    tiny_lm().save(tmp_path / "lm")
    owned = EntropyModelPatcher(path=str(tmp_path / "lm"), threshold=2.0)
    passed = EntropyModelPatcher(model=tiny_lm(), threshold=2.0)
    x = torch.randint(0, 256, (2, 40), dtype=torch.uint8)
    assert owned.scores(x).shape == (2, 40)  # same device: no move, real forward
    moves = []
    for p in (owned, passed):
        monkeypatch.setattr(p.model, "to", lambda *a, _p=p, **k: moves.append((_p, a)))
    monkeypatch.setattr(E, "next_byte_entropy", lambda model, x, *a: torch.zeros(x.shape, device=x.device))
    owned.scores(x.to("meta"))
    passed.scores(x.to("meta"))
    assert moves == [(owned, (torch.device("meta"),))]
