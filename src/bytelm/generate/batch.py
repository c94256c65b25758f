"""Generation on any decoder: one prompt (``iter_generate``, ``generate_bytes``) or many of
different lengths in one batch (``iter_batch``, ``generate_many``).

In a batch, every stream is prefilled with the first m bytes of its prompt (m = the shortest prompt), in
one pass; then all streams step together, one byte each, and a stream whose prompt is not
finished is fed its next prompt byte instead of the sampled one. So every stream's state holds
exactly its own bytes (no padding reaches a model, recurrent or not), all states always hold
the same number of bytes, and a bounded cache fills for every stream at the same step: it is
then rebuilt from each stream's last ``context // 2`` bytes, so long generations keep going
with at least half a context of history (full recompute over a sliding window, applied every
context/2 bytes instead of every byte). Greedy output per stream equals generating it alone.
Sampling draws from one generator for the whole batch: seeded runs repeat, and a batch of one
draws exactly what single-stream generation draws.

Greedy (temperature 0) on a decoder with greedy blocks (``greedy_block`` k > 1: the
Transformer's fixed-shape decoder) runs k bytes per decoder call once every prompt is read:
one CUDA graph of k steps with the argmax inside, its bytes read back once, instead of a graph
launch, an argmax and a host read per byte. The bytes are the same (tests/generate); a stream
that stops inside a block just leaves the rest of it unread.
"""
from typing import Iterator

import torch

from bytelm.errors import UserError
from bytelm.generate.decoder import make_decoder
from bytelm.generate.sample import sample_entropy_aware, sample_next


def as_prompt_bytes(prompt) -> bytes:
    """A prompt (str, bytes or a sequence of byte values) as bytes."""
    return prompt.encode("utf-8") if isinstance(prompt, str) else bytes(prompt)


def check_prompts(prompts, context: int) -> list[bytes]:
    """Prompts as bytes; an empty list or an empty prompt is a UserError (naming the prompt when
    there are several); one longer than the context is left-cropped to it, with a warning."""
    data = [as_prompt_bytes(p) for p in prompts]
    if not data:
        raise UserError("no prompts given")
    for i, d in enumerate(data):
        which = f"prompt {i + 1}" if len(data) > 1 else "the prompt"
        if not d:
            raise UserError(f"{which} is empty: give at least one byte")
        if len(d) > context:
            import logging
            logging.getLogger(__name__).warning(
                "%s is %d bytes, longer than the model's context of %d: using its last %d bytes",
                which, len(d), context, context)
            data[i] = d[-context:]
    return data


def iter_batch(model, prompts, max_bytes: int = 256, temperature: float = 1.0, top_k: int = 0,
               top_p: float = 1.0, seed: int | None = None, stop: bytes | None = None,
               mode: str = "standard", entropy_low: float = 0.3, entropy_high: float = 1.2,
               decode: str = "eager") -> Iterator[list[int | None]]:
    """Yields, once per step, the new byte of every stream (None for a stream still reading its
    prompt or already finished). A stream finishes after ``max_bytes`` bytes or when its
    prompt + output ends with ``stop``. Sampling options as in ``iter_generate``;
    decode: "auto", "eager", "static" or "compiled" (``bytelm.generate.decoder``)."""
    if mode not in ("standard", "entropy"):
        raise UserError(f"unknown sampling mode {mode!r} (standard or entropy)")
    ctx = model.config.context
    data = check_prompts(prompts, ctx)
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    B, lens = len(data), [len(d) for d in data]
    m, longest = min(lens), max(lens)
    dec = make_decoder(model, B, decode, need=longest + max_bytes)
    history = [bytearray(d[:m]) for d in data]
    pending = torch.tensor([list(d) + [0] * (longest - len(d)) for d in data], device=device)
    in_prompt = torch.tensor(lens, device=device)
    last = dec.prefill(pending[:, :m])[:, -1]
    made, done = [0] * B, [False] * B
    fed = m  # bytes every state holds (read by the decoder, or yielded and queued in ``ahead``)
    # greedy blocks: at temperature 0 a decoder with ``greedy`` decodes k bytes per call once
    # every prompt is read; ``ahead`` holds the steps it returned that are not yielded yet, each
    # as (B,) tensor and list (the decoder has read all but the last of them)
    k = getattr(dec, "greedy_block", 1)
    blocks = k > 1 and mode == "standard" and temperature <= 0
    ahead: list[tuple[torch.Tensor, list[int]]] = []
    while True:
        if ahead:
            nxt, vals = ahead.pop(0)
        else:
            if mode == "entropy":
                nxt = sample_entropy_aware(last, entropy_low, entropy_high, top_k or 10,
                                           max(temperature, 1e-6), top_p, gen)
            else:
                nxt = sample_next(last, temperature, top_k, top_p, gen)
            if fed < longest:  # streams still reading their prompts take its next byte
                nxt = torch.where(in_prompt > fed, pending[:, fed], nxt)
            vals = nxt.tolist()
        out: list[int | None] = [None] * B
        for b in range(B):
            if done[b] or fed < lens[b]:
                continue
            out[b] = vals[b]
            made[b] += 1
            history[b].append(vals[b])
            done[b] = made[b] >= max_bytes or bool(stop and history[b].endswith(stop))
        yield out
        if all(done):
            return
        for b in range(B):
            if out[b] is None:
                history[b].append(vals[b])
        fed += 1
        if ahead:  # the decoder has read this byte already
            continue
        cap = dec.capacity()
        if cap is not None and cap < 1:
            # cache full: rebuild it from every stream's most recent half context
            keep = torch.tensor([list(h[-(ctx // 2):]) for h in history], device=device)
            last = dec.prefill(keep)[:, -1]
        elif blocks and fed >= longest and (cap is None or cap >= k):
            block = dec.greedy(nxt)
            # contiguous rows: a strided column would be a new input layout to a compiled step
            steps = block.T.contiguous()
            ahead = list(zip(steps.unbind(0), steps.tolist()))
        else:
            last = dec.step(nxt)


def generate_many(model, prompts, **kwargs) -> list[bytes]:
    """The bytes generated after each prompt (prompts not included), in one batch; options as
    in ``iter_batch``."""
    outs = [bytearray() for _ in prompts]
    for step in iter_batch(model, prompts, **kwargs):
        for o, b in zip(outs, step):
            if b is not None:
                o.append(b)
    return [bytes(o) for o in outs]


def iter_generate(model, prompt, max_bytes: int = 256, temperature: float = 1.0, top_k: int = 0,
                  top_p: float = 1.0, seed: int | None = None, stop: bytes | None = None,
                  mode: str = "standard", entropy_low: float = 0.3, entropy_high: float = 1.2,
                  compile: bool = False, decode: str = "eager") -> Iterator[int]:
    """Yields generated byte values one at a time after ``prompt`` (bytes or str, non-empty).

    mode "standard" samples with temperature / top_k / top_p (temperature 0: greedy); mode
    "entropy" uses ``sample_entropy_aware`` with thresholds entropy_low / entropy_high (bits)
    and top_k (default 10 when 0) for the middle band.

    decode: "eager" (the model's ``step``), "compiled" (its fixed-shape decoder under
    torch.compile; CUDA graphs on a GPU), "static" (that decoder uncompiled) or "auto"
    (compiled on CUDA where the family has one, else eager): the same bytes on every path.
    compile=True is decode="compiled".

    A prompt longer than the model's context is left-cropped to its last ``context`` bytes
    (with a warning). Raises UserError if the prompt is empty.
    """
    for step in iter_batch(model, [prompt], max_bytes, temperature, top_k, top_p, seed, stop,
                           mode, entropy_low, entropy_high, "compiled" if compile else decode):
        if step[0] is not None:
            yield step[0]


def generate_bytes(model, prompt, **kwargs) -> bytes:
    """All of ``iter_generate`` as bytes (the prompt not included)."""
    return bytes(iter_generate(model, prompt, **kwargs))
