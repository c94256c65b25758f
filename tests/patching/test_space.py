import string

import torch

from bytelm.patching import SpacePatcher


def test_space_candidates():
    p = SpacePatcher()
    row = bytes(range(256))
    cand = p.candidates(torch.tensor([list(row)]))[0].tolist()
    assert cand == [chr(b) in string.whitespace + string.punctuation if b < 128 else False
                    for b in row]


def test_space_words():
    p = SpacePatcher(max_size=0)
    assert p.split(b"hello world, again") == [b"hello ", b"world,", b" ", b"again"]
    assert SpacePatcher(min_size=3, max_size=0).split(b"a b c d e") == [b"a b ", b"c d ", b"e"]
    # CJK has no ASCII spaces: max_size patches that keep characters whole
    parts = SpacePatcher(max_size=8).split("日本語のテキスト".encode())
    assert all(len(s) <= 8 for s in parts)
    assert "".join(s.decode() for s in parts) == "日本語のテキスト"
