"""``flops_per_byte`` (it drives MFU and the FLOP-matched BPE budget) against a measured count:
the matrix-multiply FLOPs ``torch.utils.flop_counter.FlopCounterMode`` sees in one training
step (forward, cross-entropy, backward) of each family's tiny preset, per byte of the batch.

FlopCounterMode counts matmul-like ops only (mm, addmm, bmm, convolution, SDPA kernels), which
is what the formulas count; neither counts elementwise work (norms, activations, softmax,
rotary), embedding lookups or other ops (a triangular solve). The count is brought to the
formulas' conventions, explicitly:

- attention runs on SDPA's math backend, whose matmuls the counter sees (CPU's flash kernel it
  does not), over every (query, key) pair, masked ones included;
- where the mask is fixed by the shapes alone (``is_causal``; a mask with no batch axis:
  BSFIN's causal mask over patch slots, the band of AGIFORMER's blocked window attention), a
  kernel that skips masked blocks needs only the allowed pairs (half the square when causal),
  so the masked pairs' FLOPs are taken out of the count. Masks with a batch axis come from the
  data (BSFIN's padding inside a patch, which patches a byte may read) and stay counted dense:
  no kernel can skip them.

What is left between the two (within TOL): the formulas count norm gains and biases as
parameters, causal attention as exactly half the square (the mask allows (T + 1) / 2 keys on
average), a window as the continuous w - w^2 / 2N, and the chunked Hebbian backward as twice
its forward (a row's last chunk writes a state nothing reads, its first reads the zero state:
their backward is skipped, 1% of agiformer-tiny). HNet's dechunking EMA (an M x M matmul, 0.5%)
is not in its formula.
"""
import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import bytelm

TOL = 0.02  # relative; the largest gap measured is agiformer-tiny's 1.5% (see the docstring)
TEXT = b"The quick brown fox jumps over the lazy dog; a byte-level model reads it all. "


def measured_flops_per_byte(model, T: int, batch: int = 2, monkeypatch=None) -> dict:
    """{"counted": matmul FLOPs per byte of one training step at sequence length T,
    "masked": the FLOPs of attention pairs that shape-fixed masks exclude, "per_byte":
    counted - masked}."""
    masked = []
    real = F.scaled_dot_product_attention

    def recording(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **kw):
        *lead, Lq, Dq = q.shape
        Lk, Dv = k.shape[-2], v.shape[-1]
        rows = 1
        for n in lead:
            rows *= n
        dense = 2.0 * rows * Lq * Lk * (Dq + Dv)  # q k^T and the weighted sum of v, forward
        if is_causal:
            allowed = torch.ones(Lq, Lk, dtype=torch.bool).tril().float().mean().item()
        elif attn_mask is not None and attn_mask.dim() < q.dim():
            allowed = attn_mask.float().mean().item()  # shared by every row: fixed by shapes
        else:
            allowed = 1.0  # no mask, or the data's: computed dense
        if allowed < 1.0:
            # the math backend's backward is two matmuls per forward one when q, k, v all
            # need gradients (they do in training): 3 x forward in all
            assert q.requires_grad and k.requires_grad and v.requires_grad
            masked.append(3.0 * dense * (1.0 - allowed))
        return real(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal,
                    scale=scale, **kw)

    monkeypatch.setattr(F, "scaled_dot_product_attention", recording)
    data = (TEXT * (batch * T // len(TEXT) + 1))[:batch * T]
    x = torch.tensor(list(data), dtype=torch.long).view(batch, T)
    counter = FlopCounterMode(display=False)
    model.train()
    with sdpa_kernel(SDPBackend.MATH), counter:
        out = model(x)
        loss = F.cross_entropy(out.logits[:, :-1].reshape(-1, 256).float(), x[:, 1:].reshape(-1))
        if torch.is_tensor(out.aux_loss):
            loss = loss + out.aux_loss
        loss.backward()
    n = x.numel()
    counted, masked_total = counter.get_total_flops() / n, sum(masked) / n
    return {"counted": counted, "masked": masked_total, "per_byte": counted - masked_total}


CASES = [  # (preset, overrides, T): every family's tiny preset at its context, and variants
    ("transformer-tiny", {}, 128),
    ("transformer-tiny", {}, 64),  # a sequence shorter than the context
    ("agiformer-tiny", {}, 128),
    ("agiformer-tiny", {"memory_rule": "delta"}, 128),
    ("agiformer-tiny", {"decoder": "local", "decoder_window": 16}, 128),
    ("agiformer-tiny", {"window": 64}, 128),  # the window covers the row: causal half
    ("agiformer-tiny", {"decoder": "gru"}, 128),
    ("bsfin-tiny", {}, 128),
    ("bsfin-tiny", {}, 96),
    ("bsfin-tiny", {"patcher": "fixed", "patch_stride": 4, "max_patch": 8}, 128),
    ("bsfin-tiny", {"scores": "magnitude"}, 128),  # explicit matmuls: the whole square
    ("bsfin-tiny", {"scores": "classical", "to_real": "magnitude"}, 128),
    ("hnet-tiny", {}, 128),
    ("hnet-tiny", {"chunker": "fixed"}, 128),
    ("hnet-tiny", {"byte_mixer": "hebbian"}, 128),
    ("hnet-tiny", {"byte_mixer": "swa", "window": 16}, 128),
    ("hnet-tiny", {"byte_mixer": "swa", "window": 256}, 128),
]


@pytest.mark.parametrize("preset,overrides,T", CASES,
                         ids=[f"{p}-{T}" + "".join(f"-{k}={v}" for k, v in o.items())
                              for p, o, T in CASES])
def test_flops_per_byte_matches_measured(preset, overrides, T, monkeypatch, one_thread):
    torch.manual_seed(0)
    model = bytelm.create_model(preset, **overrides)
    got = measured_flops_per_byte(model, T, monkeypatch=monkeypatch)
    assert model.flops_per_byte(T) == pytest.approx(got["per_byte"], rel=TOL), got


def test_every_family_is_measured():
    """A family added to the registry gets a case here."""
    from bytelm.registry import list_families, preset_config
    covered = {preset_config(p).family for p, _, _ in CASES}
    assert covered == set(list_families())
