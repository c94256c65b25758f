"""``bytelm export-hf``: a trained run -> a transformers directory; bad input is one line."""
import sys

import pytest
import torch

from .helpers import assert_user_error

transformers = pytest.importorskip("transformers")


def test_export_hf(run_cli, trained_run, tmp_path):
    import bytelm
    out = tmp_path / "hf"
    rc, stdout, err = run_cli("export-hf", trained_run, out)
    assert rc == 0, err
    assert "trust_remote_code=True" in stdout
    hf = transformers.AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True)
    ref = bytelm.load(trained_run)
    x = torch.randint(0, 256, (1, 64))
    with torch.no_grad():
        assert (hf(x).logits - ref(x).logits).abs().max().item() < 1e-5
    # a second export into the same place needs --overwrite
    assert_user_error(*run_cli("export-hf", trained_run, out), "--overwrite")
    rc, _, err = run_cli("export-hf", trained_run, out, "--overwrite")
    assert rc == 0, err


def test_export_hf_bad_input(run_cli, trained_run, tmp_path, monkeypatch):
    assert_user_error(*run_cli("export-hf", tmp_path / "nope", tmp_path / "o"), "not found")
    f = tmp_path / "file"
    f.write_text("x")
    assert_user_error(*run_cli("export-hf", trained_run, f), "not a directory")
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if not installed
    assert_user_error(*run_cli("export-hf", trained_run, tmp_path / "o"), "pip install 'bytelm[hf]'")
