"""Fixed-shape AGIFORMER decoding: the per-byte work as one function over preallocated buffers,
so ``torch.compile`` builds it once per in-patch phase (P graphs), and on CUDA
``mode="reduce-overhead"`` replays it as a CUDA graph. The reference is ``AgiformerLM.step``
(tests equate the two); this is its fast path.

What changes against the reference state (``AgiformerState``):
- the sliding-window KV caches are rings of W slots (``mixers.RingWindowCache``) instead of
  concatenate-and-crop tensors whose length grows to W; the model's own ``advance`` and
  local decoder ``step`` run on them;
- positions are held in tensors (``pos``, and ``bpos`` for the local decoder's byte window),
  not Python ints, so they do not specialise the compiled graph;
- the bytes of the open patch live in a (B, P) buffer; the phase (bytes in it, 0..P-1) is the
  only Python-level value and selects the graph;
- the ACT block runs every step for every position (its eval-time early exit needs a host
  sync); halted positions contribute zero weight, so the output is the same.

    dec = StaticDecoder(model, batch_size=1)
    logits = dec.prefill(prompt)          # (B, n, 256), through the reference path
    for _ in range(n_new):
        nxt = logits[:, -1].argmax(-1)    # (B,)
        logits = dec.step(nxt)[:, None]   # (B, 1, 256)
"""
import torch

from bytelm.models.agiformer.mixers import RingWindowCache
from bytelm.nn.static_decoder import StaticDecoderBase


class StaticDecoder(StaticDecoderBase):
    """Holds the decoding state of ``model`` for ``batch_size`` streams in fixed-shape buffers.

    Args:
        model: an AgiformerLM (eval mode is set by the caller).
        batch_size: streams B.
        dtype: dtype of the KV ring (the dtype of the keys under the caller's autocast;
            default the model's parameter dtype).
        compile: None (eager), or a ``torch.compile`` mode ("default", "reduce-overhead", ...).
    """

    def __init__(self, model, batch_size: int, dtype: torch.dtype | None = None,
                 compile: str | None = None):
        super().__init__()
        c = model.config
        dev = model.start.device
        self.model, self.P, self.B = model, model.P, batch_size
        self.W, self.H = c.window, c.n_heads
        self.Dh = c.d_model // c.n_heads
        kv_dtype = dtype or model.start.dtype
        self.register_buffer("tail", torch.zeros(batch_size, model.encoder.K - self.P, c.d_model,
                                                 device=dev, dtype=model.start.dtype))
        self.register_buffer("cur", torch.zeros(batch_size, self.P, dtype=torch.long, device=dev))
        self.register_buffer("ctx", torch.zeros(batch_size, c.d_model, device=dev,
                                                dtype=model.start.dtype))
        self.register_buffer("pos", torch.zeros((), dtype=torch.long, device=dev))
        ring = (batch_size, self.H, self.W, self.Dh)
        for i in range(c.n_layers):
            self.register_buffer(f"swa_k{i}", torch.zeros(ring, device=dev, dtype=kv_dtype))
            self.register_buffer(f"swa_v{i}", torch.zeros(ring, device=dev, dtype=kv_dtype))
        self.local = c.decoder == "local"
        if self.local:  # the local byte decoder's windows: a ring of decoder_window byte slots
            head = model.head
            a0 = head.attns[0]
            byte_ring = (batch_size, a0.H, head.window, a0.Dh)
            for i in range(len(head.attns)):
                self.register_buffer(f"dec_k{i}", torch.zeros(byte_ring, device=dev, dtype=kv_dtype))
                self.register_buffer(f"dec_v{i}", torch.zeros(byte_ring, device=dev, dtype=kv_dtype))
            self.register_buffer("bpos", torch.zeros((), dtype=torch.long, device=dev))
        # recurrent states: shapes from one reference step on zeros (None state = zeros)
        x0 = torch.zeros(batch_size, 1, c.d_model, device=dev, dtype=model.start.dtype)
        with torch.no_grad():
            for i, blk in enumerate(model.blocks):
                self.register_buffer(f"lin{i}", torch.zeros_like(blk.lin.step(x0, None)[1]))
            self.register_buffer("mem", torch.zeros_like(model.memory.step(x0, None)[1]))
        self.n_bytes = 0
        self.warmup_steps = 4 * self.P  # every phase graph built and recorded
        self._setup(self._byte, compile)

    # --- state ------------------------------------------------------------------------------
    def prefill(self, x: torch.Tensor) -> torch.Tensor:
        """Reads the prompt x (B, n >= 1) with the reference path, then moves its state into the
        buffers. Returns its logits (B, n, 256)."""
        m = self.model
        state = m.init_state(x.shape[0], x.device)
        logits, state = m.step(x, state)
        self.load_state(state)
        return logits

    def _rings(self, prefix: str, n: int, pos: torch.Tensor) -> list[RingWindowCache]:
        """The ring caches over buffers prefix_k{i}, prefix_v{i}, i < n, written at ``pos``."""
        return [RingWindowCache(getattr(self, f"{prefix}_k{i}"), getattr(self, f"{prefix}_v{i}"), pos)
                for i in range(n)]

    @torch.no_grad()
    def load_state(self, state) -> None:
        """Copies a reference ``AgiformerState`` into the buffers."""
        self.n_bytes = state.n_bytes
        n_patches = state.n_bytes // self.P
        self.pos.fill_(n_patches)
        self.tail.copy_(state.tail)
        self.ctx.copy_(state.ctx)
        self.cur.zero_()
        for j, b in enumerate(state.cur):
            self.cur[:, j] = b
        # the window caches hold the last patches, n_patches - n .. n_patches - 1
        for ring, cache in zip(self._rings("swa", len(state.blocks), self.pos), state.blocks):
            ring.load(cache["swa"], n_patches)
        for i, cache in enumerate(state.blocks):
            lin = getattr(self, f"lin{i}")
            lin.zero_() if cache["lin"] is None else lin.copy_(cache["lin"])
        self.mem.zero_() if state.memory is None else self.mem.copy_(state.memory)
        if self.local:
            self.bpos.fill_(state.n_bytes)  # byte j = n_bytes is next; it writes position j - 1
            for ring, cache in zip(self._rings("dec", len(state.dec), self.bpos), state.dec):
                ring.load(cache, state.n_bytes)

    # --- the per-byte function ----------------------------------------------------------------
    def _patch_step(self) -> None:
        """The reference's _patch_step on the buffers: encode the patch in ``cur``, advance
        every mixer, the memory and ACT by one position (``AgiformerLM.advance``); pos += 1."""
        m = self.model
        emb = m.encoder.embed(self.cur)  # (B, P, d)
        window = torch.cat([self.tail.to(emb.dtype), emb], 1)  # (B, K, d)
        h = m.encoder.encode_window(window)[:, None]  # (B, 1, d)
        lins = [getattr(self, f"lin{i}") for i in range(len(m.blocks))]
        caches = [{"swa": ring, "lin": lin}
                  for ring, lin in zip(self._rings("swa", len(m.blocks), self.pos), lins)]
        h, mem = m.advance(h, caches, self.mem, self.pos, early_exit=False)
        for lin, cache in zip(lins, caches):  # the recurrent states come back as new tensors
            lin.copy_(cache["lin"])
        self.mem.copy_(mem)
        self.ctx.copy_(h[:, 0].to(self.ctx.dtype))
        self.tail.copy_(window[:, window.shape[1] - self.tail.shape[1]:].to(self.tail.dtype))
        self.pos.add_(1)

    def _byte(self, b: torch.Tensor, phase: int) -> torch.Tensor:
        """Appends byte b (B,) at in-patch offset ``phase``; next-byte logits (B, 256) fp32."""
        self.cur[:, phase] = b
        if phase == self.P - 1:
            self._patch_step()
        if self.local:  # byte j = bpos + 1 from the byte just read, at window position bpos
            head = self.model.head
            logits = head.step(self.ctx, b, self.bpos + 1,
                               self._rings("dec", len(head.attns), self.bpos))
            self.bpos.add_(1)
            return logits.float()
        prefix = self.cur[:, :0] if phase == self.P - 1 else self.cur[:, :phase + 1]
        return self.model.head.predict(self.ctx, prefix).float()

    def graph_args(self) -> tuple:
        """The in-patch phase of the next byte (bytes in the open patch, 0..P-1)."""
        return (self.n_bytes % self.P,)
