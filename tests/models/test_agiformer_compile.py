"""AGIFORMER's training forward (loss + backward) under torch.compile(fullgraph=True): one graph,
no break, the same loss and gradients as eager.

On CPU the ops are the pure-PyTorch forms; on CUDA a compiled model runs fla's kernels through
``triton_hebbian`` and the custom op ``bytelm::hebbian_fwd`` (``bytelm.ops.hebbian.op``), and
flex attention. The "gpu_path" case routes the Hebbian memory and linear attention through that
same Python (``triton_hebbian``, the custom op; the op's CPU kernels run), so the GPU path's
graph structure is checked here too.

Graph breaks are Dynamo's: the pure-PyTorch cases compile with the "eager" backend (Dynamo
alone, the fastest); the GPU-path case with "aot_eager", Dynamo and AOTAutograd (forward and
backward graphs from the op's fake and autograd registrations) without Inductor's C++ compile,
which would take most of a minute on CPU. The GRU decoder (decoder=gru, not in any preset) is
left out: Dynamo does not trace nn.GRU (a graph break around the GRU call).
"""
import importlib

import pytest
import torch

from bytelm.models.agiformer.act import RecurrentReasoningBlock
from bytelm.nn.loss import byte_cross_entropy
from tests.contracts import _model

# the modules (bytelm.ops.hebbian is also the name of a function in bytelm.ops)
hebbian_module = importlib.import_module("bytelm.ops.hebbian")
triton_module = importlib.import_module("bytelm.ops.hebbian.triton")

TINY = "agiformer-tiny[context=64,n_layers=1]"
CASES = [(TINY, "chunk", "eager"), (TINY, "gpu_path", "aot_eager"),
         (TINY[:-1] + ",decoder=local,decoder_window=8,memory_rule=delta]", "chunk", "eager")]


def _loss_and_grads(model, fn, x):
    model.zero_grad(set_to_none=True)
    loss = fn(x)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                           if p.grad is not None}


@pytest.mark.parametrize("spec,impl,backend_name", CASES)
def test_training_step_compiles_to_one_graph(spec, impl, backend_name, monkeypatch):
    if impl == "gpu_path":  # what select_impl gives on CUDA with fla: triton_hebbian
        monkeypatch.setattr(hebbian_module, "select_impl", lambda impl, device: "triton")
        monkeypatch.setenv("BYTELM_HEBBIAN_OP", "custom")  # the path without graph breaks
    torch._dynamo.reset()
    model = _model(spec).train()
    x = torch.randint(0, 256, (2, 33), generator=torch.Generator().manual_seed(1))

    def step(x):
        out = model(x[:, :-1])
        return byte_cross_entropy(out.logits, x[:, 1:]) + out.aux_loss

    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return torch._dynamo.lookup_backend(backend_name)(gm, example_inputs)

    compiled = torch.compile(step, fullgraph=True, backend=backend)  # raises on any graph break
    loss, grads = _loss_and_grads(model, compiled, x)
    ref_loss, ref_grads = _loss_and_grads(model, step, x)
    assert len(graphs) == 1
    ops = [n for n in graphs[0].graph.nodes if "hebbian_fwd" in str(n.target)]
    if impl == "gpu_path":  # one per layer's linear attention, one for the memory
        assert len(ops) == model.config.n_layers + 1
    else:
        assert not ops
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-5)
    assert grads.keys() == ref_grads.keys() and len(grads) > 0
    for name in ref_grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-4, atol=1e-5,
                                   msg=lambda m: f"{name}: {m}")
    torch._dynamo.reset()


def test_gpu_kernel_probe_is_a_constant_under_compile(monkeypatch):
    """select_impl on CUDA asks triton.is_available(), whose first call imports fla and pins its
    kernel configs: under compile it is called once, not traced (a graph break in the probe
    would fail fullgraph=True)."""
    calls = []

    def probe():
        calls.append(1)
        torch._dynamo.graph_break()  # would fail fullgraph=True if Dynamo traced it
        return True

    monkeypatch.setattr(triton_module, "_probe", probe)
    monkeypatch.delenv("BYTELM_IMPL", raising=False)
    triton_module.is_available.reset()
    torch._dynamo.reset()

    @torch.compile(fullgraph=True, backend="eager")
    def pick(x):
        return x + (1 if hebbian_module.select_impl("auto", "cuda") == "triton" else 2)

    try:
        assert pick(torch.zeros(2)).tolist() == [1.0, 1.0]
        assert pick(torch.ones(2)).tolist() == [2.0, 2.0] and calls == [1]
    finally:
        triton_module.is_available.reset()  # the real probe answers the next caller
        torch._dynamo.reset()


def _act_run(blk, x, train: bool, fn=None):
    blk.train(train)
    blk.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    out, ponder, steps, _ = (blk if fn is None else fn)(x)
    (out.square().sum() + ponder.sum()).backward()
    return [out, ponder, steps, x.grad] + [p.grad for p in blk.parameters()]


def test_act_training_form_equals_the_early_exit():
    """Training runs every think step for every position (no host sync; halted positions weigh
    0): the same output, ponder cost, step counts and gradients as eval's early exit, which
    drops halted positions; compiled (no early exit there either) in one graph, the same again."""
    torch.manual_seed(0)
    blk = RecurrentReasoningBlock(16, 32, max_steps=4)
    torch.nn.init.normal_(blk.halt.bias, 0.0, 2.0)  # positions halt at different steps
    x = torch.randn(2, 7, 16)
    train, early = _act_run(blk, x, True), _act_run(blk, x, False)
    steps = early[2]
    assert (steps < 4).any() and (steps > 1).any()
    for a, b in zip(train, early):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    torch._dynamo.reset()
    compiled = _act_run(blk, x, False, torch.compile(blk, fullgraph=True, backend="eager"))
    for a, b in zip(compiled, early):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    torch._dynamo.reset()
