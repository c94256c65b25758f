"""One registry: model families (config class + model class) and named presets.

Every subpackage of ``bytelm.models`` registers itself on import; the registry imports them all
the first time it is asked, so adding a family needs no edit here.
"""
import difflib
import importlib
import pkgutil
from dataclasses import fields
from typing import Any, Callable

from bytelm.errors import UserError
from bytelm.overrides import apply_overrides

_FAMILIES: dict[str, tuple[type, type]] = {}
_PRESETS: dict[str, tuple[str, Callable[[], Any]]] = {}
_loaded = False


def register(family: str, config_cls: type, model_cls: type,
             presets: dict[str, Callable[[], Any]]) -> None:
    """Adds a family and its presets (name -> function returning a config)."""
    _FAMILIES[family] = (config_cls, model_cls)
    for name, fn in presets.items():
        _PRESETS[name] = (family, fn)


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    import bytelm.models as pkg
    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.ispkg:
            importlib.import_module(f"bytelm.models.{mod.name}")


def list_families() -> list[str]:
    _load_all()
    return sorted(_FAMILIES)


def list_presets() -> list[str]:
    """Names of every registered preset, sorted."""
    _load_all()
    return sorted(_PRESETS)


def _unknown(kind: str, name: str, known: list[str]) -> UserError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(known)}"
    return UserError(f"unknown {kind} {name!r}{hint}")


def preset_config(name: str, **overrides: Any):
    """The config of preset ``name`` with field overrides applied (validated)."""
    _load_all()
    if name not in _PRESETS:
        raise _unknown("preset", name, sorted(_PRESETS))
    family, fn = _PRESETS[name]
    cfg = fn()
    return apply_overrides(cfg, overrides)


def config_from_dict(d: dict[str, Any]):
    """Rebuilds a model config from its ``to_dict()`` (as stored in config.json)."""
    _load_all()
    family = d.get("family")
    if family not in _FAMILIES:
        raise _unknown("model family", str(family), sorted(_FAMILIES))
    cls = _FAMILIES[family][0]
    names = {f.name for f in fields(cls) if f.init}
    unknown = set(d) - names
    if unknown:
        raise UserError(f"config has fields unknown to family {family!r}: {sorted(unknown)}")
    # fields added later with a default that differs from what older checkpoints were built with
    legacy = getattr(cls, "legacy_defaults", {})
    d = {**{k: v for k, v in legacy.items() if k not in d}, **d}
    # JSON has no tuples: restore them so a loaded config equals the saved one
    import typing
    hints = typing.get_type_hints(cls)
    d = {k: tuple(v) if isinstance(v, list) and typing.get_origin(hints[k]) is tuple else v
         for k, v in d.items()}
    return cls(**d)


def model_class(config) -> type:
    _load_all()
    return _FAMILIES[config.family][1]


def create_model(name_or_config, **overrides: Any):
    """Builds a model from a preset name (with field overrides) or from a config object."""
    if isinstance(name_or_config, str):
        cfg = preset_config(name_or_config, **overrides)
    else:
        cfg = apply_overrides(name_or_config, overrides)
    return model_class(cfg)(cfg)
