import importlib
import pkgutil

import pytest

import bytelm
import bytelm.models
from bytelm import registry
from bytelm.errors import UserError


def test_every_family_registers_presets():
    families = {registry.preset_config(p).family for p in bytelm.list_presets()}
    subpackages = {m.name for m in pkgutil.iter_modules(bytelm.models.__path__) if m.ispkg}
    for sub in subpackages:
        importlib.import_module(f"bytelm.models.{sub}")
    assert set(registry.list_families()) == families
    # a subpackage that registers nothing would be a family without presets
    assert len(registry.list_families()) >= len(subpackages)
    for name in ("transformer-tiny", "transformer-30m"):
        assert name in bytelm.list_presets()


def test_unknown_preset_suggests():
    with pytest.raises(UserError, match="transformer-tiny"):
        bytelm.create_model("transformer-tinyy")


def test_config_roundtrip():
    cfg = registry.preset_config("transformer-tiny", d_model=96, n_heads=6)
    again = registry.config_from_dict(cfg.to_dict())
    assert again == cfg
