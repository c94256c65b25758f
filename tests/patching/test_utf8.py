import torch
from hypothesis import given

from bytelm.patching import char_end_mask

from .strategies import FAST, ROWS, UTF8_TEXT, inside_valid_char, ref_char_end


def mask_of(row: bytes) -> list[bool]:
    return char_end_mask(torch.tensor([list(row)], dtype=torch.uint8))[0].tolist()


@FAST
@given(ROWS)
def test_char_end_mask_matches_reference(row):
    assert mask_of(row) == ref_char_end(row)


@FAST
@given(UTF8_TEXT)
def test_char_end_mask_valid_text_is_char_ends(row):
    # for valid UTF-8 the allowed ends are exactly the last bytes of the characters
    ends, pos = [False] * len(row), -1
    for ch in row.decode("utf-8"):
        pos += len(ch.encode("utf-8"))
        ends[pos] = True
    assert mask_of(row) == ends


@FAST
@given(ROWS)
def test_char_end_mask_never_inside_valid_char(row):
    assert not any(m and inside for m, inside in zip(mask_of(row), inside_valid_char(row)))


def test_char_end_mask_cases():
    cases = {
        "é".encode(): [False, True],
        "😀".encode(): [False, False, False, True],
        b"\x80\x80a": [True, True, True],          # stray continuation bytes stand alone
        b"\xc3a": [False, True],                   # truncated: no end at the lead byte
        b"\xc3\xa9\x80": [False, True, True],      # a continuation beyond the announced length
        b"\xff\xf8": [True, True],                 # never-valid bytes are one-byte characters
        b"\xf0\x9f\x98": [False, False, False],    # cut by the end of the row
    }
    for row, want in cases.items():
        assert mask_of(row) == want, row
    assert char_end_mask(torch.zeros(2, 0, dtype=torch.long)).shape == (2, 0)


def test_char_end_mask_causal():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (4, 64), generator=g)
    full = char_end_mask(x)
    for t in range(64):
        assert torch.equal(char_end_mask(x[:, :t + 1]), full[:, :t + 1])
