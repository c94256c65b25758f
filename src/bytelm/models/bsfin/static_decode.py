"""Fixed-shape BSFIN decoding: incremental patching, and the complex stack run once per closed
patch. The reference is ``BsfinLM.step`` (tests equate the two); this is its fast path.

Per byte t (every stream at the same byte, so t is one Python int):
1. the patcher decides whether a patch ends at t from the last ``lookback`` bytes
   (``patching.stream.PatchStream``), not from the whole history as ``step`` does;
2. only if some stream closes a patch (one host sync per byte reads that): the patch's bytes
   are encoded, the complex stack takes one step for every stream at its own patch index (a
   (B,) position tensor) over ``StaticKVCache`` buffers, and the new memory's cross-attention
   keys/values are written to a per-layer buffer; streams that close nothing compute the same
   fixed-shape work but keep none of it (their positions do not advance, and the slots they
   wrote are invisible until their next patch overwrites them);
3. the byte decoder takes one step: self-attention over a ``StaticKVCache`` of bytes,
   cross-attention to the memory buffers with slots 0..(patches closed) visible (slot 0 the
   null memory), and the memories' keys/values are never recomputed (``step`` recomputes all
   of them at every byte).
Steps 2 and 3 are fixed-shape functions of buffers and position tensors, compiled when asked
(two graphs); step 1 and the host decision stay eager.
"""
import math

import torch

from bytelm.nn import KVCache
from bytelm.nn.static_cache import StaticKVCache
from bytelm.nn.static_decoder import StaticDecoderBase
from bytelm.patching.stream import PatchStream


class BsfinStaticDecoder(StaticDecoderBase):
    """Holds the decoding state of a BsfinLM for ``batch_size`` streams in fixed-shape buffers.

    Args:
        model: a BsfinLM (eval mode is set by the caller).
        batch_size: streams B.
        capacity: bytes per stream (<= context).
        dtype: dtype of the cached keys/values (default the model's parameter dtype).
        compile: None (eager), or a ``torch.compile`` mode for the patch and byte steps.
    """

    def __init__(self, model, batch_size: int, capacity: int, dtype: torch.dtype | None = None,
                 compile: str | None = None):
        super().__init__()
        c = model.config
        self._bound(model, batch_size, capacity)
        dev = model.head.weight.device
        kv_dtype = dtype or model.head.weight.dtype
        self.n_gram = max(c.ngrams)
        shortest = c.patch_stride if c.patcher == "fixed" else c.min_patch
        self.n_slots = math.ceil(capacity / shortest) + 1  # patches per stream, +1 for the open one
        H, dl, dc = c.n_heads, c.d_local // c.n_heads, c.d_model // c.n_heads
        self.register_buffer("hist", torch.zeros(batch_size, capacity, dtype=torch.long, device=dev))
        self.register_buffer("bpos", torch.zeros((), dtype=torch.long, device=dev))
        self.register_buffer("ppos", torch.zeros(batch_size, dtype=torch.long, device=dev))
        self.register_buffer("prev_end", torch.full((batch_size,), -1, dtype=torch.long, device=dev))
        for i in range(c.decoder_layers):
            self.register_buffer(f"dec_k{i}", torch.zeros(batch_size, H, capacity, dl, device=dev,
                                                          dtype=kv_dtype))
            self.register_buffer(f"dec_v{i}", torch.zeros_like(getattr(self, f"dec_k{i}")))
            self.register_buffer(f"mem_k{i}", torch.zeros(batch_size, H, self.n_slots + 1, dl,
                                                          device=dev, dtype=kv_dtype))
            self.register_buffer(f"mem_v{i}", torch.zeros_like(getattr(self, f"mem_k{i}")))
        for j in range(c.n_layers):  # the complex stack's keys/values, [re, im] on the last axis
            self.register_buffer(f"cx_k{j}", torch.zeros(batch_size, H, self.n_slots, 2 * dc,
                                                         device=dev, dtype=kv_dtype))
            self.register_buffer(f"cx_v{j}", torch.zeros_like(getattr(self, f"cx_k{j}")))
        self.stream = PatchStream(model.patcher, self.prev_end)
        self.warmup_steps = 4 * c.max_patch  # a few patches close, so both graphs are recorded
        self._setup(self._byte, None)
        self._close_fn, self._decode_fn = self._close, self._decode_byte
        if compile:
            self._close_fn = self._compile(self._close, compile)
            self._decode_fn = self._compile(self._decode_byte, compile)
            self.compiled = True

    def _layers(self, prefix: str, n: int):
        return [(getattr(self, f"{prefix}_k{i}"), getattr(self, f"{prefix}_v{i}")) for i in range(n)]

    # --- state ------------------------------------------------------------------------------
    @torch.no_grad()
    def prefill(self, x: torch.Tensor) -> torch.Tensor:
        """Reads the prompt x (B, n) with the reference step (one pass; its decoder caches are
        these buffers), then moves the patch state into the buffers. Returns logits (B, n, 256)."""
        m, c = self.model, self.model.config
        B, n = x.shape
        self._check_fits(n)
        dec = [KVCache(k, v, 0) for k, v in self._layers("dec", c.decoder_layers)]
        state = m.init_state(B, x.device, dec=dec)
        logits, state = m.step(x, state)
        self.hist[:, :n] = x
        self.bpos.fill_(n)
        null_kv = [layer.memory_kv(m.null.view(1, 1, -1).expand(B, 1, -1))
                   for layer in m.decoder]
        for (mk, mv), (k, v) in zip(self._layers("mem", c.decoder_layers), null_kv):
            mk[:, :, :1], mv[:, :, :1] = k, v
        for b, row in enumerate(state.rows):
            done = len(row["ends"])
            self.ppos[b] = done
            self.prev_end[b] = row["ends"][-1] if done else -1
            if not done:
                continue
            for (ck, cv), cache in zip(self._layers("cx", c.n_layers), row["layers"]):
                kr, ki, vr, vi = cache["kv"]
                ck[b, :, :done] = torch.cat([kr, ki], -1)[0]
                cv[b, :, :done] = torch.cat([vr, vi], -1)[0]
            for (mk, mv), layer in zip(self._layers("mem", c.decoder_layers), m.decoder):
                k, v = layer.memory_kv(state.mem[b][None])
                mk[b, :, 1:done + 1], mv[b, :, 1:done + 1] = k[0], v[0]
        self.stream.prev_end = self.prev_end.clone()
        self.n_bytes = n
        return logits

    # --- the per-byte work ------------------------------------------------------------------
    def _window(self, n: int) -> torch.Tensor:
        """The last n bytes up to byte ``bpos`` (B, n); -1 before the start of the stream."""
        at = self.bpos - n + 1 + torch.arange(n, device=self.hist.device)
        w = self.hist.gather(1, at.clamp(min=0).expand(self.B, n))
        return w.masked_fill(at < 0, -1)

    def _close(self, ends: torch.Tensor) -> None:
        """Streams with ends (B,) True close their patch at byte ``bpos``: encode it, step the
        complex stack at patch index ``ppos``, store the memory's keys/values in slot ppos+1."""
        m, c = self.model, self.model.config
        P = c.max_patch
        e = m.embed(self._window(P + self.n_gram - 1))[:, self.n_gram - 1:]  # (B, P, d)
        length = (self.bpos - self.prev_end)[:, None]  # (B, 1) bytes in the patch
        o = torch.arange(P, device=e.device)
        inside = o < length  # (B, P)
        src = (P - length + o).clamp(0, P - 1)
        grid = e.gather(1, src[..., None].expand(-1, -1, e.shape[-1])) * inside[..., None]
        vec = m.encoder(grid[:, None], inside[:, None])  # (B, 1, d)
        r, i = m.pos(*m.to_complex(vec, torch.zeros_like(vec)), start=self.ppos)
        for layer, (k, v) in zip(m.layers, self._layers("cx", c.n_layers)):
            r, i = layer.step_static(r, i, StaticKVCache(k, v, self.ppos))
        mem = m._complex_to_memory(r, i)  # (B, 1, d_local)
        for layer, (k, v) in zip(m.decoder, self._layers("mem", c.decoder_layers)):
            StaticKVCache(k, v, self.ppos + 1).append(*layer.memory_kv(mem))
        self.ppos.add_(ends.long())
        self.prev_end.copy_(torch.where(ends, self.bpos, self.prev_end))

    def _decode_byte(self) -> torch.Tensor:
        """The byte decoder at byte ``bpos`` (already in ``hist``); logits (B, 256) fp32."""
        m, c = self.model, self.model.config
        h = m.embed(self._window(self.n_gram))[:, -1:]  # (B, 1, d)
        # slot 0 (the null memory) and the closed patches' memories, 1..ppos
        visible = (torch.arange(self.n_slots + 1, device=h.device) <= self.ppos[:, None])[:, None]
        for layer, (k, v), (mk, mv) in zip(m.decoder, self._layers("dec", c.decoder_layers),
                                           self._layers("mem", c.decoder_layers)):
            h = layer(h, mk, mv, visible, StaticKVCache(k, v, self.bpos))
        self.bpos.add_(1)
        return m.head(m.norm(h))[:, 0].float()

    def _byte(self, b: torch.Tensor) -> torch.Tensor:
        """Appends byte b (B,); next-byte logits (B, 256) fp32."""
        t = self.n_bytes
        self.hist[:, t] = b
        lo = self.stream.window_start(t + 1)
        ends = self.stream.push(self.hist[:, lo:t + 1], t)
        if bool(ends.any()):  # the host decides: most bytes close no patch
            self._close_fn(ends)
        return self._decode_fn()

    def capacity(self) -> int:
        return self.C - self.n_bytes
