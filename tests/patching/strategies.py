"""Hypothesis strategies (random, adversarial and UTF-8 bytes) and slow reference functions."""
import math
from collections import Counter

import torch
from hypothesis import settings, strategies as st

FAST = settings(max_examples=50, deadline=None)

# characters of every UTF-8 length: 1 (ASCII), 2 (e.g. ü), 3 (e.g. 日), 4 (emoji)
CHARS = st.one_of(
    st.characters(max_codepoint=0x7F),
    st.characters(min_codepoint=0x80, max_codepoint=0x7FF),
    st.characters(min_codepoint=0x800, max_codepoint=0xFFFF, exclude_categories=("Cs",)),
    st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF),
)
UTF8_TEXT = st.text(CHARS, min_size=1, max_size=60).map(lambda s: s.encode("utf-8"))
RANDOM = st.binary(min_size=1, max_size=120)
# one byte repeated: spaces, a letter, a stray continuation, lead bytes, never-valid bytes
SAME_BYTE = st.builds(lambda b, n: bytes([b]) * n,
                      st.sampled_from([0x20, 0x61, 0x00, 0x80, 0xBF, 0xC3, 0xE2, 0xF0, 0xFF]),
                      st.integers(1, 80))


@st.composite
def _broken_text(draw):
    # valid text with random bytes spliced in or cut out: truncated and stray sequences
    b = bytearray(draw(UTF8_TEXT))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(b)))
        if draw(st.booleans()) and len(b) > 1:
            del b[min(i, len(b) - 1)]
        else:
            b[i:i] = draw(st.binary(min_size=1, max_size=3))
    return bytes(b)


ROWS = st.one_of(RANDOM, UTF8_TEXT, SAME_BYTE, _broken_text())


@st.composite
def byte_batches(draw, rows=ROWS, max_rows=3):
    """(B, T) uint8 with 1..max_rows rows; shorter rows are repeated up to the longest."""
    drawn = draw(st.lists(rows, min_size=1, max_size=max_rows))
    T = max(len(r) for r in drawn)
    return torch.tensor([list((r * (T // len(r) + 1))[:T]) for r in drawn], dtype=torch.uint8)


def announced(b: int) -> int:
    return 2 if 0xC0 <= b < 0xE0 else 3 if 0xE0 <= b < 0xF0 else 4 if 0xF0 <= b < 0xF8 else 0


def ref_char_end(row: bytes) -> list[bool]:
    """The causal UTF-8 rule byte by byte: may a patch end at t, from bytes <= t?"""
    out = []
    for t, b in enumerate(row):
        if b < 0x80 or b >= 0xF8:
            out.append(True)
        elif b >= 0xC0:
            out.append(False)
        else:
            j = t
            while j >= 0 and 0x80 <= row[j] < 0xC0:
                j -= 1
            n = announced(row[j]) if j >= 0 else 0
            out.append(n == 0 or t - j >= n - 1)
    return out


def inside_valid_char(row: bytes) -> list[bool]:
    """True at t iff bytes t and t+1 belong to one valid (structurally) multi-byte sequence,
    found by a forward parse that sees the whole row."""
    res, i = [False] * len(row), 0
    while i < len(row):
        n = announced(row[i])
        if n and i + n <= len(row) and all(0x80 <= row[j] < 0xC0 for j in range(i + 1, i + n)):
            res[i:i + n - 1] = [True] * (n - 1)
            i += n
        else:
            i += 1
    return res


def ref_window_entropy(row: bytes, w: int) -> list[float]:
    out = []
    for t in range(len(row)):
        win = row[max(0, t - w + 1):t + 1]
        out.append(-sum(c / len(win) * math.log2(c / len(win)) for c in Counter(win).values()))
    return out


def patches_of(ends_row: list[bool]) -> tuple[list[int], int]:
    """(lengths of the complete patches, length of the open tail)."""
    lengths, last = [], -1
    for t, e in enumerate(ends_row):
        if e:
            lengths.append(t - last)
            last = t
    return lengths, len(ends_row) - 1 - last
