"""PatchStream: ends decided one byte at a time from the last ``lookback`` bytes equal the
patcher's ends over the whole row, for every patcher and size rule."""
import pytest
import torch

from bytelm.patching import get_patcher
from bytelm.patching.stream import PatchStream

TEXT = ("Byte models read UTF-8: ğüşı çok güzel, 日本語のテキスト, emoji 🙂🙂 and     "
        "long runs of spaces; numbers 1234567890.").encode() * 2


def _rows() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    text = torch.tensor(list(TEXT))
    noise = torch.randint(0, 256, (len(TEXT),), generator=g)  # invalid UTF-8 too
    lows = torch.randint(0, 4, (len(TEXT),), generator=g) + 0x80  # runs of continuation bytes
    return torch.stack([text, noise, torch.where(noise > 200, lows, text)])


@pytest.mark.parametrize("name, kw", [
    ("babylon", {}), ("babylon", {"window": 5, "threshold": 0.0, "min_size": 1}),
    ("babylon", {"overflow": "extend"}), ("babylon", {"utf8": False, "max_size": 6}),
    ("space", {}), ("space", {"overflow": "cut", "max_size": 5}),
    ("fixed", {"patch_size": 3}), ("fixed", {"patch_size": 4, "utf8": True})])
def test_stream_equals_whole_row(name, kw, one_thread):
    patcher = get_patcher(name, **kw)
    x = _rows()
    ref = patcher(x)
    stream = PatchStream(patcher, torch.full((x.shape[0],), -1))
    got = torch.stack([stream.push(x[:, stream.window_start(t + 1):t + 1], t)
                       for t in range(x.shape[1])], 1)
    assert torch.equal(got, ref)
    assert ref.sum() > 10 and stream.window is not None and stream.window <= 33
