"""``bytelm patch``; run through ``bytelm.cli.__main__.main`` with the subcommand added if the
entry point does not register it yet."""
import argparse

import pytest

from bytelm.cli import __main__ as cli_main
from bytelm.cli import patch as patch_cmd

from .lm import tiny_lm

TEXT = "The quick brown fox jumps over the lazy dog. Merhaba dünya! 😀 日本語のテキスト.\n" * 4


@pytest.fixture
def run(monkeypatch, capsys, tmp_path):
    build = cli_main.build_parser

    def build_with_patch():
        p = build()
        sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
        if "patch" not in sub.choices:
            patch_cmd.add_parser(sub)
        return p
    monkeypatch.setattr(cli_main, "build_parser", build_with_patch)
    f = tmp_path / "t.txt"
    f.write_text(TEXT, encoding="utf-8")

    def go(*argv, file=f):
        rc = cli_main.main(["patch", str(file), *map(str, argv)])
        out, err = capsys.readouterr()
        return rc, out, err
    return go


def shown_and_stats(out):
    text, _, stats = out.rpartition("\npatcher ")
    return text, stats


@pytest.mark.parametrize("argv", [[], ["--patcher", "space", "--max-size", "8"],
                                  ["--patcher", "fixed", "--patch-size", "3", "--utf8"],
                                  ["--window", "8", "--threshold", "0.5", "--min-size", "3",
                                   "--max-size", "12", "--overflow", "extend"]])
def test_patch_cli(run, argv):
    rc, out, err = run(*argv)
    assert rc == 0, err
    text, stats = shown_and_stats(out)
    assert text.replace("|", "") == TEXT
    n = text.count("|") + 1
    assert f"{len(TEXT.encode())} bytes, {n} patches: mean length" in stats
    assert "median" in stats


def test_patch_cli_entropy_model(run, tmp_path):
    tiny_lm().save(tmp_path / "lm")
    rc, out, err = run("--patcher", "entropy-model", "--model", tmp_path / "lm", "--target-size", "4")
    assert rc == 0, err
    text, stats = shown_and_stats(out)
    mean = float(stats.split("mean length ")[1].split(",")[0])
    assert 3 <= mean <= 5
    rc, out, err = run("--patcher", "entropy-model", "--model", tmp_path / "lm", "--threshold", "1")
    assert rc == 0, err


def test_patch_cli_colour_and_max_bytes(run):
    rc, out, _ = run("--color", "always", "--max-bytes", "30")
    assert rc == 0 and "\x1b[36m" in out and "\x1b[33m" in out and "|" not in out
    assert "30 bytes" in out


@pytest.mark.parametrize("argv, needle", [
    (["--patcher", "space", "--window", "4"], "--window does not apply"),
    (["--patcher", "babilon"], "did you mean 'babylon'"),
    (["--patcher", "entropy-model"], "needs --model"),
    (["--patcher", "entropy-model", "--model", "/nonexistent"], "not found"),
    (["--target-size", "4"], "--target-size does not apply"),
    (["--min-size", "5", "--max-size", "3"], "max_size"),
    (["--max-bytes", "0"], "--max-bytes"),
    (["--window", "x"], "invalid int"),
])
def test_patch_cli_errors(run, argv, needle):
    rc, out, err = run(*argv)
    assert rc == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("bytelm: error: ") and needle in err, err


def test_patch_cli_bad_file(run, tmp_path):
    for file, needle in [(tmp_path / "missing.txt", "not found"), (tmp_path, "folder")]:
        rc, out, err = run(file=file)
        assert rc == 2 and needle in err and len(err.splitlines()) == 1
    (tmp_path / "empty").write_bytes(b"")
    rc, out, err = run(file=tmp_path / "empty")
    assert rc == 2 and "empty" in err
