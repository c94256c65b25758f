"""A small replay buffer of earlier chunks, filled by reservoir sampling (Vitter's algorithm R):
after n chunks were offered, each of them is in the buffer with probability capacity / n.

It may be seeded with chunks of the original training domain (``prefill``): they count as
offered chunks, so they are diluted like any other as the stream goes on.
"""
import numpy as np
import torch

from bytelm.errors import UserError


class ReplayBuffer:
    """Reservoir of at most ``capacity`` byte chunks; deterministic given ``seed``."""

    def __init__(self, capacity: int = 1024, seed: int = 0):
        if capacity < 1:
            raise UserError(f"replay capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.items: list[bytes] = []
        self.n_seen = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    def add(self, chunk: bytes) -> None:
        self.n_seen += 1
        if len(self.items) < self.capacity:
            self.items.append(bytes(chunk))
            return
        j = int(self.rng.integers(0, self.n_seen))
        if j < self.capacity:
            self.items[j] = bytes(chunk)

    def prefill(self, data: np.ndarray, length: int, n: int | None = None) -> int:
        """Offers ``n`` (default: capacity) random windows of ``length`` bytes of ``data``."""
        n = self.capacity if n is None else n
        if len(data) < length:
            raise UserError(f"replay data has {len(data):,} bytes, fewer than one chunk ({length})")
        starts = self.rng.integers(0, len(data) - length + 1, size=n)
        for s in starts.tolist():
            self.add(bytes(np.asarray(data[s:s + length], dtype=np.uint8)))
        return n

    def sample(self, k: int) -> list[bytes]:
        """``k`` distinct chunks (fewer if the buffer holds fewer)."""
        k = min(k, len(self.items))
        if k <= 0:
            return []
        idx = self.rng.choice(len(self.items), size=k, replace=False)
        return [self.items[i] for i in idx.tolist()]

    def state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        """(JSON-able state, tensors for safetensors) of the buffer."""
        lengths = torch.tensor([len(c) for c in self.items], dtype=torch.int64)
        data = torch.frombuffer(bytearray(b"".join(self.items)), dtype=torch.uint8) \
            if self.items else torch.zeros(0, dtype=torch.uint8)
        meta = {"capacity": self.capacity, "n_seen": self.n_seen,
                "rng": self.rng.bit_generator.state}
        return meta, {"lengths": lengths, "data": data.clone()}

    def load(self, meta: dict, tensors: dict[str, torch.Tensor], where: str = "replay") -> None:
        try:
            self.n_seen = int(meta["n_seen"])
            self.rng.bit_generator.state = meta["rng"]
            lengths = tensors["lengths"].tolist()
            raw = tensors["data"].numpy().tobytes()
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"corrupted replay buffer in {where}: {e}") from None
        if sum(lengths) != len(raw):
            raise UserError(f"corrupted replay buffer in {where}: lengths do not match the data")
        items, pos = [], 0
        for n in lengths:
            items.append(raw[pos:pos + n])
            pos += n
        self.items = items[:self.capacity]
