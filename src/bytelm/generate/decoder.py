"""Which decoder a generation runs on: the model's own ``step`` (eager, the reference) or its
fixed-shape decoder (``ByteLM.static_decoder``), compiled or not; all share one interface
(``bytelm.nn.static_decoder``: prefill, step, capacity, n_bytes).

decode modes:
    auto      the fastest exact path: "compiled" on CUDA when the family has a fixed-shape
              decoder, else "eager" (on CPU compilation costs more than it saves)
    eager     ``model.init_state`` / ``model.step``
    static    the fixed-shape decoder without compilation (what tests compare on CPU)
    compiled  the fixed-shape decoder under torch.compile (CUDA graphs on CUDA)
"""
import torch

from bytelm.errors import UserError

DECODE_MODES = ("auto", "eager", "static", "compiled")
_CAPACITY_STEP = 256  # bounded caches are sized in these steps, so few sizes get compiled


class EagerDecoder:
    """The decoder interface over ``model.init_state`` / ``model.step`` (the reference)."""

    compiled = False

    def __init__(self, model, batch_size: int):
        self.model, self.B = model, batch_size
        self.device = next(model.parameters()).device
        self.state, self.n_bytes = None, 0

    @torch.no_grad()
    def prefill(self, x: torch.Tensor) -> torch.Tensor:
        """A fresh state reads x (B, n); logits (B, n, 256)."""
        self.state = self.model.init_state(self.B, self.device)
        logits, self.state = self.model.step(x, self.state)
        self.n_bytes = x.shape[1]
        return logits

    @torch.no_grad()
    def step(self, b: torch.Tensor) -> torch.Tensor:
        """b (B,) -> next-byte logits (B, 256)."""
        logits, self.state = self.model.step(b.long()[:, None], self.state)
        self.n_bytes += 1
        return logits[:, 0]

    def capacity(self) -> int | None:
        return self.model.state_capacity(self.state)


def resolve_decode(model, decode: str, device: torch.device) -> str:
    """``decode`` with "auto" replaced by the mode it means for ``model`` on ``device``; a
    fixed-shape mode for a family without one is a UserError."""
    if decode not in DECODE_MODES:
        raise UserError(f"unknown decode mode {decode!r} ({', '.join(DECODE_MODES)})")
    if decode == "auto":
        return "compiled" if device.type == "cuda" and model.has_static_decoder else "eager"
    if decode != "eager" and not model.has_static_decoder:
        raise UserError(f"{decode} decoding needs a fixed-shape decoder, which the "
                        f"{model.config.family} family does not have")
    return decode


def compile_mode(device: torch.device) -> str:
    """The torch.compile mode of compiled decoding: CUDA graphs on CUDA."""
    return "reduce-overhead" if device.type == "cuda" else "default"


def make_decoder(model, batch_size: int, decode: str = "auto", dtype: torch.dtype | None = None,
                 need: int | None = None):
    """A decoder of ``batch_size`` streams for ``decode`` (see the module docstring).

    Args:
        need: bytes per stream the generation will hold (prompt + new bytes): a bounded
            fixed-shape cache is sized to it, rounded up to 256 (None: the context).
        dtype: dtype of cached keys/values; None: the autocast dtype where autocast is on for
            the model's device when the decoder is made, else the parameters' dtype. (A cache in
            another dtype than the queries is converted whole at every layer and step: in an H100
            profile of a 64-stream transformer-30m step with an fp32 cache under bf16 autocast,
            the fused conversion kernels took 0.86 of 1.57 busy ms.)
    """
    device = next(model.parameters()).device
    if dtype is None and torch.is_autocast_enabled(device.type):
        dtype = torch.get_autocast_dtype(device.type)
    decode = resolve_decode(model, decode, device)
    if decode == "eager":
        return EagerDecoder(model, batch_size)
    capacity, bound = None, model.max_state_bytes()
    if need is not None and bound is not None:  # an unbounded state takes no capacity
        capacity = min(bound, -(-need // _CAPACITY_STEP) * _CAPACITY_STEP)
    return model.static_decoder(batch_size, dtype=dtype,
                                compile=compile_mode(device) if decode == "compiled" else None,
                                capacity=capacity)
