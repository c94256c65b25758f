"""Fixed-shape hnet decoding: every stage's state in preallocated buffers, positions in tensors,
and the main network run only for bytes where some stream's boundary fires. The reference is
``HNetLM.step`` (tests equate the two); this is its fast path.

Per byte t (every stream at byte t, so t is one Python int):
1. ``_encode`` (a graph): embed the byte, the encoder blocks' step over fixed-shape caches
   (``StaticKVCache`` for attn, a ring for swa, the recurrent state for hebbian), the boundary
   (the learned router from this byte's and the previous byte's encoder vectors, or the rule
   chunker's end decided on the host by ``patching.stream.PatchStream``), kept iff the stream
   has a free chunk slot;
2. ``_main`` (a graph) when some stream keeps a boundary: the main network's step at each
   stream's own slot (``stages.main_block_step`` with a (B,) start; streams that keep nothing
   write the scratch slot), dechunking (the EMA by p for the learned router), and the vector
   of each stream's current chunk updated where a boundary was kept;
3. ``_decode`` (a graph): encoder residual + the current chunk's vector, the decoder blocks'
   step, the logits.

Single stream (B = 1): whether the main network runs is decided on the host (one sync per
byte reads ``kept``), so it costs its work on ~1/chunk_len of the bytes. Several streams: some
stream fires at most bytes, so the three parts run as one graph with no host decision (rows
that keep nothing keep no state: their slot count does not advance, their chunk vector is
unchanged, and the slot they wrote is the scratch slot).
"""
import torch

from bytelm.models.agiformer.mixers import RingWindowCache
from bytelm.models.hnet.chunking import _MIN_KEEP
from bytelm.models.hnet.stages import SlotCache, main_block_step
from bytelm.nn import KVCache
from bytelm.nn.static_cache import StaticKVCache
from bytelm.nn.static_decoder import StaticDecoderBase
from bytelm.patching.stream import PatchStream


class HNetStaticDecoder(StaticDecoderBase):
    """Holds the decoding state of an HNetLM for ``batch_size`` streams in fixed-shape buffers.

    Args:
        model: an HNetLM (eval mode is set by the caller).
        batch_size: streams B.
        capacity: bytes per stream (<= context).
        dtype: dtype of cached keys/values (default the model's parameter dtype).
        compile: None (eager), or a ``torch.compile`` mode for the per-byte graphs.
        fused: run the main network at every byte in one graph (no host decision); default
            True for several streams. One stream (default False): the split decoder, which
            replays the main network's graph only when a boundary is kept, a host decision per
            byte; on an H100 it decoded 1,986 bytes/s at 1K context against the fused graph's
            1,582 (generate/bench_generate_hnet_split_h100.json and
            generate/bench_generate_after_h100.json: two calls, two machines), and both equal the eager step
            (tests/models/test_gpu.py, gpu_tests/pytest_gpu_decoders_after_h100.log).
    """

    def __init__(self, model, batch_size: int, capacity: int, dtype: torch.dtype | None = None,
                 compile: str | None = None, fused: bool | None = None):
        super().__init__()
        c = model.config
        self._bound(model, batch_size, capacity)
        dev, pdtype = model.embed.weight.device, model.embed.weight.dtype
        kv_dtype = dtype or pdtype
        self.fused = batch_size > 1 if fused is None else fused
        self.learned = model.router is not None
        B, d = batch_size, c.d_byte
        self.register_buffer("hist", torch.zeros(B, capacity, dtype=torch.long, device=dev))
        self.register_buffer("bpos", torch.zeros((), dtype=torch.long, device=dev))
        self.register_buffer("chunks", torch.zeros(B, dtype=torch.long, device=dev))
        self.register_buffer("last", torch.zeros(B, d, device=dev, dtype=pdtype))
        self.register_buffer("prev", torch.zeros(B, d, device=dev, dtype=pdtype))
        # the current byte between the graphs: encoder output, its norm, p, kept
        self.register_buffer("h_cur", torch.zeros(B, 1, d, device=dev, dtype=pdtype))
        self.register_buffer("hn_cur", torch.zeros(B, 1, d, device=dev, dtype=pdtype))
        self.register_buffer("p_cur", torch.ones(B, 1, device=dev))
        self.register_buffer("kept", torch.zeros(B, dtype=torch.bool, device=dev))
        self.register_buffer("no_ends", torch.zeros(B, dtype=torch.bool, device=dev))
        x0 = torch.zeros(B, 1, d, device=dev, dtype=pdtype)
        for stage, blocks in (("enc", model.encoder), ("dec", model.decoder)):
            for i, blk in enumerate(blocks):
                if blk.mixer == "attn":
                    a = blk.attn
                    shape = (B, a.n_heads, capacity, a.d_head)
                elif blk.mixer == "swa":
                    s = blk.swa
                    shape = (B, s.H, s.window, s.Dh)
                else:  # hebbian: the recurrent state's shape from one step on zeros
                    with torch.no_grad():
                        state = blk.mem.step(x0, None)[1]
                    self.register_buffer(f"{stage}_s{i}", torch.zeros_like(state))
                    continue
                self.register_buffer(f"{stage}_k{i}", torch.zeros(shape, device=dev, dtype=kv_dtype))
                self.register_buffer(f"{stage}_v{i}", torch.zeros(shape, device=dev, dtype=kv_dtype))
        dh = c.d_main // c.main_heads
        # a stream of `capacity` bytes keeps at most that many chunks, so min(slots, capacity)
        # slots never overflow (the kept rule still counts against c.slots); each step attends
        # over every slot, so the buffer is sized to the generation, not to the context
        M = min(c.slots, capacity)
        for j in range(c.main_layers):  # slot M is the scratch slot of masked writes
            self.register_buffer(f"main_k{j}", torch.zeros(B, c.main_heads, M + 1, dh,
                                                           device=dev, dtype=kv_dtype))
            self.register_buffer(f"main_v{j}", torch.zeros_like(getattr(self, f"main_k{j}")))
        self.stream = None
        if not self.learned:
            self.stream = PatchStream(model.patcher, torch.full((B,), -1, dtype=torch.long,
                                                                device=dev))
        self.warmup_steps = 4 * max(int(c.chunk_len), c.patch_max if not self.learned else 1)
        self._setup(self._byte, None)
        parts = (self._encode, self._main, self._decode)
        if self.fused:
            parts = (self._all,)
        if compile:
            parts = tuple(self._compile(f, compile) for f in parts)
            self.compiled = True
        self._parts = parts

    # --- caches over the buffers ----------------------------------------------------------------
    def _caches(self, stage: str, blocks, pos) -> list:
        """Per-block caches of ``stage`` (enc | dec) over the buffers at position ``pos``."""
        out = []
        for i, blk in enumerate(blocks):
            if blk.mixer == "attn":
                out.append(StaticKVCache(getattr(self, f"{stage}_k{i}"),
                                         getattr(self, f"{stage}_v{i}"), pos))
            elif blk.mixer == "swa":
                out.append(RingWindowCache(getattr(self, f"{stage}_k{i}"),
                                           getattr(self, f"{stage}_v{i}"), pos))
            else:
                out.append({"state": getattr(self, f"{stage}_s{i}")})
        return out

    def _run(self, stage: str, blocks, h: torch.Tensor) -> torch.Tensor:
        """The blocks' step on one byte h (B, 1, d) at ``bpos``; recurrent states written back."""
        caches = self._caches(stage, blocks, self.bpos)
        for blk, cache in zip(blocks, caches):
            h = blk.step(h, cache, self.bpos)
        for i, (blk, cache) in enumerate(zip(blocks, caches)):
            if blk.mixer == "hebbian":
                getattr(self, f"{stage}_s{i}").copy_(cache["state"])
        return h

    def _main_caches(self) -> list[SlotCache]:
        n = self.model.config.main_layers
        return [SlotCache(getattr(self, f"main_k{j}"), getattr(self, f"main_v{j}")) for j in range(n)]

    # --- state ----------------------------------------------------------------------------------
    @torch.no_grad()
    def prefill(self, x: torch.Tensor) -> torch.Tensor:
        """Reads the prompt x (B, n >= 1) with the reference step (one pass; attention caches
        and main-network slots are written into the buffers), then moves the rest of the state
        into the buffers. Returns logits (B, n, 256)."""
        m, c = self.model, self.model.config
        B, n = x.shape
        self._check_fits(n)
        for buf in self.buffers(recurse=False):
            if buf is not self.p_cur and buf is not self.no_ends:
                buf.zero_()
        state = m.init_state(B, x.device)
        state.enc = [KVCache(getattr(self, f"enc_k{i}"), getattr(self, f"enc_v{i}"), 0) if blk.mixer == "attn" else cache
                     for i, (blk, cache) in enumerate(zip(m.encoder, state.enc))]
        state.dec = [KVCache(getattr(self, f"dec_k{i}"), getattr(self, f"dec_v{i}"), 0)
                     if blk.mixer == "attn" else cache
                     for i, (blk, cache) in enumerate(zip(m.decoder, state.dec))]
        state.main = self._main_caches()
        logits, state = m.step(x, state)
        self.hist[:, :n] = x
        self.bpos.fill_(n)
        self.chunks.copy_(state.chunks)
        self.last.copy_(state.last.to(self.last.dtype))
        if state.prev is not None:
            self.prev.copy_(state.prev.to(self.prev.dtype))
        for stage, blocks, caches in (("enc", m.encoder, state.enc), ("dec", m.decoder, state.dec)):
            for i, (blk, cache) in enumerate(zip(blocks, caches)):
                if blk.mixer == "swa":
                    RingWindowCache(getattr(self, f"{stage}_k{i}"), getattr(self, f"{stage}_v{i}"),
                                    self.bpos).load(cache, n)
                elif blk.mixer == "hebbian":
                    getattr(self, f"{stage}_s{i}").copy_(cache["state"])
        if self.stream is not None:  # the rule's own last patch end (byte 0's forced
            ends = m.patcher(x).bool()  # boundary is not one of the rule's ends)
            t = torch.arange(n, device=x.device).expand(B, n)
            self.stream.prev_end = torch.where(ends, t, torch.full_like(t, -1)).amax(1)
        self.n_bytes = n
        return logits

    # --- the per-byte work ----------------------------------------------------------------------
    def _encode(self, b: torch.Tensor, ends: torch.Tensor) -> None:
        """Byte b (B,) through the encoder at ``bpos``; sets h_cur, hn_cur, p_cur and kept
        (ends (B,) bool: the rule chunker's decision; ignored by the learned router)."""
        m = self.model
        h = self._run("enc", m.encoder, m.embed(b[:, None]))
        if self.learned:
            p = m.router(h, prev=self.prev)  # (B, 1)
            bnd = p[:, 0] >= 0.5
            self.prev.copy_(h[:, 0].to(self.prev.dtype))
            self.p_cur.copy_(p)
        else:
            bnd = ends
        self.kept.copy_(bnd & (self.chunks < m.config.slots))
        self.h_cur.copy_(h.to(self.h_cur.dtype))
        self.hn_cur.copy_(m.enc_norm(h).to(self.hn_cur.dtype))

    def _main(self) -> None:
        """The main network at each stream's next slot; the chunk vector of streams that kept a
        boundary becomes the new (smoothed) one, and their slot count advances."""
        m, c = self.model, self.model.config
        n_new = self.kept.long()
        u = m.up(self.hn_cur)
        for blk, cache in zip(m.main, self._main_caches()):
            u = main_block_step(blk, u, cache, self.chunks, n_new)
        y = m.down(m.main_norm(u))[:, 0]  # (B, d)
        if self.learned and c.smoothing:  # smooth_reference with z0 = last, one slot
            f = torch.promote_types(y.dtype, torch.float32)
            p = self.p_cur.to(f)
            y = p * y.to(f) + (1 - p).clamp_min(_MIN_KEEP) * self.last.to(f)
        self.last.copy_(torch.where(self.kept[:, None], y.to(self.last.dtype), self.last))
        self.chunks.add_(n_new)

    def _decode(self) -> torch.Tensor:
        """Encoder residual + the current chunk's vector through the decoder; logits (B, 256)."""
        m = self.model
        h = m._skip(self.h_cur, self.hn_cur) + self.last[:, None].to(self.h_cur.dtype)
        h = self._run("dec", m.decoder, h)
        self.bpos.add_(1)
        return m.head(m.norm(h))[:, 0].float()

    def _all(self, b: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
        """The three parts as one function (several streams: no host decision)."""
        self._encode(b, ends)
        self._main()
        return self._decode()

    def _byte(self, b: torch.Tensor) -> torch.Tensor:
        """Appends byte b (B,); next-byte logits (B, 256) fp32."""
        t = self.n_bytes
        self.hist[:, t] = b
        if self.stream is not None:
            lo = self.stream.window_start(t + 1)
            ends = self.stream.push(self.hist[:, lo:t + 1], t)
        else:
            ends = self.no_ends  # unused by the learned router
        if self.fused:
            return self._parts[0](b, ends)
        encode, main, decode = self._parts
        encode(b, ends)
        if bool(self.kept.any()):  # the host decides: most bytes close no chunk
            main()
        return decode()

    def capacity(self) -> int:
        return self.C - self.n_bytes
