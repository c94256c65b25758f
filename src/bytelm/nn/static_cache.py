"""The fixed-shape KV cache of compiled decoding: preallocated buffers written in place at a
position held in a tensor, so one captured graph (a CUDA graph under
``torch.compile(mode="reduce-overhead")``) replays at every position.

Unlike ``KVCache`` (which slices the filled prefix, a new shape at every byte), every call reads
the whole buffer and masks the slots not written yet: the cost per byte is O(capacity), which
is why decoders size the capacity to what a generation needs, not to the model's context.
"""
from dataclasses import dataclass

import torch


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
        B, H, L, D = k.shape
        C = self.capacity
        at = self.pos.reshape(-1, 1) + torch.arange(L, device=k.device)  # (b, L) absolute
        idx = at[:, None, :, None].expand(B, H, L, D)
        self.k.scatter_(2, idx, k.to(self.k.dtype))
        self.v.scatter_(2, idx, v.to(self.v.dtype))
        mask = torch.arange(C, device=k.device) <= at[..., None]  # (b, L, C)
        return self.k, self.v, mask[:, None]
