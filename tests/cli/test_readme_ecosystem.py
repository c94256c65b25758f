"""The README's "Use it with transformers and lm-evaluation-harness" commands, run as written
(in-process, in a folder where runs/en is a trained tiny run)."""
import json
import re
import shlex
from pathlib import Path

import pytest

from bytelm.cli.__main__ import main
from tests.scripts import load_benchmark

README = Path(__file__).resolve().parents[2] / "README.md"
pytest.importorskip("transformers")
lm_eval = pytest.importorskip("lm_eval")


def readme_commands() -> list[list[str]]:
    """The bash block of the section, one argv per command (continuations and quotes joined)."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Use it with transformers"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    cmds, cur = [], ""
    for line in block.replace("\\\n", " ").splitlines():
        cur = f"{cur}\n{line}" if cur else line
        if cur.count('"') % 2 == 0:  # a quoted argument may span lines
            cmds.append(shlex.split(cur, comments=True))
            cur = ""
    return cmds


def test_readme_ecosystem(trained_run, tmp_path, monkeypatch, capsys, one_thread):
    from lm_eval.tasks.manager import TaskManager
    from bytelm.generate.batch import generate_bytes
    import bytelm
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "en").symlink_to(trained_run)
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(var, "1")
    # lm_eval indexes its thousands of built-in task files first (~10 s); the local ones suffice
    init = TaskManager.__init__
    monkeypatch.setattr(TaskManager, "__init__",
                        lambda self, *a, **kw: init(self, *a, **{**kw, "include_defaults": False}))
    cmds = readme_commands()
    assert [c[0] for c in cmds] == ["bytelm", "python", "python", "bytelm"]
    for argv in cmds:
        capsys.readouterr()
        if argv[0] == "bytelm":
            assert main(argv[1:]) == 0
        elif argv[1] == "-c":
            exec(compile(argv[2], "README", "exec"), {})
            want = "The " + generate_bytes(bytelm.load("runs/en"), "The ", max_bytes=40,
                                           temperature=0).decode("utf-8", errors="replace")
            assert capsys.readouterr().out == want + "\n"
        else:  # the suite script, cut to one article for the test
            suite = load_benchmark(Path(argv[1]).stem)
            assert suite.main([*argv[2:], "--max-docs", "1", "--cloze", "4"]) == 0
    out = capsys.readouterr().out
    assert "enwiki_ppl" in out and "enwiki_cloze_mc" in out
    assert (tmp_path / "hf" / "en" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "suite.json").read_text())["runs"]["runs/en"]["enwiki_ppl"]["docs"] == 1
