"""Discoverability: every subcommand's --help, `bytelm --version`, `train --help-config` generated
from the config dataclasses, and `info` that lists presets without building their weights."""
import dataclasses
import re

import pytest
import torch

from bytelm.cli.__main__ import build_parser, main


def _subcommands() -> list[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sorted(sub.choices)


def test_every_help_renders(capsys):
    """No subcommand's --help fails or prints an escaped %% (argparse formats help with %)."""
    names = _subcommands()
    assert {"train", "generate", "live", "needle", "info"} <= set(names)
    for name in names:
        if name == "lm-eval":  # passes every argument to lm_eval's own CLI (tests/eval/test_harness.py)
            continue
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        out = capsys.readouterr().out
        assert e.value.code == 0 and "usage: bytelm" in out, name
        assert "%%" not in out, f"bytelm {name} --help prints %%"


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    import bytelm
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith(f"bytelm {bytelm.__version__} (torch ")


@pytest.mark.parametrize("preset", ["transformer-tiny", "agiformer-tiny", "bsfin-tiny"])
def test_help_config_lists_every_key_with_its_doc(run_cli, preset):
    from bytelm.config import RunConfig
    from bytelm.options import build_run_config
    rc, out, err = run_cli("train", "--help-config", "--preset", preset)
    assert rc == 0, err
    listed = dict(re.findall(r"^  --(\S+)\s+(.+)$", out, re.M))
    cfg = build_run_config(preset, {})
    want = {f"{sec}.{f.name}" for sec in ("model", "data", "optim", "train", "eval")
            for f in dataclasses.fields(getattr(cfg, sec)) if f.init and f.name != "family"}
    assert set(listed) == want
    assert listed["train.steps"] == "int = 1000" and listed["optim.name"].startswith("adamw|muon|sgd")
    # every key has its one-line doc on the lines under it
    for key in want:
        assert re.search(rf"^  --{re.escape(key)} .*\n      \S", out, re.M), f"{key} has no doc"
    assert RunConfig  # the sections above are RunConfig's


def test_info_builds_no_weights(run_cli, monkeypatch):
    """The listing allocates no parameter memory (meta device) and its counts are exact."""
    from bytelm.registry import create_model
    real = torch.nn.Parameter.__new__
    devices = []

    def spy(cls, data=None, requires_grad=True):
        devices.append(data.device.type if data is not None else "none")
        return real(cls, data, requires_grad)
    monkeypatch.setattr(torch.nn.Parameter, "__new__", spy)
    rc, out, err = run_cli("info")
    monkeypatch.undo()
    assert rc == 0, err
    assert devices and set(devices) == {"meta"}
    counts = dict(re.findall(r"^(\S+)\s+([\d,]+)\s+\S+$", out, re.M))
    assert "transformer-129m" in counts
    for name in ("transformer-tiny", "agiformer-tiny", "bsfin-tiny"):
        assert int(counts[name].replace(",", "")) == create_model(name).n_params()
