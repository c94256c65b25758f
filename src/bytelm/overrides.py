"""The one override path: set fields of a config dataclass from strings (the command line, a
TOML file, run_config.json) or typed values (the Python API), each converted to the field's
type and the dataclass validated again. ``bytelm.options`` (run configs) and
``bytelm.registry`` (model presets) both go through ``apply_overrides``.
"""
import difflib
import types
import typing
from dataclasses import fields
from typing import Any, Literal

from bytelm.errors import UserError


def apply_overrides(obj, values: dict[str, Any], section: str | None = None):
    """A copy of dataclass ``obj`` with ``values`` (strings or typed) parsed and set, validated
    again by its ``__post_init__``.

    Errors name the option as the command line spells it, ``--{section}.{field}``, or, with
    section None (the Python API: ``create_model("transformer-tiny", n_layers=3)``), as the
    class's field, ``GPTConfig.n_layers``.
    """
    if not values:
        return obj
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in fields(obj) if f.init}
    kw = {f.name: getattr(obj, f.name) for f in fields(obj) if f.init}

    def label(name: str) -> str:
        return f"--{section}.{name}" if section else f"{type(obj).__name__}.{name}"
    for name, raw in values.items():
        if name not in names:
            close = difflib.get_close_matches(name, sorted(names), n=1)
            what = "option" if section else "field"
            raise UserError(f"unknown {what} {label(name)}"
                            + (f" (did you mean {label(close[0])}?)" if close else ""))
        kw[name] = parse_value(raw, hints[name], label(name))
    return type(obj)(**kw)


def parse_value(raw: Any, tp: Any, key: str) -> Any:
    """Converts ``raw`` (a string from the command line, a TOML or JSON value, or a typed Python
    value) to type ``tp``; ``key`` names it in errors (``--train.steps``)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        if raw not in args:
            raise UserError(f"{key} must be one of {', '.join(map(str, args))}; got {raw!r}")
        return raw
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if raw in (None, "none", "None", "null") and len(inner) < len(args):
            return None
        return parse_value(raw, inner[0], key)
    if origin is tuple:
        items = raw if isinstance(raw, (list, tuple)) else str(raw).strip("()[] ").split(",")
        if len(items) != len(args):
            raise UserError(f"{key} needs {len(args)} comma-separated values; got {raw!r}")
        return tuple(parse_value(v, t, key) for v, t in zip(items, args))
    try:
        if tp is bool:
            if isinstance(raw, bool):
                return raw
            s = str(raw).lower()
            if s in ("1", "true", "yes", "on"):
                return True
            if s in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if tp is int:
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            if isinstance(raw, str):
                raw = raw.replace("_", "")
                f = float(raw)
                if not f.is_integer():
                    raise ValueError
                return int(f)
            return int(raw)
        if tp is float:
            v = float(raw)
            if v != v or v in (float("inf"), float("-inf")):
                raise ValueError
            return v
        if tp is str:
            return str(raw)
    except (TypeError, ValueError):
        raise UserError(f"{key} expects {getattr(tp, '__name__', tp)}; got {raw!r}") from None
    return raw
