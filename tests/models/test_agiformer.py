import math

import pytest
import torch

import bytelm
from bytelm.models.agiformer.act import RecurrentReasoningBlock
from tests.contracts import contract_tests

CONFIGS = [
    "agiformer-tiny[memory_rule=delta]",
    "agiformer-tiny",
    "agiformer-tiny[decoder=gru]",
    "agiformer-tiny[mixer_gate=fixed,memory_normalize=false]",
    "agiformer-tiny[patch_kernel=4,encoder_norm=false]",
    "agiformer-tiny[patch_size=3,patch_kernel=5,context=96]",
    "agiformer-tiny[think_steps=0,window=2]",
    "agiformer-tiny[plasticity=0.1,lambda_min=0.9,encoder_norm_init=0.1]",
    "agiformer-tiny[decoder=local,decoder_window=6]",
]
test_contract, test_save_load = contract_tests(CONFIGS)


@pytest.mark.parametrize("name,target", [("agiformer-31m", 31e6), ("agiformer-129m", 129e6)])
def test_param_counts_near_names(name, target):
    m = bytelm.create_model(name)
    assert abs(m.n_params() - target) / target < 0.08, m.n_params()


def test_act_halting_and_ponder():
    torch.manual_seed(0)
    blk = RecurrentReasoningBlock(16, 32, max_steps=4).eval()
    x = torch.randn(2, 5, 16)
    torch.nn.init.constant_(blk.halt.bias, 20.0)  # h ~ 1: halt after the first step
    _, ponder, steps, _ = blk(x)
    assert torch.all(steps == 1) and torch.allclose(ponder, torch.full_like(ponder, 2.0), atol=1e-4)
    torch.nn.init.constant_(blk.halt.bias, -20.0)  # h ~ 0: run to max_steps, remainder ~ 1
    _, ponder, steps, _ = blk(x)
    assert torch.all(steps == 4) and torch.allclose(ponder, torch.full_like(ponder, 5.0), atol=1e-4)
    torch.nn.init.constant_(blk.halt.bias, 0.0)
    blk.train()
    out_train, p_train, s_train, _ = blk(x)
    blk.eval()
    out_eval, p_eval, s_eval, _ = blk(x)  # eval skips halted rows: same result
    torch.testing.assert_close(out_train, out_eval, rtol=1e-5, atol=1e-5)
    assert torch.equal(s_train, s_eval)
    assert ((s_train >= 1) & (s_train <= 4)).all()


def test_plasticity_knob():
    m = bytelm.create_model("agiformer-tiny").eval()
    x = torch.randint(0, 256, (1, 64))
    h = torch.randn(1, 16, m.config.d_model)
    a, g1 = m(x), m.memory.log_decay(h)
    m.set_plasticity(0.1)
    # the knob scales every step's decay lambda_t by alpha: log lambda moves by exactly log 0.1
    torch.testing.assert_close(m.memory.log_decay(h), g1 + math.log(0.1))
    b = m(x)
    assert b.stats["decay_mean"] < 0.11 < a.stats["decay_mean"]
    assert not torch.equal(a.logits, b.logits)
    # the curriculum's knob and the config field are one setting: same weights, same logits
    built = bytelm.create_model("agiformer-tiny", plasticity=0.1).eval()
    built.load_state_dict(m.state_dict())  # alpha is not in the state dict: it comes from config
    torch.testing.assert_close(built(x).logits, b.logits)
    m.set_plasticity(1.0)
    torch.testing.assert_close(m(x).logits, a.logits)
    with pytest.raises(ValueError):
        m.set_plasticity(0.0)


def test_stats_and_aux_loss():
    m = bytelm.create_model("agiformer-tiny").train()
    out = m(torch.randint(0, 256, (2, 128)))
    assert out.aux_loss.requires_grad and out.aux_loss > 0
    assert 1 <= out.stats["act_steps"] <= 3
    for k in ("decay_mean", "gate_mean", "act_dz", "ponder"):
        assert torch.isfinite(torch.as_tensor(out.stats[k]))


def test_short_inputs():
    m = bytelm.create_model("agiformer-tiny").eval()
    for T in (1, 2, 3, 4, 5):
        assert m(torch.randint(0, 256, (2, T))).logits.shape == (2, T, 256)


@pytest.mark.parametrize("plasticity", [0.1, 0.5])
def test_stable_200_steps_bf16(plasticity, small_corpus, tmp_path):
    from bytelm.options import build_run_config
    from bytelm.train.loop import train
    cfg = build_run_config("agiformer-tiny", {
        "data.path": str(small_corpus), "train.steps": 200, "train.batch_size": 4,
        "train.precision": "bf16", "train.device": "cpu", "train.eval_every": 0,
        "train.eval_bytes": 4000, "train.log_every": 50, "train.progress": False,
        "train.out_dir": str(tmp_path / "run"), "model.plasticity": plasticity,
        "optim.lr": 3e-3, "optim.warmup_steps": 20})
    summary = train(cfg)  # raises NonFiniteLossError on any NaN/Inf loss, grad norm or weight
    assert summary["steps"] == 200 and summary["val_bpb"] < 6.0


def test_changing_plasticity_does_not_recompile():
    """The curriculum changes alpha at stage boundaries and around every validation; a compiled
    model must not recompile for it (alpha is a buffer, not a Python float guard)."""
    torch._dynamo.reset()
    graphs = []

    def count(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    model = bytelm.create_model("agiformer-tiny").eval()
    fast = torch.compile(model, backend=count)
    x = torch.randint(0, 256, (1, 32))
    with torch.no_grad():
        ref = fast(x).logits
        n = len(graphs)
        model.set_plasticity(0.1)
        low = fast(x).logits
        model.set_plasticity(1.0)
        again = fast(x).logits
    assert n > 0 and len(graphs) == n
    assert not torch.equal(low, ref) and torch.equal(again, ref)
    torch._dynamo.reset()


def _static_vs_reference(spec: str, prompt: int, n: int, compile_mode=None, batch: int = 2):
    from bytelm.models.agiformer.static_decode import StaticDecoder
    from tests.contracts import _model
    m = _model(spec).eval()
    # random weights: make the ACT halt at different steps for different positions
    torch.nn.init.normal_(m.reason.halt.bias, 0.0, 1.0) if m.reason is not None else None
    x = torch.randint(0, 256, (batch, prompt + n), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        state = m.init_state(batch)
        ref = [m.step(x[:, :prompt], state)[0]]
        ref += [m.step(x[:, i:i + 1], state)[0] for i in range(prompt, prompt + n)]
        dec = StaticDecoder(m, batch, compile=compile_mode)
        out = [dec.prefill(x[:, :prompt])]
        out += [dec.step(x[:, i])[:, None] for i in range(prompt, prompt + n)]
    torch.testing.assert_close(torch.cat(out, 1), torch.cat(ref, 1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spec", CONFIGS)
def test_static_decoder_equals_reference_step(spec):
    """The fixed-shape decoder (ring-buffer window cache, tensor positions, ACT without early
    exit) gives the reference step's logits, past the window (the ring wraps) and for prompts
    shorter than a patch."""
    _static_vs_reference(spec, prompt=11, n=45)
    _static_vs_reference(spec, prompt=2, n=9, batch=1)


def test_static_decoder_compiled_equals_reference_step():
    """Compiled (one graph per in-patch phase) it still equals the reference."""
    _static_vs_reference("agiformer-tiny[window=2]", prompt=7, n=21, compile_mode="default")
    _static_vs_reference("agiformer-tiny[decoder=local,decoder_window=5]", prompt=7, n=21,
                         compile_mode="default")


def test_act_without_early_exit_is_the_same():
    torch.manual_seed(0)
    blk = RecurrentReasoningBlock(16, 32, max_steps=4).eval()
    torch.nn.init.normal_(blk.halt.bias, 0.0, 2.0)
    x = torch.randn(2, 7, 16)
    a, pa, sa, _ = blk(x)
    b, pb, sb, _ = blk(x, early_exit=False)
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    assert torch.equal(pa, pb) and torch.equal(sa, sb)


def test_local_decoder_reads_bytes_of_earlier_patches():
    """decoder=local: the logits for byte j change with a byte in an earlier patch inside the
    window even with the latent path cut (zero context latents), unlike the mlp head."""
    torch.manual_seed(0)
    for decoder, expect_change in (("local", True), ("mlp", False)):
        m = bytelm.create_model("agiformer-tiny", decoder=decoder).eval()
        x = torch.randint(0, 256, (1, 16))
        y = x.clone()
        y[0, 5] = (y[0, 5] + 1) % 256  # patch 1 (bytes 4..7)
        c = torch.zeros(1, 16 // 4 + 1, m.config.d_model)
        with torch.no_grad():
            if decoder == "local":
                a, b = m.head(c, x), m.head(c, y)
            else:
                xb, yb = x.view(1, 4, 4), y.view(1, 4, 4)
                a = m.head(c[:, :4], xb).reshape(1, 16, 256)
                b = m.head(c[:, :4], yb).reshape(1, 16, 256)
        changed = not torch.allclose(a[0, 9:], b[0, 9:])  # rows of patch 2's bytes and later
        assert changed == expect_change, decoder


def test_encoder_norm_options():
    """encoder_norm_init is the encoder norm's initial gain; encoder_norm=false removes it."""
    m = bytelm.create_model("agiformer-tiny", encoder_norm_init=0.1)
    assert torch.all(m.encoder.norm.weight == 0.1)
    x = torch.randint(0, 256, (2, 16))
    out = m.encoder(x)
    with torch.no_grad():
        m.encoder.norm.weight.fill_(1.0)
    torch.testing.assert_close(out, 0.1 * m.encoder(x))  # the latents start 10x smaller
    off = bytelm.create_model("agiformer-tiny", encoder_norm=False)
    assert isinstance(off.encoder.norm, torch.nn.Identity)
