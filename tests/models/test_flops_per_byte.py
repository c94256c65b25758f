"""``flops_per_byte`` (it drives MFU and the FLOP-matched BPE budget) against a count by hand of
each family's tiny preset: the parameters each byte uses, written out from the preset's sizes,
times 6 (forward + backward), plus each family's attention and recurrence terms, at the shapes
the forward runs (BSFIN's padded patch grid and all its slots, AGIFORMER's decoded positions).
This pins the formula and its inputs; tests/models/test_flops.py measures the compute."""
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
    N, Dh, C = T // P, d // H, 64  # patches, head size, chunk of the Hebbian recurrence
    encoder = 2 * d + (d * d * kernel + d) + d * d + d  # pad, conv (+bias), proj, norm; no embed
    block = d + 3 * d * d + 3 * d * d + (H * d + H) + d * d + d + 2 * ff * d + ff * d
    memory = 3 * d * d + (H * d + H) + d // H + d * d  # qkv, decay (+bias), out_norm, proj
    reason = d + 2 * ff * d + ff * d + (d * d + d) + (d + 1)  # norm, w13, w2, gate, halt
    patch = encoder + L * block + memory + d + d + think * reason  # + mem_norm, norm
    # byte decoder: ctx once per patch latent (N + 1 of them); pos, 2 x (norm, w13 (2*128, d),
    # w2), norm, out at each of the (N + 1) x P decoded positions; its prev-byte embedding is
    # a lookup
    ctx = dh * d
    rest = P * dh + 2 * (dh + 2 * 128 * dh + dh * 128) + dh + 256 * dh
    head = ctx * (N + 1) + rest * (N + 1) * P
    attn = 12 * d * (W - W * W / (2 * N)) * N * L  # window attention, less its ramp at the start
    # linear attention (L) and the memory: chunked recurrence, V = Dh + 1 (normaliser column),
    # 64 padded steps, per step and head 2C(K + V) + 4KV forward, x3
    mixers = 3 * (L + 1) * C * H * (2 * C * (2 * Dh + 1) + 4 * Dh * (Dh + 1))
    want = (6 * (patch * N + head) + attn + mixers) / T
    assert (patch, ctx + rest) == (301_023, 70_080)
    assert bytelm.create_model("agiformer-tiny").flops_per_byte() == pytest.approx(want, rel=1e-12)
    assert want == pytest.approx(964_450.5, abs=1e-6)


def test_flops_per_byte_bsfin_tiny():
    dl, dm, L, H, dmem, T, dec = 32, 32, 2, 4, 48, 128, 2
    S, Lp = T // 2, 16  # patch slots (T / min_patch), bytes per slot (max_patch)
    ff = 2 * dl
    # encoder at each of the S x Lp grid positions: norm, qkv, proj, norm, w13, w2, pool_kv,
    # pool_norm; its output projection once per slot
    grid = dl + 3 * dl * dl + dl * dl + dl + 2 * ff * dl + ff * dl + 2 * dl * dl + dl
    hd = dm // H
    cx = 2 * dm * dm  # one complex linear's parameters: re + im
    layer = (2 * dm + H * H + 2 * H * hd + 4 * cx + 2 * 2 * hd + 2 * dm
             + 2 * (2 * 2 * dm * dm))  # norms, mix, phases, q k v o, q/k norms, ffn up/down
    # per slot: encoder out; complex maps at twice their parameters (4 real products of n x m);
    # to_real (+bias), mem_proj, mem_norm
    slot = dl * dl + 2 * (cx + L * layer) + (2 * dm * dmem + dmem) + dmem * dl + dl
    kv = dec * 2 * dl * dl  # decoder memory keys/values, at each of S + 1 memories
    dec_layer = (dl + 3 * dl * dl + dl * dl + dl + dl * dl + dl * dl + dl
                 + 2 * ff * dl + ff * dl)  # self-attention, cross-attention query/out, MLP
    byte = dec * dec_layer + dl + 256 * dl  # + final norm, head
    attn = (2 * S * Lp * Lp * 2 * dl + 2 * S * Lp * 2 * dl  # in each slot (dense), pooling
            + L * 2 * S * (S / 2) * 4 * dm  # complex stack: causal, q.k and v 2 dm wide
            + dec * (2 * T * (T / 2) * 2 * dl + 2 * T * (S + 1) * 2 * dl))  # self (causal), cross
    want = (6 * (grid * S * Lp + slot * S + kv * (S + 1) + byte * T) + 3 * attn) / T
    assert (grid, slot, byte) == (12_384, 76_304, 32_992)
    assert bytelm.create_model("bsfin-tiny").flops_per_byte() == pytest.approx(want, rel=1e-12)
