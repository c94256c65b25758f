"""Learning-rate schedule shapes: warmup, cosine, wsd, constant."""
import math

import pytest

from bytelm.train.schedule import lr_factor

TOTAL, WARM, MIN = 100, 10, 0.1


def curve(kind, total=TOTAL, warmup=WARM, **kw):
    return [lr_factor(s, total, warmup, kind, min_ratio=MIN, **kw) for s in range(total + 1)]


@pytest.mark.parametrize("kind", ["cosine", "wsd", "constant"])
def test_linear_warmup(kind):
    f = curve(kind)
    assert f[0] == pytest.approx(1 / WARM)  # step 0 already moves
    assert all(f[s] == pytest.approx((s + 1) / WARM) for s in range(WARM))
    assert f[WARM - 1] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(f[:WARM - 1], f[1:WARM]))


@pytest.mark.parametrize("kind", ["cosine", "wsd"])
def test_decay_is_monotone_from_peak_to_min(kind):
    f = curve(kind)
    post = f[WARM:]
    assert post[0] == pytest.approx(1.0)
    assert all(b <= a + 1e-12 for a, b in zip(post, post[1:]))
    assert f[TOTAL] == pytest.approx(MIN)  # reaches min_lr_ratio at the end of the run
    assert min(f) >= MIN - 1e-12 and max(f) <= 1.0 + 1e-12
    # past the end it stays at the floor
    assert lr_factor(TOTAL + 50, TOTAL, WARM, kind, min_ratio=MIN) == pytest.approx(MIN)


def test_cosine_midpoint():
    mid = WARM + (TOTAL - WARM) // 2
    assert lr_factor(mid, TOTAL, WARM, "cosine", MIN) == pytest.approx(MIN + (1 - MIN) / 2)
    assert lr_factor(mid, TOTAL, WARM, "cosine", MIN) == pytest.approx(
        MIN + (1 - MIN) * 0.5 * (1 + math.cos(math.pi * 0.5)))


def test_wsd_stable_then_linear_decay():
    f = curve("wsd", decay_frac=0.2)
    start = WARM + int(0.8 * (TOTAL - WARM))  # the last 20% of the post-warmup span decays
    assert all(v == 1.0 for v in f[WARM:start + 1])
    assert f[start + 1] < 1.0
    tail = f[start:]
    diffs = [a - b for a, b in zip(tail, tail[1:])]
    assert all(d == pytest.approx(diffs[0]) for d in diffs)  # linear
    assert f[TOTAL] == pytest.approx(MIN)


def test_constant_after_warmup():
    assert all(v == 1.0 for v in curve("constant")[WARM:])


def test_no_warmup_and_degenerate_lengths():
    assert lr_factor(0, 10, 0, "cosine", MIN) == 1.0
    assert lr_factor(0, 1, 0, "wsd", MIN) == 1.0
    # warmup longer than the run: still finite and within (0, 1]
    for s in range(5):
        assert 0 < lr_factor(s, 3, 10, "cosine", MIN) <= 1
    with pytest.raises(ValueError):
        lr_factor(20, 10, 0, "linear")


def test_effective_warmup_is_capped_by_the_run_length():
    from bytelm.train.schedule import effective_warmup
    assert effective_warmup(200, 60, 0.25) == 15
    assert effective_warmup(200, 60, 0.0) == 200
    assert effective_warmup(5, 20, 0.25) == 5 and effective_warmup(0, 20, 0.25) == 0
    assert effective_warmup(200, 2, 0.25) == 1


def test_short_run_warns_and_reaches_its_peak_lr(make_cfg, tmp_path, caplog):
    """The default 200-step warmup on an 8-step run: shortened to 2 steps, with a warning."""
    from bytelm.train.loop import train
    from bytelm.train.metrics import read_metrics
    cfg = make_cfg(tmp_path / "R", {"train.steps": 8, "optim.warmup_steps": 200,
                                    "optim.schedule": "constant"})
    with caplog.at_level("WARNING"):
        train(cfg)
    assert "warmup_steps=200 is more than 0.25 of the run's 8 steps: warming up over 2" in caplog.text
    lrs = [r["lr"] for r in read_metrics(tmp_path / "R") if r["kind"] == "train"]
    assert lrs[0] == pytest.approx(cfg.optim.lr / 2) and lrs[-1] == pytest.approx(cfg.optim.lr)
