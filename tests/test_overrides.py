"""The one override path (``bytelm.overrides.apply_overrides``): the command line, TOML files,
saved run configs and the Python API's ``create_model(name, **fields)`` set fields the same way
and name a bad one as their user spells it."""
import pytest

import bytelm
from bytelm import registry
from bytelm.config import TrainConfig
from bytelm.errors import UserError
from bytelm.options import build_run_config, run_config_from_dict
from bytelm.overrides import apply_overrides


def test_command_line_and_python_api_build_the_same_model_config():
    cli = build_run_config("transformer-tiny", {"model.n_layers": "3", "model.init_std": "0.05"})
    api = registry.preset_config("transformer-tiny", n_layers=3, init_std=0.05)
    assert cli.model == api
    assert bytelm.create_model("transformer-tiny", n_layers=3, init_std=0.05).config == api


def test_strings_and_typed_values_agree():
    a = apply_overrides(TrainConfig(), {"steps": "1_000", "eval_every": 50.0, "progress": "off"})
    b = apply_overrides(TrainConfig(), {"steps": 1000, "eval_every": 50, "progress": False})
    assert a == b and a.steps == 1000 and isinstance(a.eval_every, int) and a.progress is False


def test_errors_name_the_option_as_its_user_writes_it():
    with pytest.raises(UserError, match=r"unknown option --train\.step \(did you mean --train\.steps\?\)"):
        apply_overrides(TrainConfig(), {"step": 5}, "train")
    with pytest.raises(UserError, match=r"unknown field GPTConfig\.n_layer \(did you mean "
                                        r"GPTConfig\.n_layers\?\)"):
        bytelm.create_model("transformer-tiny", n_layer=3)
    with pytest.raises(UserError, match=r"^GPTConfig\.n_layers expects int; got 'three'$"):
        registry.preset_config("transformer-tiny", n_layers="three")
    with pytest.raises(UserError, match=r"^--model\.n_layers expects int; got 'three'$"):
        build_run_config("transformer-tiny", {"model.n_layers": "three"})


def test_saved_run_config_round_trips_through_the_same_path():
    cfg = build_run_config("transformer-tiny", {"train.steps": "7", "optim.lr": "3e-4"})
    assert run_config_from_dict(cfg.to_dict()) == cfg
    bad = cfg.to_dict()
    bad["train"]["steps"] = "seven"
    with pytest.raises(UserError, match=r"--train\.steps expects int"):
        run_config_from_dict(bad)
