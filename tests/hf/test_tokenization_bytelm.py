"""ByteLMTokenizer: ids are bytes, no special tokens, exact for any bytes."""
import pytest

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tok():
    from bytelm.hf.tokenization_bytelm import ByteLMTokenizer
    return ByteLMTokenizer()


def test_encode_is_utf8(tok):
    text = "Merhaba dünya, ağaç 🌳"
    assert tok(text)["input_ids"] == list(text.encode("utf-8"))
    assert tok.vocab_size == len(tok) == 256
    assert tok.all_special_ids == []


def test_decode_exact_any_bytes(tok):
    data = bytes(range(256)) + b"\xff\xfe\xc3"  # invalid UTF-8 included
    ids = list(data)
    assert tok.decode_bytes(ids) == data
    text = tok.decode(ids)
    assert tok(text)["input_ids"] == ids
    assert "\ufffd" in tok.decode(ids, errors="replace")
