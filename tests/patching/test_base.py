import pytest
import torch

from bytelm.errors import UserError
from bytelm.patching import BabylonConfig, BabylonPatcher, FixedPatcher, get_patcher, list_patchers

from .lm import tiny_lm


def test_get_patcher():
    assert list_patchers() == ["babylon", "entropy-model", "fixed", "space"]
    for name in list_patchers():
        kw = {"model": tiny_lm()} if name == "entropy-model" else {}
        p = get_patcher(name, **kw)
        assert p.name == name and isinstance(p.config.to_dict(), dict)
    assert get_patcher("babylon", window=8).config.window == 8
    with pytest.raises(UserError, match="did you mean 'babylon'"):
        get_patcher("babilon")
    with pytest.raises(UserError, match="did you mean 'window'"):
        get_patcher("babylon", windw=8)


@pytest.mark.parametrize("kw, match", [
    ({"min_size": 0}, "min_size"), ({"max_size": -1}, "max_size"),
    ({"min_size": 5, "max_size": 4}, "max_size"), ({"overflow": "wrap"}, "overflow"),
    ({"window": 0}, "window"), ({"threshold": float("nan")}, "threshold"),
])
def test_config_errors(kw, match):
    with pytest.raises(UserError, match=match):
        BabylonPatcher(**kw)


def test_config_object_and_overrides():
    cfg = BabylonConfig(window=8)
    assert BabylonPatcher(cfg).config is cfg
    assert BabylonPatcher(cfg, threshold=0.5).config.window == 8
    with pytest.raises(TypeError):
        FixedPatcher(cfg)


def test_inputs():
    p = BabylonPatcher()
    row = list("some text, 😀 and more text".encode())
    ends = p(torch.tensor([row]))
    assert torch.equal(p(torch.tensor(row, dtype=torch.uint8)), ends[0])
    assert torch.equal(p(torch.tensor([row], dtype=torch.int32)), ends)
    assert p(torch.zeros(2, 0, dtype=torch.uint8)).shape == (2, 0)
    with pytest.raises(ValueError, match="integer"):
        p(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="0..255"):
        p(torch.tensor([[300]]))
    with pytest.raises(ValueError, match="shape"):
        p(torch.zeros(1, 1, 3, dtype=torch.long))


def test_split():
    data = "Tokenizer-free models read bytes: ü, 日本, 😀.".encode()
    for name in ("babylon", "space", "fixed"):
        parts = get_patcher(name).split(data)
        assert b"".join(parts) == data and all(parts)
    assert get_patcher("space").split(b"") == []
    assert FixedPatcher(patch_size=2).split(b"abcde") == [b"ab", b"cd", b"e"]
