"""Contract tests every registered model family must pass; a family's test module calls
``contract_tests(preset)`` to get them parametrized over its tiny preset."""
import copy

import pytest
import torch

import bytelm
from bytelm.nn.loss import byte_cross_entropy


def parse_spec(spec: str) -> tuple[str, dict]:
    """'agiformer-tiny[decoder=gru,window=4]' -> ('agiformer-tiny', {'decoder': 'gru', 'window': '4'})."""
    if "[" not in spec:
        return spec, {}
    name, rest = spec.split("[", 1)
    overrides = dict(kv.split("=", 1) for kv in rest.rstrip("]").split(","))
    return name, overrides


def _model(spec: str, **extra):
    from bytelm.overrides import apply_overrides
    from bytelm.registry import model_class, preset_config
    name, overrides = parse_spec(spec)
    cfg = apply_overrides(preset_config(name), {**overrides, **extra}, "model")
    torch.manual_seed(0)
    return model_class(cfg)(cfg).eval()


def check_causality(preset: str) -> None:
    """Perturbing byte t+k never changes logits at positions <= t (exactly, fp32)."""
    m = _model(preset)
    T = m.config.context
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (2, T), generator=g)
    with torch.no_grad():
        base = m(x).logits
        # every offset inside a patch (t % 4 = 0..3), patch edges, the middle and the end
        for t in sorted({0, 1, 2, 3, 4, 5, 6, 7, T // 3, T // 2 - 1, T // 2, T // 2 + 1, T - 2}):
            y = x.clone()
            y[:, t + 1:] = torch.randint(0, 256, (2, T - t - 1), generator=g)
            out = m(y).logits
            assert torch.equal(out[:, : t + 1], base[:, : t + 1]), f"future bytes leak into position {t}"
            # and the perturbation is visible afterwards (the test could fail)
            assert not torch.equal(out[:, t + 1:], base[:, t + 1:])
            # a single byte changed k positions ahead
            for k in (1, 2, 5):
                if t + k < T:
                    y = x.clone()
                    y[:, t + k] = (y[:, t + k] + 1) % 256
                    assert torch.equal(m(y).logits[:, : t + k], base[:, : t + k]), (t, k)


def check_cached_equals_full(preset: str) -> None:
    """init_state/step over chunks (prefill, single bytes, a chunk) == one full forward."""
    m = _model(preset)
    T = m.config.context
    x = torch.randint(0, 256, (2, T), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = m(x).logits
        state = m.init_state(2)
        pieces, i = [], 0
        for n in [T // 4, 1, 1, 3, T // 4]:
            logits, state = m.step(x[:, i:i + n], state)
            pieces.append(logits)
            i += n
        logits, state = m.step(x[:, i:], state)
        pieces.append(logits)
    torch.testing.assert_close(torch.cat(pieces, 1), full, rtol=1e-4, atol=1e-4)


def check_batched_equals_single(preset: str) -> None:
    """Rows of a batch do not interact."""
    m = _model(preset)
    x = torch.randint(0, 256, (3, m.config.context // 2))
    with torch.no_grad():
        both = m(x).logits
        one = m(x[1:2]).logits
    torch.testing.assert_close(both[1:2], one, rtol=1e-5, atol=1e-5)


def check_one_step_lowers_loss(preset: str) -> None:
    m = _model(preset).train()
    x = torch.randint(0, 256, (4, m.config.context + 1), generator=torch.Generator().manual_seed(3))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    losses = []
    for _ in range(3):
        out = m(x[:, :-1])
        loss = byte_cross_entropy(out.logits, x[:, 1:]) + out.aux_loss
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < losses[0]


def check_save_load(preset: str, tmp_path) -> None:
    m = _model(preset)
    m.save(tmp_path / "ckpt")
    m2 = bytelm.load(tmp_path / "ckpt")
    assert type(m2) is type(m) and m2.config == m.config
    x = torch.randint(0, 256, (2, 17))
    with torch.no_grad():
        assert torch.equal(m(x).logits, m2(x).logits)


def check_output_contract(preset: str) -> None:
    m = _model(preset)
    x = torch.randint(0, 256, (2, 9), dtype=torch.uint8)
    out = m(x)
    assert out.logits.shape == (2, 9, 256) and out.logits.dtype == torch.float32
    assert torch.isfinite(out.logits).all()
    assert m.n_params() == sum(p.numel() for p in m.parameters())
    # at least the forward + backward of the parameters each byte passes through once
    fpb = m.flops_per_byte(m.config.context)
    assert 0 < fpb < float("inf")
    # deepcopy works (used by EMA / evaluation tools)
    copy.deepcopy(m)


CONTRACTS = {
    "causality": check_causality,
    "cached_equals_full": check_cached_equals_full,
    "batched_equals_single": check_batched_equals_single,
    "one_step_lowers_loss": check_one_step_lowers_loss,
    "output_contract": check_output_contract,
}


def full_recompute_greedy(model, prompt: bytes, n: int) -> bytes:
    """Reference greedy generation: the whole forward re-run for every byte, cropped to the
    last context/2 bytes whenever the sequence would exceed the context (the rule cached
    generation documents)."""
    ctx = model.config.context
    seq = bytearray(prompt)
    window_start = 0
    out = bytearray()
    for _ in range(n):
        if len(seq) - window_start > ctx:
            window_start = len(seq) - ctx // 2
        x = torch.tensor([list(seq[window_start:])])
        with torch.no_grad():
            b = int(model(x).logits[0, -1].argmax())
        out.append(b)
        seq.append(b)
    return bytes(out)


def check_static_decoder(spec: str, compile: str | None = None, prompt: int = 9,
                         n: int = 40, batch: int = 2, greedy: bool = True) -> None:
    """The fixed-shape decoder (``static_decoder``) == the full forward: its logits over a
    teacher-forced sequence (a prompt prefilled, then one byte per step), and its greedy bytes
    after a fixed prompt (``generate(decode="static")``) past the context."""
    from bytelm.generate import generate_bytes
    m = _model(spec)
    x = torch.randint(0, 256, (batch, prompt + n), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full = m(x).logits
        dec = m.build_static_decoder(batch, compile=compile, capacity=prompt + n)
        out = [dec.prefill(x[:, :prompt])]
        out += [dec.step(x[:, i])[:, None] for i in range(prompt, prompt + n)]
    torch.testing.assert_close(torch.cat(out, 1), full, rtol=1e-4, atol=1e-4)
    if dec.greedy_block > 1:  # k bytes per call == k steps with the argmax between them
        k = dec.greedy_block
        blk = m.build_static_decoder(batch, compile=compile, capacity=prompt + k)
        ref = m.build_static_decoder(batch, capacity=prompt + k)
        with torch.no_grad():
            nxt = blk.prefill(x[:, :prompt])[:, -1].argmax(-1)
            ref.prefill(x[:, :prompt])
            got, want, b = blk.greedy(nxt), [], nxt
            for _ in range(k):
                b = ref.step(b).argmax(-1)
                want.append(b)
        assert torch.equal(got, torch.stack(want, 1))
        assert blk.n_bytes == prompt + k and blk.capacity() == 0
    if greedy:
        small = _model(spec, context=24)
        fixed = b"The quick brown fox"
        assert generate_bytes(small, fixed, max_bytes=30, temperature=0, decode="static") \
            == full_recompute_greedy(small, fixed, 30)


def contract_tests(presets: list[str]):
    """Returns a test function parametrized over (preset, contract) plus a save/load test."""

    @pytest.mark.parametrize("contract", sorted(CONTRACTS))
    @pytest.mark.parametrize("preset", presets)
    def test_contract(preset, contract):
        CONTRACTS[contract](preset)

    @pytest.mark.parametrize("preset", presets)
    def test_save_load(preset, tmp_path):
        check_save_load(preset, tmp_path)

    return test_contract, test_save_load
