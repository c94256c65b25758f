"""README.md cannot rot: every line of its ```bash blocks and its ```python block runs, on tiny
settings (tiny presets, a few steps, small data), in a fresh folder.

A command is run as written, then the tiny options of its subcommand are appended (argparse and
the dotted overrides let the last value win), and README paths are mapped to test data. A line
this file does not know how to run fails the test, so a new README command needs an entry here:
in TINY (how to make it small) or in SKIP (why it cannot run on a CPU test machine).
"""
import os
import re
import shlex
from pathlib import Path

import pytest

from bytelm.cli.__main__ import main
from tests.conftest import SHARED_DATA

README = Path(__file__).resolve().parents[1] / "README.md"

# appended to every `bytelm SUBCOMMAND ...` line
TINY = {
    "info": [],
    "prepare": [],
    "train": ["--preset", "transformer-tiny", "--train.steps=2", "--train.batch_size=2",
              "--train.eval_every=0", "--train.eval_bytes=2000", "--train.compile=false",
              "--train.progress=false", "--train.time_budget_min=0", "--train.device=cpu"],
    "eval": ["--max-bytes", "2000"],
    "generate": ["--max-bytes", "8"],
    "live": ["--batch-size", "2", "--context", "64", "--ckpt-every", "1"],
    "demo": ["--minutes", "0.03", "--preset", "transformer-tiny", "--eval-bytes", "2000",
             "--data.default_corpus_bytes=300000", "--train.progress=false"],
}
# README command -> the bytelm argv it stands for
ALIASES = {"make demo": ["demo"]}
# lines not run, with the reason
SKIP = {
    "make test": "it is this test suite",
    "torchrun": "DDP needs several processes; tests/train/test_distributed.py runs it on CPU",
    "--compile": "compiled decoding; tests/cli/test_chat.py and tests/models run it",
    "--decode compiled": "compiled decoding; tests/models and the gpu tests run it",
    "bytelm prepare docs.jsonl.zst": "the 'Your data' block; tests/cli/test_data.py runs it on its files",
    "bytelm prepare my_dataset/": "the 'Your data' block; tests/cli/test_data.py runs it on its files",
    "bytelm export-hf": "the 'Use it with' block; tests/cli/test_readme_ecosystem.py runs it",
    "bytelm lm-eval": "the 'Use it with' block; tests/cli/test_readme_ecosystem.py runs it",
    "bytelm serve": "a server; tests/serve runs it (API and browser)",
    "bytelm prepare notes/": "the 'Your data' block; tests/cli/test_data.py runs it on its files",
}
# README paths -> test data
SRC_TEXT = SHARED_DATA / "small" / "en.txt"
PATHS = {"../shared/data/en/text": str(SRC_TEXT)}
STDIN = {"--interactive": b"The \n\n"}


def blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", README.read_text(), re.M | re.S)


def commands() -> list[str]:
    """The command lines of the bash blocks (continuations joined, comments dropped)."""
    out = []
    for block in blocks("bash"):
        if "bytelm export-hf" in block:  # the "Use it with" block: tests/cli/test_readme_ecosystem.py
            continue
        for line in block.replace("\\\n", " ").splitlines():
            line = re.split(r"\s+#\s", " " + line, maxsplit=1)[0].strip()
            if line:
                out.append(line)
    return out


def _argv(line: str) -> list[str] | None:
    if any(k in line for k in SKIP):
        return None
    argv = ALIASES.get(line) or shlex.split(line)[1:]
    assert shlex.split(line)[0] in ("bytelm", "make"), f"README line not handled: {line}"
    argv = [PATHS.get(a, a) for a in argv]
    sub = next((a for a in argv if not a.startswith("-")), None)
    if sub is None:  # `bytelm --version`
        return argv
    assert sub in TINY, f"README runs `bytelm {sub}`: add its tiny options to TINY"
    # a resumed run needs steps beyond the first run's
    return argv + TINY[sub] + (["--train.steps=3"] if "--resume" in argv else [])


def test_readme_commands_run(tmp_path, monkeypatch, capsys):
    import io
    import sys
    lines = commands()
    assert any(l.startswith("bytelm train") for l in lines) and "make demo" in lines
    monkeypatch.chdir(tmp_path)
    (tmp_path / "new_text.txt").write_bytes(SRC_TEXT.read_bytes()[:1500])
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "The "}\n{"prompt": "import"}\n')
    ran = 0
    for line in lines:
        argv = _argv(line)
        if argv is None:
            continue
        if "runs/agi" in argv and not (tmp_path / "runs/agi/ckpt/last").is_dir():
            # the AGIFORMER run the README's `eval runs/agi` and `generate runs/agi` read
            assert main(["train", "--data", "data/enwiki", "--out", "runs/agi", *TINY["train"],
                         "--preset", "agiformer-tiny"]) == 0
        stdin = next((v for k, v in STDIN.items() if k in argv), None)
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        try:
            rc = main(argv)
        except SystemExit as e:  # --version
            rc = e.code
        out, err = capsys.readouterr()
        assert rc == 0, f"README command failed: {line}\n  ran: bytelm {' '.join(argv)}\n{err}"
        ran += 1
    assert ran >= 10


def test_readme_python_snippet(tmp_path, monkeypatch):
    (snippet,) = blocks("python")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(snippet, "README.md", "exec"), scope)  # noqa: S102 - our own README
    assert scope["out"].logits.shape == (2, 64, 256)
    assert isinstance(scope["text"], bytes) and len(scope["text"]) == 50
    assert (tmp_path / "my_ckpt" / "model.safetensors").is_file()
    # the API is callable again after the snippet (issue #25: it worked once per process)
    import bytelm
    assert bytelm.generate(scope["model"], "Hi", max_bytes=3, temperature=0)
    assert os.path.isdir(tmp_path / "my_ckpt")
