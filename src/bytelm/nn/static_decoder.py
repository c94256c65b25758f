"""What every family's fixed-shape decoder shares: the decoding interface generation and the
benchmark call, and the compile set-up that lets CUDA graphs replay over the decoder's buffers.

The interface (a family returns one from ``ByteLM.build_static_decoder``):

    dec.prefill(x)      # x (B, n >= 1) prompt bytes; resets the state; logits (B, n, 256)
    dec.step(b)         # b (B,) one byte per stream; next-byte logits (B, 256) fp32
    dec.capacity()      # bytes the state can still take (None: unbounded)
    dec.n_bytes         # bytes read per stream since the last prefill

``step`` calls ``self._fn(b, *self.graph_args())``: ``_fn`` is the family's per-byte function,
compiled or not, and ``graph_args`` the Python values that select one of its graphs (none for
the Transformer; the in-patch phase for AGIFORMER).
"""
import torch
from torch import nn


class StaticDecoderBase(nn.Module):
    """Base of the fixed-shape decoders; subclasses define ``prefill`` and ``_byte``."""

    n_bytes: int = 0
    warmup_steps: int = 4
    """steps after a prefill that build and record every graph (CUDA graphs are recorded on a
    graph's second or third call); benchmarks time none of them."""

    def _setup(self, fn, compile: str | None) -> None:
        """Sets ``self._fn`` to ``fn`` compiled with mode ``compile`` (None: eager)."""
        self.compiled = bool(compile)
        self._fn = self._compile(fn, compile) if compile else fn

    def _compile(self, fn, mode: str):
        """``torch.compile(fn, mode=mode)`` over this decoder's buffers, updated in place."""
        # a decoder compiles one graph per graph_args value, and a process may hold several
        # decoders of the same code object (batch sizes, capacities): Dynamo counts them all
        # against one recompile limit (8 by default), past which it falls back to eager
        import torch._dynamo.config as dynamo_config
        dynamo_config.cache_size_limit = max(dynamo_config.cache_size_limit, 64)
        # fixed addresses let CUDA graphs replay over the state
        for buf in self.buffers(recurse=False):
            torch._dynamo.mark_static_address(buf)
        return torch.compile(fn, mode=mode)

    def _bound(self, model, batch_size: int, capacity: int) -> None:
        """Sets model, B and C for a state of ``capacity`` bytes per stream (<= context)."""
        if not 1 <= capacity <= model.config.context:
            raise ValueError(f"capacity must be in 1..{model.config.context} (the context), "
                             f"got {capacity}")
        self.model, self.B, self.C = model, batch_size, capacity

    def _check_fits(self, n: int) -> None:
        if n > self.C:
            raise ValueError(f"a {n}-byte prompt does not fit the {self.C}-byte cache")

    def graph_args(self) -> tuple:
        """Python values passed to ``_fn`` after the byte (each value its own graph)."""
        return ()

    def capacity(self) -> int | None:
        """Bytes the state can still take (None: unbounded)."""
        return None

    @torch.no_grad()
    def step(self, b: torch.Tensor) -> torch.Tensor:
        """Feeds one byte per stream, b (B,); returns next-byte logits (B, 256)."""
        out = self._fn(b.long(), *self.graph_args())
        self.n_bytes += 1
        if out.device.type == "cuda" and self.compiled:
            out = out.clone()  # a CUDA-graph output is overwritten by the next replay
        return out
