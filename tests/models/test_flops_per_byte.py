"""``flops_per_byte`` (it drives MFU and the FLOP-matched BPE budget) against a count by hand of
each family's tiny preset: the parameters each byte uses, written out from the preset's sizes,
times 6 (forward + backward), plus each family's attention term. What the estimates leave out
(the Hebbian state update, norms' elementwise work, patch lengths other than BSFIN's assumed 4.5)
is left out here too: this pins the formula and its inputs, it does not measure the compute."""
import pytest

import bytelm


def test_flops_per_byte_transformer_tiny():
    d, L, ff, V, T = 64, 2, 192, 256, 128
    layer = d + 3 * d * d + d * d + d + 2 * ff * d + ff * d  # norm1, qkv, proj, norm2, w13, w2
    non_embedding = L * layer + d + V * d  # + final norm, untied head
    assert non_embedding == 123_200
    want = 6 * non_embedding + 6 * L * d * T  # causal attention: half of 4 T d, times 3
    m = bytelm.create_model("transformer-tiny")
    assert m.flops_per_byte() == want == 837_504
    assert m.flops_per_byte(64) == 6 * non_embedding + 6 * L * d * 64


def test_flops_per_byte_agiformer_tiny():
    d, L, ff, H, P, kernel, W, T, think, dh = 64, 2, 192, 4, 4, 6, 8, 128, 3, 64
    encoder = 2 * d + (d * d * kernel + d) + d * d + d  # pad, conv (+bias), proj, norm; no embed
    block = d + 3 * d * d + 3 * d * d + (H * d + H) + d * d + d + 2 * ff * d + ff * d
    memory = 3 * d * d + (H * d + H) + d // H + d * d  # qkv, decay (+bias), out_norm, proj
    reason = d + 2 * ff * d + ff * d + (d * d + d) + (d + 1)  # norm, w13, w2, gate, halt
    patch = encoder + L * block + memory + d + d + think * reason  # + mem_norm, norm
    # byte decoder: pos, ctx, 2 x (norm, w13 (2*128, d), w2), norm, out; its prev-byte
    # embedding is a lookup
    head = P * dh + dh * d + 2 * (dh + 2 * 128 * dh + dh * 128) + dh + 256 * dh
    attn = 12 * min(W, T // P) * d * L  # window attention per patch, fwd + bwd
    want = 6 * (patch / P + head) + attn / P
    assert (patch, head) == (301_023, 70_080)
    assert bytelm.create_model("agiformer-tiny").flops_per_byte() == pytest.approx(want, rel=1e-12)
    assert want == 875_086.5


def test_flops_per_byte_bsfin_tiny():
    dl, dm, L, H, dmem, T, dec = 32, 32, 2, 4, 48, 128, 2
    ff = 2 * dl
    enc = dl + dl + 3 * dl * dl + dl * dl + dl + 2 * ff * dl + ff * dl + 2 * dl * dl + dl + dl * dl
    dec_layer = (dl + 3 * dl * dl + dl * dl + dl + dl * dl + 2 * dl * dl + dl * dl + dl
                 + 2 * ff * dl + ff * dl)  # self-attention, cross-attention to patches, MLP
    byte_level = dec * dec_layer + 256 * dl + enc  # decoder, head, encoder (no hash tables)
    hd = dm // H
    cx = 2 * dm * dm  # one complex linear: re + im
    layer = (2 * dm + H * H + 2 * H * hd + 4 * cx + 2 * 2 * hd + 2 * dm
             + 2 * (2 * 2 * dm * dm))  # norms, mix, phases, q k v o, q/k norms, ffn up/down
    patch_level = cx + L * layer + (dmem * 2 * dm + dmem) + dl * dmem  # to_complex, to_real, mem
    want = 6 * (byte_level + patch_level / 4.5) + 6 * dec * dl * T
    assert (byte_level, patch_level) == (50_496, 39_952)
    assert bytelm.create_model("bsfin-tiny").flops_per_byte() == pytest.approx(want, rel=1e-12)
