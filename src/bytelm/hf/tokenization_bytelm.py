"""``ByteLMTokenizer``: id = byte value (0..255), no special tokens, exact for any bytes."""
from transformers import PreTrainedTokenizer


class ByteLMTokenizer(PreTrainedTokenizer):
    """UTF-8 bytes as ids; the model's vocabulary is exactly the 256 byte values.

    There are no BOS/EOS/PAD ids: every id is a byte a text may contain, so a special token
    would either be a real byte or an id the model has no logits for. Text is encoded and
    decoded with ``errors`` (default ``surrogateescape``), so ``encode(decode(ids)) == ids``
    for any ids, valid UTF-8 or not; ``decode_bytes`` returns the bytes themselves. Pass
    ``errors="replace"`` (to the constructor or ``decode``) for printable text.
    """

    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, errors: str = "surrogateescape", **kwargs):
        self.errors = errors
        kwargs.setdefault("clean_up_tokenization_spaces", False)
        super().__init__(errors=errors, **kwargs)

    @property
    def vocab_size(self) -> int:
        return 256

    def get_vocab(self) -> dict[str, int]:
        return {chr(i): i for i in range(256)}

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        # one token per byte, spelled as the code point of the same number (as ByT5 does)
        return [chr(b) for b in text.encode("utf-8", self.errors)]

    def _convert_token_to_id(self, token: str) -> int:
        if len(token) != 1 or ord(token) > 255:
            raise ValueError(f"not a byte token: {token!r}")
        return ord(token)

    def _convert_id_to_token(self, index: int) -> str:
        if not 0 <= index < 256:
            raise ValueError(f"byte ids are 0..255, got {index}")
        return chr(index)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return bytes(ord(t) for t in tokens).decode("utf-8", self.errors)

    def _decode(self, token_ids, skip_special_tokens: bool = False, errors: str | None = None,
                **kwargs) -> str:
        ids = [token_ids] if isinstance(token_ids, int) else token_ids
        return self.decode_bytes(ids).decode("utf-8", errors or self.errors)

    def decode_bytes(self, token_ids) -> bytes:
        """The bytes themselves: ids (list or 1-D tensor of 0..255) -> bytes."""
        return bytes(int(i) for i in token_ids)

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple:
        # the vocabulary is fixed (the 256 byte values): nothing to write
        return ()
