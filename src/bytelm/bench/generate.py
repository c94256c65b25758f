"""Generation speed: time to first byte (prefill) and greedy decode rate at each context length.

For each (batch, context C): a random prompt of C bytes is fed to a fresh decoder in one
``prefill`` call (the time to first byte, argmax included); then single-byte ``step`` calls
are timed, each fed the argmax of the last logits (greedy, no sampling), or, on a decoder with
greedy blocks (the Transformer's: ``greedy_block`` bytes per call, the argmax inside; what
``bytelm generate`` runs at temperature 0), block calls (``greedy_block`` in the row). The decoder is the
model's own ``step`` (eager) or its fixed-shape decoder, compiled or not
(``bytelm.generate.decoder``; "auto" is the fastest exact one: compiled on CUDA). A model with a bounded
cache (the GPT KV cache holds ``context`` bytes) reports contexts beyond it as
"n/a (exceeds context)" instead of cropping them.
"""
import contextlib
import logging
import statistics
import time
from typing import Callable

import torch

from bytelm.bench.memory import device_peak_gib, failure_status, host_peak_rss_gib, reset_peak
from bytelm.bench.timing import Stopwatch, synchronize, time_fn
from bytelm.errors import UserError

log = logging.getLogger(__name__)

NA_CONTEXT = "n/a (exceeds context)"
# bytes a bounded fixed-shape cache holds beyond prompt + warm-up + timed bytes, for the extra
# warm-up a compiled decoder asks for (its warmup_steps: at most 4 patches of 16 bytes)
WARMUP_ALLOWANCE = 64


def _argmax_next(logits: torch.Tensor) -> torch.Tensor:
    """(B, L, 256) -> the greedy next byte of each row, (B, 1)."""
    return logits[:, -1].argmax(-1, keepdim=True)


def decode_fns(model, batch: int, device: torch.device, decode: str = "eager",
               kv_dtype: torch.dtype | None = None, need: int | None = None):
    """(init_step, step, min_warmup, decoder) of a decoding mode (``bytelm.generate.decoder``:
    eager, static, compiled or auto): ``init_step(x (B, L))`` prefills and returns
    (logits (B, L', 256), state); ``step(next (B, 1), state)`` feeds one byte per row and
    returns (logits (B, 1, 256), state). A compiled decoder builds and records its graphs in its
    first ``min_warmup`` = ``warmup_steps`` steps (0 otherwise); a bounded fixed-shape cache is
    sized to ``need`` bytes."""
    from bytelm.generate.decoder import make_decoder, resolve_decode
    if resolve_decode(model, decode, device) == "eager":  # the state stays visible (profilers)
        def init_step(x):
            return model.step(x, model.init_state(batch, device))
        return init_step, model.step, 0, None
    dec = make_decoder(model, batch, decode, dtype=kv_dtype, need=need)

    def init_step(x):
        return dec.prefill(x), None

    def step(nxt, state):
        return dec.step(nxt[:, 0])[:, None], state
    return init_step, step, (dec.warmup_steps if dec.compiled else 0), dec


def decode_row(model, name: str, batch: int, context: int, new_bytes: int, prefill_reps: int,
               decode_reps: int, decode_warmup: int, device: torch.device,
               decode: str = "eager", kv_dtype: torch.dtype | None = None,
               greedy_blocks: bool = True) -> dict:
    """Prefill and decode timings of one (batch, context); see the module docstring.

    When the cache holds the prompt but not prompt + warm-up + new bytes, decoding is timed
    after a shorter prompt that ends the run exactly at the cache's capacity (``decode_start``
    says where it started); the time to first byte still uses the full prompt.
    decode: "eager", "static", "compiled" or "auto" (``bytelm.generate.decoder``; the row
    records the mode it resolved to). A compiled decoder's warm-up (compilation, CUDA-graph
    recording) is raised to its ``warmup_steps`` and reported apart (``warmup_s``), never timed.
    greedy_blocks: False times a decoder with greedy blocks one byte per call (row
    ``greedy_block`` 1).
    """
    from bytelm.generate.decoder import resolve_decode
    cap = model.max_state_bytes()
    row = {"model": name, "family": model.config.family, "batch": batch, "context": context,
           "cache_limit": cap, "beyond_trained_context": context > model.config.context,
           "decode": decode, "status": "ok"}
    try:
        row["decode"] = resolve_decode(model, decode, device)
    except UserError as e:
        row["status"] = f"n/a: {e}"
        return row
    if cap is not None and context > cap:
        row["status"] = NA_CONTEXT
        row["note"] = f"a {context}-byte prompt does not fit the {cap}-byte cache"
        return row
    reset_peak(device)
    gen = torch.Generator(device="cpu").manual_seed(context + batch)
    prompt = torch.randint(0, 256, (batch, context), generator=gen).to(device)
    held: dict = {}
    seg = max(1, new_bytes // decode_reps)
    n_timed = seg * min(decode_reps, new_bytes)
    try:
        init_step, step, min_warmup, dec = decode_fns(
            model, batch, device, row["decode"], kv_dtype,
            need=context + decode_warmup + WARMUP_ALLOWANCE + n_timed)
        decode_warmup = max(decode_warmup, min_warmup)
        k = dec.greedy_block if dec is not None and greedy_blocks else 1
        # whole blocks: segments of a multiple of k bytes, 3 untimed block calls (CUDA graphs
        # are recorded on a graph's second or third call) after the single-byte warm-up
        block_warmup = 3 if k > 1 else 0
        if k > 1:
            seg = -(-seg // k) * k
            n_timed = seg * min(decode_reps, new_bytes)
        single_warmup = decode_warmup
        decode_warmup += block_warmup * k
        row["greedy_block"] = k

        def prefill(x=prompt):
            logits, state = init_step(x)
            held["state"], held["next"] = state, _argmax_next(logits)

        pre = time_fn(prefill, warmup=0, reps=prefill_reps, device=device)
        start = context
        if cap is not None and context + decode_warmup + n_timed > cap:
            start = cap - decode_warmup - n_timed
            if start < 1:
                # the prompt fits, the decoding does not: time to first byte only
                row.update(_prefill_fields(pre, batch, context), status=NA_CONTEXT,
                           note=f"{decode_warmup} warm-up + {n_timed} new bytes do not fit the "
                                f"{cap}-byte cache")
                return row
            prefill(prompt[:, :start])
            row["note"] = (f"decode timed after a {start}-byte prompt so that {decode_warmup} "
                           f"warm-up + {n_timed} new bytes fit the {cap}-byte cache")
        state, nxt = held["state"], held["next"]
        synchronize(device)
        t0 = time.perf_counter()
        for _ in range(single_warmup):
            logits, state = step(nxt, state)
            nxt = _argmax_next(logits)
        for _ in range(block_warmup):
            nxt = dec.greedy(nxt[:, 0])[:, -1:]
        synchronize(device)
        warmup_s = time.perf_counter() - t0
        sw = Stopwatch(device)
        for _ in range(n_timed // seg):
            sw.start()
            if k > 1:
                for _ in range(seg // k):
                    nxt = dec.greedy(nxt[:, 0])[:, -1:]
            else:
                for _ in range(seg):
                    logits, state = step(nxt, state)
                    nxt = _argmax_next(logits)
            sw.stop()
        per_byte = [t / seg for t in sw.times_ms()]
    except Exception as e:  # noqa: BLE001 - one failing row (e.g. OOM) ends only itself
        row["status"] = failure_status(e)
        log.warning("%s batch %d context %d: %s", name, batch, context, row["status"])
        return row
    finally:
        held.clear()
    ms = statistics.median(per_byte)
    row.update(_prefill_fields(pre, batch, context), decode_start=start + decode_warmup,
               warmup_steps=decode_warmup, warmup_s=warmup_s,
               new_bytes=n_timed, decode_ms_per_byte=ms, decode_ms_per_byte_min=min(per_byte),
               decode_segments=len(per_byte), bytes_per_s_per_stream=1e3 / ms,
               bytes_per_s=batch * 1e3 / ms, peak_memory_gib=device_peak_gib(device),
               host_peak_rss_gib=host_peak_rss_gib())
    return row


def _prefill_fields(pre: dict, batch: int, context: int) -> dict:
    return {"ttfb_ms": pre["median_ms"], "ttfb_ms_min": pre["min_ms"],
            "ttfb_first_call_ms": pre["first_call_ms"], "prefill_reps": pre["reps"],
            "prefill_bytes_per_s": batch * context / (pre["median_ms"] / 1e3)}


def bench_generate(models: list[tuple[str, Callable[[], torch.nn.Module]]], contexts: list[int],
                   new_bytes: int, batches: list[int], dtype: torch.dtype, device: torch.device,
                   prefill_reps: int = 3, decode_reps: int = 4, decode_warmup: int = 8,
                   on_row: Callable[[dict], None] | None = None,
                   decodes: tuple[str, ...] = ("auto",),
                   greedy_blocks: tuple[bool, ...] = (True,)) -> list[dict]:
    """One row per (model, batch, context).

    Args:
        models: (name, builder) pairs; a builder returns the model on ``device``.
        contexts: prompt lengths in bytes.
        new_bytes: greedy bytes timed after each prompt, split into ``decode_reps`` segments
            (the median segment's time per byte is reported).
        batches: batch sizes (1 = single stream).
        dtype: bf16 runs under autocast; fp32 without.
        prefill_reps: timed prefills (after one untimed first call, reported apart).
        decode_warmup: untimed single-byte steps before the timed ones.
        on_row: called with each finished row (e.g. to save partial results).
        decodes: decode modes ("auto", "eager", "static", "compiled"), one row each.
        greedy_blocks: (True,): decoders with greedy blocks timed in them; (True, False): also
            one byte per call, a row each (decoders without blocks: one row).
    Returns:
        rows (dicts, JSON-serialisable).
    """
    rows = []
    for name, build in models:
        model = build().eval()
        amp = (torch.autocast(device_type=device.type, dtype=torch.bfloat16)
               if dtype == torch.bfloat16 else contextlib.nullcontext())
        with torch.no_grad(), amp:
            for decode in decodes:
                for batch in batches:
                    for ctx in contexts:
                        blocks_used = None
                        for blocks in greedy_blocks:
                            if not blocks and blocks_used is False:
                                continue  # the row just made had no greedy blocks to turn off
                            log.info("generate %s batch %d context %d (%s%s)", name, batch, ctx,
                                     decode, "" if blocks else ", one byte per call")
                            rows.append(decode_row(model, name, batch, ctx, new_bytes,
                                                   prefill_reps, decode_reps, decode_warmup,
                                                   device, decode,
                                                   dtype if dtype == torch.bfloat16 else None,
                                                   blocks))
                            blocks_used = rows[-1].get("greedy_block", 1) > 1
                            model.drop_static_decoders()  # a decoder's buffers end with its row
                            if on_row:
                                on_row(rows[-1])
        del model
    return rows
