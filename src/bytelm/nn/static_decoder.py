"""What every family's fixed-shape decoder shares: the decoding interface generation and the
benchmark call, and the compile set-up that lets CUDA graphs replay over the decoder's buffers.

The interface (a family returns one from ``ByteLM.build_static_decoder``):

    dec.prefill(x)      # x (B, n >= 1) prompt bytes; resets the state; logits (B, n, 256)
    dec.step(b)         # b (B,) one byte per stream; next-byte logits (B, 256) fp32
    dec.capacity()      # bytes the state can still take (None: unbounded)
    dec.n_bytes         # bytes read per stream since the last prefill
    dec.greedy(b)       # k = greedy_block: feeds b (B,), then k - 1 of its own argmax bytes,
                        # in one call (one CUDA graph when compiled); the k argmax bytes
                        # (B, k), the last not yet fed. Only where ``greedy_block`` > 1 (a
                        # decoder whose byte step has no host decision and no graph_args)

``step`` calls ``self._fn(b, *self.graph_args())``: ``_fn`` is the family's per-byte function,
compiled or not, and ``graph_args`` the Python values that select one of its graphs (none for
the Transformer; the in-patch phase for AGIFORMER).
"""
import torch
from torch import nn


class StaticDecoderBase(nn.Module):
    """Base of the fixed-shape decoders; subclasses define ``prefill`` and ``_byte``."""

    n_bytes: int = 0
    greedy_block: int = 1
    """bytes ``greedy`` decodes in one call (1: the decoder has no such path). Greedy
    generation runs in blocks of this many bytes, so the host launches one graph and reads the
    bytes back once per block instead of once per byte."""
    warmup_steps: int = 4
    """steps after a prefill that build and record every graph (CUDA graphs are recorded on a
    graph's second or third call); benchmarks time none of them."""

    def _setup(self, fn, compile: str | None, greedy_block: int = 1) -> None:
        """Sets ``self._fn`` to ``fn`` compiled with mode ``compile`` (None: eager) and, with
        ``greedy_block`` k > 1, ``self._greedy_fn`` to k steps of ``fn`` with argmax between
        them (compiled as one function, so one CUDA graph)."""
        self.compiled = bool(compile)
        self._fn = self._compile(fn, compile) if compile else fn
        self.greedy_block = greedy_block
        if greedy_block > 1:
            def block(b: torch.Tensor) -> torch.Tensor:
                out = []
                for _ in range(greedy_block):
                    b = fn(b).argmax(-1)
                    out.append(b)
                return torch.stack(out, 1)
            self._greedy_fn = self._compile(block, compile) if compile else block

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
    def greedy(self, b: torch.Tensor) -> torch.Tensor:
        """Feeds b (B,) and then the argmax byte of each step but the last: k = greedy_block
        bytes fed, the k argmax bytes returned (B, k) long (the last one not fed). Equals k
        calls of ``step`` with argmax between them (the logits are the same function's)."""
        k = self.greedy_block
        if k < 2:
            raise ValueError("this decoder has no greedy blocks (greedy_block 1)")
        if self.graph_args():
            raise ValueError("greedy blocks need a byte step without graph_args")
        out = self._greedy_fn(b.long())
        self.n_bytes += k
        if out.device.type == "cuda" and self.compiled:
            out = out.clone()  # a CUDA-graph output is overwritten by the next replay
        return out

    @torch.no_grad()
    def step(self, b: torch.Tensor) -> torch.Tensor:
        """Feeds one byte per stream, b (B,); returns next-byte logits (B, 256)."""
        out = self._fn(b.long(), *self.graph_args())
        self.n_bytes += 1
        if out.device.type == "cuda" and self.compiled:
            out = out.clone()  # a CUDA-graph output is overwritten by the next replay
        return out
