import pytest
import torch

import bytelm
from bytelm.models.hnet.chunking import keep_first, ratio_loss, smooth, smooth_reference
from bytelm.nn.loss import byte_cross_entropy
from tests.contracts import contract_tests

# The residual projection starts at zero (as H-Net), which hides the encoder's path to the
# decoder from a fresh model (bytes past the slot cap would not reach the logits, so the
# causality check could not see its perturbation): the contracts run it at a nonzero init
# (residual_std), and once without it.
_R = "residual_std=0.02"
CONFIGS = [
    f"hnet-tiny[{_R}]",
    "hnet-tiny[residual_proj=false]",
    f"hnet-tiny[smoothing=false,{_R}]",
    f"hnet-tiny[max_chunks=8,{_R}]",  # overflow: boundaries beyond the 8th of a row are dropped
    f"hnet-tiny[chunker=space,{_R}]",
    f"hnet-tiny[chunker=fixed,patch_stride=3,{_R}]",
    f"hnet-tiny[chunker=babylon,{_R}]",
    f"hnet-tiny[byte_mixer=swa,window=16,{_R}]",
    f"hnet-tiny[byte_mixer=hebbian,{_R}]",
]
test_contract, test_save_load = contract_tests(CONFIGS)


def test_residual_projection_starts_at_zero():
    """H-Net's init: the decoder first reads the main network alone; residual_std sets it."""
    assert torch.count_nonzero(bytelm.create_model("hnet-tiny").residual.weight) == 0
    assert torch.count_nonzero(bytelm.create_model("hnet-tiny", residual_std=0.02).residual.weight) > 0
    assert bytelm.create_model("hnet-tiny", residual_proj=False).residual is None


def test_main_network_reaches_the_logits():
    """The contract tests above exercise the chunk path: zeroing the main network's output
    changes the logits (so causality and cached == full cover it)."""
    torch.manual_seed(0)
    m = bytelm.create_model("hnet-tiny").eval()
    x = torch.randint(0, 256, (2, 64))
    with torch.no_grad():
        a = m(x).logits
        m.down.weight.zero_()
        b = m(x).logits
    assert (a - b).abs().max() > 1e-3


def test_smooth_parallel_equals_recurrence_and_gradients():
    torch.manual_seed(0)
    z = torch.randn(3, 9, 5, dtype=torch.float64, requires_grad=True)
    p = torch.rand(3, 9, dtype=torch.float64).clamp(0.01, 0.99)
    p[:, 0] = 1.0
    p.requires_grad_(True)
    z0 = torch.randn(3, 5, dtype=torch.float64)
    for init in (None, z0):
        a, b = smooth(z, p, init), smooth_reference(z, p, init)
        torch.testing.assert_close(a, b)
        g = torch.randn_like(a)
        ga = torch.autograd.grad(a, (z, p), g)
        gb = torch.autograd.grad(b, (z, p), g)
        for u, v in zip(ga, gb):
            torch.testing.assert_close(u, v)


def test_keep_first_drops_only_late_boundaries():
    b = torch.tensor([[1, 0, 1, 1, 0, 1, 1]], dtype=torch.bool)
    kept, before = keep_first(b, 3)
    assert kept.tolist() == [[True, False, True, True, False, False, False]]
    assert before.tolist() == [[0, 1, 1, 2, 3, 3, 3]]
    # continuing a stream from 2 kept chunks gives the same decisions as the whole row
    kept2, before2 = keep_first(b[:, 3:], 3, count0=torch.tensor([2]))
    assert kept2.tolist() == kept[:, 3:].tolist() and before2.tolist() == before[:, 3:].tolist()


def test_ratio_loss_minimum_at_target():
    n = 4.0
    at = ratio_loss(torch.tensor([[1, 0, 0, 0]], dtype=torch.bool), torch.full((1, 4), 0.25), n)
    assert abs(at.item() - 1.0) < 1e-6
    more = ratio_loss(torch.ones(1, 4, dtype=torch.bool), torch.full((1, 4), 0.9), n)
    assert more.item() > at.item()


def test_ratio_loss_drives_chunk_length_to_target(shared_data):
    """On a tiny run on real text the learned router's mean chunk length moves to the target."""
    text = (shared_data / "small" / "en.txt").read_bytes()
    data = torch.frombuffer(bytearray(text), dtype=torch.uint8).long()
    torch.manual_seed(0)
    m = bytelm.create_model("hnet-tiny", chunk_len=6.0, ratio_weight=1.0)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    lens = []
    for _ in range(150):
        i = torch.randint(0, len(data) - 129, (8,), generator=g)
        x = torch.stack([data[j:j + 129] for j in i.tolist()])
        out = m(x[:, :-1])
        loss = byte_cross_entropy(out.logits, x[:, 1:]) + out.aux_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        lens.append(1 / float(out.stats["boundary_rate"]))  # before the slot cap drops any
    start, end = lens[0], sum(lens[-10:]) / 10
    assert start < 3.0, start  # about half the bytes are boundaries at init
    assert abs(end - 6.0) < 1.0, (start, end)


def test_per_stage_learning_rates():
    m = bytelm.create_model("hnet-tiny", byte_lr_mult=2.0, main_lr_mult=0.5)
    groups = m.param_groups(0.1)
    seen = {id(p) for g in groups for p in g["params"]}
    assert seen == {id(p) for p in m.parameters()}
    main = {id(p) for n, p in m.named_parameters() if n.startswith("main.")}
    for g in groups:
        ids = {id(p) for p in g["params"]}
        assert g["lr_mult"] == (0.5 if ids & main else 2.0)
        assert not (ids & main) or ids <= main | {id(m.up.weight), id(m.down.weight),
                                                   *map(id, m.main_norm.parameters())}


def test_stage_flops_hand_count():
    """flops_per_byte = byte stages (6 x params + attention) + main (per slot, x slots/bytes)."""
    m = bytelm.create_model("hnet-tiny")
    c = m.config
    T, M = c.context, c.slots
    d, D = c.d_byte, c.d_main
    ff_b, ff_m = 128, 192  # swiglu_hidden(32), swiglu_hidden(64)
    block_b = 4 * d * d + 3 * d * ff_b + 2 * d  # attn qkv+proj, SwiGLU, two norms
    block_m = 4 * D * D + 3 * D * ff_m + 2 * D
    byte_params = 2 * block_b + 3 * d * d + d + d + 256 * d  # blocks, router q/k, residual, enc_norm, norm, head
    main_params = 2 * block_m + 2 * d * D + D
    assert m.stage_params() == {"byte": byte_params + 256 * d, "main": main_params}
    want = 6 * byte_params + 2 * 6 * d * T + (6 * main_params + 6 * 2 * D * M) * M / T
    assert m.flops_per_byte() == pytest.approx(want, rel=1e-12)


def test_boundary_flags_match_forward_chunks():
    m = bytelm.create_model("hnet-tiny", chunker="space").eval()
    x = torch.tensor([list(b"the cat sat on the mat, and then ") * 3])
    flags = m.boundary_flags(x)[0]
    spacelike = torch.tensor([c in b" ," for c in x[0].tolist()])
    assert flags[0] and torch.equal(flags[1:], spacelike[1:])
    ends = m.patch_ends(x)[0]
    assert torch.equal(ends[:-1], flags[1:]) and not ends[-1]


@pytest.mark.gpu
@pytest.mark.parametrize("chunker", ["learned", "space"])
def test_gpu_matches_cpu_cached_and_compiled(chunker):
    """On CUDA: fp32 logits equal the CPU model's, cached generation equals the full forward,
    and the compiled forward equals the eager one (bf16 autocast, loose tolerance)."""
    torch.manual_seed(0)
    m = bytelm.create_model("hnet-tiny", chunker=chunker).eval()
    x = torch.randint(0, 256, (2, 128))
    with torch.no_grad():
        cpu = m(x).logits
        g = m.cuda()
        xc = x.cuda()
        full = g(xc).logits
        torch.testing.assert_close(full.cpu(), cpu, atol=1e-4, rtol=1e-4)
        state, parts = g.init_state(2), []
        for a, b in [(0, 50), (50, 51), (51, 90), (90, 128)]:
            lg, state = g.step(xc[:, a:b], state)
            parts.append(lg)
        torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-4, rtol=1e-4)
        with torch.autocast("cuda", torch.bfloat16):
            eager = g(xc).logits
            comp = torch.compile(g)(xc).logits
        assert (comp - eager).abs().max() < 0.1


def test_patch_cli_draws_model_chunks(tmp_path, capsys):
    from bytelm.cli.__main__ import main
    m = bytelm.create_model("hnet-tiny", chunker="space")
    m.save(tmp_path / "ck")
    f = tmp_path / "t.txt"
    f.write_bytes(b"the cat sat on the mat\n" * 4)
    assert main(["patch", str(f), "--run", str(tmp_path / "ck"), "--color", "never",
                 "--png", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("the| cat| sat| on| the| mat|\n") and (tmp_path / "c.png").stat().st_size > 1000
    gpt = bytelm.create_model("transformer-tiny")
    gpt.save(tmp_path / "g")
    assert main(["patch", str(f), "--run", str(tmp_path / "g")]) == 2
    assert "no patch or chunk boundaries" in capsys.readouterr().err


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("spec", CONFIGS)
def test_static_decoder_equals_full_forward(spec, fused, one_thread):
    """Fixed-shape decoding (caches in buffers, the main network stepped when a boundary is
    kept, or at every byte when fused) == the full forward's logits, teacher-forced past the
    slot cap, for one stream and for two."""
    from tests.contracts import _model
    m = _model(spec)
    T = m.config.context
    x = torch.randint(0, 256, (2, T), generator=torch.Generator().manual_seed(3))
    x[1, 20:] = torch.tensor(list(b"the cat sat on the mat. " * 8))[:T - 20]  # spaces, words
    with torch.no_grad():
        full = m(x).logits
        for rows in (slice(0, 1), slice(0, 2)):
            dec = m.build_static_decoder(x[rows].shape[0], capacity=T)
            dec.fused = fused
            dec._parts = (dec._all,) if fused else (dec._encode, dec._main, dec._decode)
            out = [dec.prefill(x[rows, :7])]
            out += [dec.step(x[rows, i])[:, None] for i in range(7, T)]
            torch.testing.assert_close(torch.cat(out, 1), full[rows], rtol=1e-4, atol=1e-4)
            assert dec.capacity() == 0


def test_static_decoder_slot_buffer_sized_to_capacity(one_thread):
    """A decoder of C bytes holds min(slots, C) main-network slots (a stream of C bytes keeps at
    most C chunks) and still equals the full forward when every byte is a boundary."""
    torch.manual_seed(0)
    m = bytelm.create_model("hnet-tiny", chunker="fixed", patch_stride=1, max_chunks=64).eval()
    C = 24
    assert m.config.slots == 64
    x = torch.randint(0, 256, (1, C), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        full = m(x).logits
        dec = m.build_static_decoder(1, capacity=C)
        assert dec.main_k0.shape[2] == C + 1
        out = [dec.prefill(x[:, :5])] + [dec.step(x[:, i])[:, None] for i in range(5, C)]
    torch.testing.assert_close(torch.cat(out, 1), full, rtol=1e-4, atol=1e-4)
    assert int(dec.chunks) == C


def test_static_decoder_greedy_bytes_past_the_context(one_thread):
    """generate(decode="static") == recomputing the full forward at every byte, past the
    context (the decoder is rebuilt over the cropped window)."""
    from tests.contracts import check_static_decoder
    check_static_decoder(f"hnet-tiny[{_R}]", n=40)
