"""make_decoder keeps a fixed-shape cache in the autocast dtype it is made under (a cache in
another dtype than the queries is converted whole at every layer and step)."""
import pytest
import torch

import bytelm
from bytelm.generate.decoder import make_decoder


def _float_buffers(dec):
    return {b.dtype for b in dec.buffers() if b.is_floating_point()}


@pytest.mark.parametrize("preset", ["transformer-tiny", "agiformer-tiny", "bsfin-tiny", "hnet-tiny"])
def test_cache_dtype_follows_autocast(preset, one_thread):
    torch.manual_seed(0)
    m = bytelm.create_model(preset).eval()
    assert _float_buffers(make_decoder(m, 1, "static", need=64)) == {torch.float32}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        dec = make_decoder(m, 1, "static", need=64)
        assert torch.bfloat16 in _float_buffers(dec)
        x = torch.randint(0, 256, (1, 8))
        with torch.no_grad():
            ref = m(x).logits.float()
            out = torch.cat([dec.prefill(x[:, :4])] + [dec.step(x[:, i])[:, None] for i in range(4, 8)], 1)
    # bf16 arithmetic: the same predictions to bf16 precision
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.15)
