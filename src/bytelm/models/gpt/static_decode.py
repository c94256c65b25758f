"""Fixed-shape Transformer decoding: per-layer ``StaticKVCache`` buffers and a position tensor,
so the single-byte step is one graph that ``torch.compile(mode="reduce-overhead")`` replays as
a CUDA graph at every position. The reference is ``GPT.step`` (tests equate the two).

    dec = model.static_decoder(batch_size=1, capacity=prompt_len + n_new)
    logits = dec.prefill(prompt)          # (B, n, 256): one pass over the prompt
    for _ in range(n_new):
        nxt = logits[:, -1].argmax(-1)    # (B,)
        logits = dec.step(nxt)[:, None]   # (B, 1, 256)

Greedy decoding can also run ``greedy_block`` bytes per call (``dec.greedy``: one CUDA graph
of 8 steps with the argmax inside, read back once), what ``bytelm.generate`` does at
temperature 0.
"""
import torch

from bytelm.nn import KVCache
from bytelm.nn.static_cache import StaticKVCache
from bytelm.nn.static_decoder import StaticDecoderBase


class GPTStaticDecoder(StaticDecoderBase):
    """Holds the KV caches of ``model`` for ``batch_size`` streams in fixed-shape buffers.

    Args:
        model: a GPT (eval mode is set by the caller).
        batch_size: streams B.
        capacity: positions per stream (<= context); each step attends over all of them
            (masked), so it is sized to the generation, not the context.
        dtype: dtype of the cached keys/values (default the model's parameter dtype).
        compile: None (eager), or a ``torch.compile`` mode.
        greedy_block: bytes per ``greedy`` call (1: none; the default 8).
    """

    def __init__(self, model, batch_size: int, capacity: int, dtype: torch.dtype | None = None,
                 compile: str | None = None, greedy_block: int = 8):
        super().__init__()
        c = model.config
        self._bound(model, batch_size, capacity)
        dev = model.embed.weight.device
        shape = (batch_size, c.n_heads, capacity, c.d_model // c.n_heads)
        kv_dtype = dtype or model.embed.weight.dtype
        for i in range(c.n_layers):
            self.register_buffer(f"k{i}", torch.zeros(shape, device=dev, dtype=kv_dtype))
            self.register_buffer(f"v{i}", torch.zeros(shape, device=dev, dtype=kv_dtype))
        self.register_buffer("pos", torch.zeros((), dtype=torch.long, device=dev))
        self._setup(self._byte, compile, greedy_block)

    def _buffers_kv(self):
        n = self.model.config.n_layers
        return [(getattr(self, f"k{i}"), getattr(self, f"v{i}")) for i in range(n)]

    @torch.no_grad()
    def prefill(self, x: torch.Tensor) -> torch.Tensor:
        """Reads the prompt x (B, n) in one pass of the reference step (causal attention over
        the prompt) with its keys/values written into the buffers. Returns logits (B, n, 256)."""
        n = x.shape[1]
        self._check_fits(n)
        caches = [KVCache(k, v, 0) for k, v in self._buffers_kv()]
        logits, _ = self.model.step(x, caches)
        self.pos.fill_(n)
        self.n_bytes = n
        return logits

    def _byte(self, b: torch.Tensor) -> torch.Tensor:
        """Appends byte b (B,) at position ``pos``; next-byte logits (B, 256) fp32."""
        caches = [StaticKVCache(k, v, self.pos) for k, v in self._buffers_kv()]
        logits, _ = self.model.step(b[:, None], caches)
        self.pos.add_(1)
        return logits[:, 0].float()

    def capacity(self) -> int:
        return self.C - self.n_bytes
