"""A run's options as a ``RunConfig``: preset -> TOML file -> ``--section.field`` options
(``build_run_config``), the curriculum table of a file (``parse_curriculum``), and back from a
saved run_config.json (``run_config_from_dict``).
"""
import dataclasses
import difflib
import os
import sys
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

from bytelm.config import (CurriculumConfig, DataConfig, EvalConfig, OptimConfig, RunConfig,
                           StageConfig, TrainConfig)
from bytelm.errors import UserError
from bytelm.overrides import apply_overrides, parse_value

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def build_run_config(preset: str | None, overrides: dict[str, Any] | None = None,
                     config_file: str | None = None, curriculum: dict | None = None) -> RunConfig:
    """Preset -> TOML file (if any) -> dotted overrides, validated at every level.

    Args:
        preset: model preset name; None: the file's ``preset``, else transformer-tiny. A name
            given here wins over the file's.
        overrides: {"train.steps": "2000", "model.d_model": 128, ...}; values may be strings.
            ``curriculum.blend_steps`` and ``curriculum.schedule`` change the curriculum.
        config_file: TOML with tables [model], [data], [optim], [train], [eval] (and optional
            top-level ``preset`` and [curriculum] with [[curriculum.stages]]); relative data
            paths of the stages are taken from the current directory.
        curriculum: a saved curriculum (``RunConfig.to_dict()["curriculum"]``); wins over the
            file's.
    """
    from bytelm.registry import preset_config
    flat: dict[str, Any] = {}
    cur_table, cur_where, cur_base = None, "", None
    if config_file:
        file_cfg = load_toml(config_file)
        file_preset = file_cfg.pop("preset", None)
        if file_preset is not None and not isinstance(file_preset, str):
            raise UserError(f"preset in {config_file} must be a string, got {file_preset!r}")
        preset = preset or file_preset
        if "curriculum" in file_cfg:
            cur_table, cur_where, cur_base = file_cfg.pop("curriculum"), config_file, Path.cwd()
        flat.update(_flatten(file_cfg))
    if curriculum is not None:
        cur_table, cur_where, cur_base = curriculum, "the saved run config", None
    preset = preset or "transformer-tiny"
    flat.update(overrides or {})
    cur_over = {k.partition(".")[2]: flat.pop(k) for k in list(flat) if k.startswith("curriculum.")}
    model_cfg = preset_config(preset)
    sections = {"model": model_cfg, "data": DataConfig(), "optim": OptimConfig(),
                "train": TrainConfig(), "eval": EvalConfig()}
    grouped: dict[str, dict[str, Any]] = {k: {} for k in sections}
    for key, value in flat.items():
        sec, _, name = key.partition(".")
        if sec not in sections or not name:
            raise _unknown_key(key, sections)
        grouped[sec][name] = value
    built = {sec: apply_overrides(obj, grouped[sec], sec) for sec, obj in sections.items()}
    cur = None
    if cur_table is not None:
        cur = parse_curriculum(cur_table, cur_where, cur_base)
    if cur_over:
        if cur is None:
            raise UserError(f"--curriculum.{next(iter(cur_over))} needs a curriculum file "
                            "(--curriculum FILE)")
        if "stages" in cur_over:
            raise UserError("curriculum stages come from the curriculum file, not the command line")
        cur = apply_overrides(cur, cur_over, "curriculum")
    if cur is not None:
        cur.stage_ends(built["train"].steps)  # validates the boundaries against this run
        if any(f.name == "plasticity" for f in fields(built["model"])):
            # the model is validated, saved and later used with the final stage's alpha
            built["model"] = dataclasses.replace(built["model"], plasticity=cur.stages[-1].plasticity)
    return RunConfig(preset=preset, **built, curriculum=cur)


_STAGE_KEYS = ("name", "data", "weights", "until", "plasticity")
_CURRICULUM_KEYS = ("stages", "blend_steps", "schedule")


def parse_curriculum(table: Any, where: str, base_dir: Path | None = None) -> CurriculumConfig:
    """A CurriculumConfig from a TOML [curriculum] table or its saved JSON form.

    Args:
        table: {"stages": [{"name", "data", "weights", "until", "plasticity"}, ...],
            "blend_steps": int, "schedule": "step" | "linear"}.
        where: the file it came from, for error messages.
        base_dir: if given, relative data paths are resolved against it and every path must
            exist (a saved config holds absolute paths and is not re-checked).
    Raises:
        UserError: one line naming the file and the key (unknown key, wrong type, missing path,
            ends not increasing, plasticity outside (0, 1], ...).
    """
    def bad(msg: str) -> UserError:
        return UserError(f"bad curriculum in {where}: {msg}")

    def unknown(d: dict, known: tuple, prefix: str) -> None:
        for k in d:
            if k not in known:
                close = difflib.get_close_matches(k, known, n=1)
                raise bad(f"unknown key {prefix}{k}" + (f" (did you mean {prefix}{close[0]}?)"
                                                        if close else ""))

    def number(v, key: str, integer: bool = False):
        ok = isinstance(v, int) if integer else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok:
            raise bad(f"{key} must be {'an integer' if integer else 'a number'}, got {v!r}")
        return v

    if not isinstance(table, dict):
        raise bad("[curriculum] must be a table")
    unknown(table, _CURRICULUM_KEYS, "curriculum.")
    stages_in = table.get("stages")
    if not isinstance(stages_in, list) or not stages_in or not all(isinstance(s, dict) for s in stages_in):
        raise bad("needs at least one [[curriculum.stages]] table")
    stages = []
    for i, st in enumerate(stages_in):
        pre = f"curriculum.stages[{i}]."
        unknown(st, _STAGE_KEYS, pre)
        if not isinstance(st.get("name"), str):
            raise bad(f"{pre}name must be a string")
        data = st.get("data")
        data = [data] if isinstance(data, str) else data
        if not isinstance(data, list) or not data or not all(isinstance(d, str) and d for d in data):
            raise bad(f"{pre}data must be a path or a list of paths")
        if base_dir is not None:
            data = [os.path.abspath(base_dir / Path(d).expanduser()) for d in data]
            for d in data:
                if not Path(d).exists():
                    raise bad(f"{pre}data: path not found: {d}")
        weights = st.get("weights", [])
        if not isinstance(weights, list):
            raise bad(f"{pre}weights must be a list of numbers")
        weights = [float(number(w, f"{pre}weights")) for w in weights]
        until = st.get("until")
        if until is not None:
            number(until, f"{pre}until")
        plast = st.get("plasticity")
        if plast is not None:
            plast = float(number(plast, f"{pre}plasticity"))
        try:
            stages.append(StageConfig(name=st["name"], data=data, weights=weights, until=until,
                                      plasticity=plast))
        except UserError as e:
            raise bad(str(e)) from None
    blend = number(table.get("blend_steps", 0), "curriculum.blend_steps", integer=True)
    schedule = table.get("schedule", "step")
    try:
        return CurriculumConfig(stages=stages, blend_steps=blend, schedule=schedule)
    except UserError as e:
        raise bad(str(e)) from None


def _unknown_key(key: str, sections: dict[str, Any]) -> UserError:
    known = [f"{s}.{f.name}" for s, obj in sections.items() for f in fields(obj) if f.init]
    close = difflib.get_close_matches(key, known, n=1)
    return UserError(f"unknown option --{key}" + (f" (did you mean --{close[0]}?)" if close else ""))


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def load_toml(path: str) -> dict:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"cannot parse config file {path}: {e}") from None


def run_config_from_dict(d: dict) -> RunConfig:
    """Inverse of ``RunConfig.to_dict`` (used to resume a run from run_config.json)."""
    from bytelm.registry import config_from_dict
    secs = {"data": DataConfig, "optim": OptimConfig, "train": TrainConfig, "eval": EvalConfig}
    kw = {}
    for name, cls in secs.items():
        vals = dict(d.get(name, {}))
        hints = typing.get_type_hints(cls)
        kw[name] = cls(**{k: parse_value(v, hints[k], f"--{name}.{k}") for k, v in vals.items()})
    cur = d.get("curriculum")
    return RunConfig(preset=d["preset"], model=config_from_dict(d["model"]), **kw,
                     curriculum=parse_curriculum(cur, "the saved run config") if cur else None)
