"""train.compile_scope: the whole model as one graph, or each repeated block compiled in place."""
import pytest
import torch

from bytelm import create_model, list_presets
from bytelm.bench.train import TrainStep
from bytelm.train.compiling import compile_blocks, compiled_forward

TINY = [p for p in list_presets() if p.endswith("-tiny")]


@pytest.mark.parametrize("preset", TINY)
def test_compile_blocks_marks_every_block_and_keeps_the_state_dict(preset):
    """Every element of the model's block lists is compiled once (nested lists not twice), the
    state-dict keys are those of the eager model (checkpoints do not change)."""
    m = create_model(preset)
    keys = list(m.state_dict())
    lists = [lst for lst in m.modules() if isinstance(lst, torch.nn.ModuleList)]
    blocks = {id(b) for lst in lists for b in lst}
    n = compile_blocks(m)
    compiled = [b for lst in lists for b in lst if b._compiled_call_impl is not None]
    assert n == len(compiled) > 0
    assert len(compiled) <= len(blocks)
    assert list(m.state_dict()) == keys
    # a block inside a compiled block is not compiled again
    for b in compiled:
        inner = [x for x in b.modules() if x is not b and x._compiled_call_impl is not None]
        assert not inner


def test_scope_model_wraps_and_bad_scope_refused():
    m = create_model("transformer-tiny")
    assert compiled_forward(m, "model", "default") is not m
    assert compiled_forward(m, "blocks", "default") is m
    with pytest.raises(ValueError, match="compile scope"):
        compiled_forward(m, "layers", "default")


@pytest.mark.parametrize("preset", ["transformer-tiny", "hnet-tiny"])
def test_blocks_scope_trains_like_eager(preset):
    """Two optimizer steps with each repeated block compiled give eager's losses (CPU inductor)."""
    torch._dynamo.reset()
    losses = {}
    for scope in (None, "blocks"):
        step = TrainStep(preset, 2, 64, scope is not None, torch.float32, torch.device("cpu"),
                         compile_scope=scope or "model")
        out = []
        for _ in range(2):
            step()
            out.append(float(step.loss))
        step.close()
        losses[scope] = out
    torch.testing.assert_close(losses["blocks"], losses[None], rtol=1e-4, atol=1e-4)
