"""The fixed-shape KV cache of compiled decoding: preallocated buffers written in place at a
position held in a tensor, so one captured graph (a CUDA graph under
``torch.compile(mode="reduce-overhead")``) replays at every position.

Unlike ``KVCache`` (which slices the filled prefix, a new shape at every byte), every call reads
the whole buffer and masks the slots not written yet: the cost per byte is O(capacity), which
is why decoders size the capacity to what a generation needs, not to the model's context.
"""
from dataclasses import dataclass

import torch


def write_slots(buf: torch.Tensor, at: torch.Tensor, x: torch.Tensor) -> None:
    """Writes x (B, H, L, D) into buf (B, H, C, D) at slots ``at`` (b, L) of every row (b = 1
    or B; row r's i-th new entry goes to slot at[r, i]), in place.

    By ``index_put_``, which Inductor compiles to a write of the L new entries. The obvious
    ``buf.scatter_(2, idx, x)`` compiles, for a buffer that is a graph input (every decoder's
    cache), to an out-of-place scatter and a copy back: two passes over the whole buffer per
    layer and step (measured on an H100: 2.1 of 3.9 busy ms of a 64-stream transformer-30m step;
    tests/nn/test_static_cache.py checks the generated code). Duplicate slots in a row keep one
    of their values, as with scatter_.
    """
    B, H = x.shape[:2]
    rows = torch.arange(B, device=x.device)[:, None, None]
    heads = torch.arange(H, device=x.device)[None, :, None]
    buf.index_put_((rows, heads, at[:, None, :]), x.to(buf.dtype))


@dataclass
class StaticKVCache:
    """Keys/values of one attention layer in fixed-shape buffers.

    k, v: (B, H, C, d_head) buffers, C the capacity.
    pos: long tensor, the position of the first new key: 0-dim (every row at the same
        position, e.g. the bytes of a batch in lockstep) or (B,) (each row its own, e.g. patch
        stacks whose rows close patches at different bytes). One tensor is shared by every
        layer of a model and advanced by its owner after all layers ran; ``append`` never
        moves it.
    """

    k: torch.Tensor
    v: torch.Tensor
    pos: torch.Tensor
    # how attention layers read this cache: "sdpa" (F.scaled_dot_product_attention with the
    # bool mask) or "matmul" (nn.attention.masked_decode_attention); the same numbers, a class
    # default so a benchmark can switch every decoder at once (benchmarks/profile_decode.py)
    attention = "sdpa"

    @property
    def length(self) -> torch.Tensor:
        """Filled positions (the tensor ``pos``; rotary tables accept it as the start)."""
        return self.pos

    @property
    def capacity(self) -> int:
        return self.k.shape[2]

    def append(self, k: torch.Tensor, v: torch.Tensor):
        """Writes k, v (B, H, L, d_head) at positions pos..pos+L-1 of every row.

        Returns (keys, values, mask): the whole buffers (B, H, C, d_head) and the bool mask
        (b, 1, L, C) of the keys each new query may read (slot j <= pos + i), b = 1 or B.
        Positions past the capacity are the caller's error (an index error, or a device assert
        on CUDA).
        """
        L = k.shape[2]
        C = self.capacity
        at = self.pos.reshape(-1, 1) + torch.arange(L, device=k.device)  # (b, L) absolute
        write_slots(self.k, at, k)
        write_slots(self.v, at, v)
        mask = torch.arange(C, device=k.device) <= at[..., None]  # (b, L, C)
        return self.k, self.v, mask[:, None]
