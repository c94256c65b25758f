"""``ByteLMConfig``: a transformers config holding a bytelm model config dict unchanged."""
from typing import Any

from transformers import PretrainedConfig


class ByteLMConfig(PretrainedConfig):
    """transformers' view of any bytelm family: the family's own config under ``bytelm``.

    A new family needs no code here: the wrapped model is rebuilt by bytelm's registry from
    ``bytelm`` (the dict ``ModelConfig.to_dict()`` returns, with ``family``).
    """

    model_type = "bytelm"

    bytelm: dict[str, Any] | None = None
    """the bytelm ModelConfig as a dict (``family`` plus its hyperparameters)."""
    vocab_size: int = 256
    """one id per byte value; no special tokens inside the vocabulary."""
    max_position_embeddings: int = 1024
    """the bytelm model's context (bytes)."""
    use_cache: bool = True
    """generate through bytelm's cached ``step`` (O(new bytes) per byte)."""
    tie_word_embeddings: bool = False
    """bytelm's byte embedding and output head are separate weights."""
