"""Every dotted config key with its type, default and one-line doc, read from the dataclasses
themselves (the string under each field), so ``bytelm train --help-config`` cannot drift from
the code."""
import ast
import dataclasses
import functools
import inspect
import textwrap
import typing


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """{field name: its attribute docstring, whitespace collapsed} of dataclass ``cls`` and its
    bases (a subclass's doc wins)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):  # no source (frozen app): keys without docs
            continue
        body = tree.body[0].body
        for node, nxt in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _type_name(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return "|".join(map(str, args))
    if args:
        inner = ", ".join(_type_name(a) for a in args)
        name = getattr(origin, "__name__", str(origin)).replace("UnionType", "Union")
        return f"{'tuple' if origin is tuple else name}[{inner}]" if name != "Union" else \
            " | ".join(_type_name(a) for a in args)
    return "None" if tp is type(None) else getattr(tp, "__name__", str(tp))


def describe_keys(preset: str = "transformer-tiny") -> list[tuple[str, str, str, str]]:
    """(key, type, default, doc) of every dotted key ``bytelm train`` accepts, with the model
    section of ``preset``'s family and that preset's values as the model defaults."""
    from bytelm.config import DataConfig, EvalConfig, OptimConfig, TrainConfig
    from bytelm.registry import preset_config
    sections = {"model": preset_config(preset), "data": DataConfig(), "optim": OptimConfig(),
                "train": TrainConfig(), "eval": EvalConfig()}
    rows = []
    for sec, obj in sections.items():
        hints = typing.get_type_hints(type(obj))
        docs = field_docs(type(obj))
        for f in dataclasses.fields(obj):
            if not f.init or (sec == "model" and f.name == "family"):
                continue
            value = getattr(obj, f.name)
            default = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            rows.append((f"{sec}.{f.name}", _type_name(hints[f.name]), default or '""',
                         docs.get(f.name, "")))
    return rows


def format_keys(preset: str = "transformer-tiny") -> str:
    """``describe_keys`` as aligned text, one key per line, the doc wrapped under it."""
    rows = describe_keys(preset)
    width = max(len(k) for k, *_ in rows)
    out = [f"Dotted keys of `bytelm train` (--KEY=VALUE, or [section] tables in --config); "
           f"model keys and defaults of preset {preset}:", ""]
    for key, tp, default, doc in rows:
        out.append(f"  --{key:<{width}}  {tp} = {default}")
        if doc:
            out.extend(textwrap.wrap(doc, 96, initial_indent=" " * 6, subsequent_indent=" " * 6))
    return "\n".join(out)
