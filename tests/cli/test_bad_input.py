"""Every user mistake ends with exit code 2, one ``bytelm: error: ...`` line on stderr, no
traceback, nothing on stdout, and nothing written half-way (no new output / run folder, earlier
results byte-for-byte intact)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import CONTEXT, TRAIN_ARGS, assert_user_error, main_ok, snapshot

REPO = Path(__file__).resolve().parents[2]


# --- prepare --------------------------------------------------------------------------------

def _prepare_fails(run_cli, tmp_path, sources, out, *extra, needles=()):
    before = snapshot(tmp_path)
    rc, o, e = run_cli("prepare", *sources, "--out", out, *extra)
    line = assert_user_error(rc, o, e, *needles)
    assert snapshot(tmp_path) == before, "prepare left files behind"
    return line


def test_prepare_missing_source(run_cli, tmp_path):
    _prepare_fails(run_cli, tmp_path, [tmp_path / "nope.txt"], tmp_path / "out",
                   needles=("source not found", "nope.txt"))


def test_prepare_empty_source(run_cli, tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    _prepare_fails(run_cli, tmp_path, [tmp_path / "empty.txt"], tmp_path / "out",
                   needles=("empty",))


def test_prepare_corpus_too_short_for_a_split(run_cli, tmp_path):
    (tmp_path / "short.txt").write_bytes(b"hi\n")
    _prepare_fails(run_cli, tmp_path, [tmp_path / "short.txt"], tmp_path / "out",
                   needles=("split is empty",))


def test_prepare_refuses_foreign_out_folder(run_cli, tmp_path, src_text):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("precious")
    _prepare_fails(run_cli, tmp_path, [src_text], foreign, needles=("refusing to overwrite",))
    assert (foreign / "notes.txt").read_text() == "precious"


def test_prepare_bad_split_rule(run_cli, tmp_path, src_text):
    _prepare_fails(run_cli, tmp_path, [src_text], tmp_path / "out", "--split-rule", "bogus",
                   needles=("--split-rule", "bogus"))


def test_prepare_failure_keeps_previous_corpus(run_cli, tmp_path, corpus):
    """A failed re-prepare over an existing corpus leaves the old one intact."""
    old = Path(shutil.copytree(corpus, tmp_path / "corpus"))
    (tmp_path / "empty.txt").write_bytes(b"")
    _prepare_fails(run_cli, tmp_path, [tmp_path / "empty.txt"], old, needles=("empty",))


# --- train ----------------------------------------------------------------------------------

@pytest.fixture
def bad_files(tmp_path):
    """Inputs for the train cases, made inside tmp_path."""
    (tmp_path / "not_a_corpus").mkdir()
    (tmp_path / "not_a_corpus" / "readme.txt").write_text("hello")
    (tmp_path / "broken.toml").write_text("[train\nsteps = ")
    (tmp_path / "layers.toml").write_text("[model]\nn_layers = 2.7\n")
    return tmp_path


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory, cli_cache):
    """A prepared corpus whose train split (90 bytes) is shorter than context + 1 = 129."""
    d = tmp_path_factory.mktemp("tiny-corpus")
    (d / "tiny.txt").write_bytes(b"abcdefghi\n" * 10)
    main_ok(["prepare", d / "tiny.txt", "--out", d / "corpus"], cli_cache)
    assert (d / "corpus" / "train.bin").stat().st_size < CONTEXT + 1
    return d / "corpus"


TRAIN_CASES = {
    # id: (argument list with {corpus}/{tmp}/{tiny} placeholders, substrings of the message)
    "unknown-preset": (["--preset", "transformer-tinny"], ["'transformer-tinny'", "did you mean 'transformer-tiny'"]),
    "data-missing": (["--data", "{tmp}/no_such_corpus"], ["no_such_corpus", "not a prepared corpus"]),
    "data-not-a-corpus": (["--data", "{tmp}/not_a_corpus"], ["not_a_corpus", "not a prepared corpus"]),
    "corpus-shorter-than-window": (["--data", "{tiny}"], ["90 bytes", "129"]),
    "seq-len-longer-than-train-split": (["--model.context=100000", "--data.seq_len=60000"], ["60,001"]),
    "unknown-option-typo": (["--train.stepz=3"], ["--train.stepz", "did you mean --train.steps?"]),
    "steps-not-a-number": (["--train.steps=abc"], ["train.steps", "'abc'"]),
    "steps-zero": (["--train.steps=0"], ["train.steps must be >= 1"]),
    "negative-lr": (["--optim.lr=-1"], ["optim.lr must be in (0, 1000]"]),
    "huge-lr": (["--optim.lr=1e300"], ["optim.lr must be in (0, 1000]"]),
    "huge-batch-size": (["--train.batch_size=1e8"], ["train.batch_size must be <= 65,536"]),
    "huge-context": (["--model.context=1e12"], ["model.context must be in [2, 16,777,216]"]),
    "fractional-layers-in-config": (["--config", "{tmp}/layers.toml"], ["--model.n_layers expects int", "2.7"]),
    "wandb-not-installed": (["--train.wandb=true"], ["--train.wandb=true needs the wandb package"]),
    "bad-schedule": (["--optim.schedule=foo"], ["optim.schedule", "cosine", "'foo'"]),
    "seq-len-over-context": (["--data.seq_len=999999"], ["999999", "context 128"]),
    "heads-do-not-divide": (["--model.n_heads=3"], ["n_heads=3"]),
    "non-dotted-flag": (["--foo"], ["'--foo'"]),
    "dotted-flag-without-value": (["--train.steps"], ["--train.steps needs a value"]),
    "config-missing": (["--config", "{tmp}/nope.toml"], ["config file not found", "nope.toml"]),
    "config-malformed": (["--config", "{tmp}/broken.toml"], ["cannot parse config file", "broken.toml"]),
    "out-is-a-file": (["--out", "{tmp}/not_a_corpus/readme.txt"], ["readme.txt", "not a folder"]),
}


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_train_bad_input(case, run_cli, bad_files, corpus, tiny_corpus):
    args, needles = TRAIN_CASES[case]
    tmp = bad_files
    fill = {"tmp": tmp, "corpus": corpus, "tiny": tiny_corpus}
    args = [a.format(**fill) for a in args]
    before = snapshot(tmp)
    # the case's own options come last, so they win over the defaults
    rc, o, e = run_cli("train", "--preset", "transformer-tiny", "--data", corpus,
                       "--out", tmp / "run", *TRAIN_ARGS, *args)
    assert_user_error(rc, o, e, *needles)
    assert not (tmp / "run").exists(), "a failed train created its run directory"
    assert snapshot(tmp) == before


def test_train_refuses_existing_run_without_resume(run_cli, trained_run, tmp_path, corpus):
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    weights = (run / "ckpt" / "last" / "model.safetensors").read_bytes()
    before = snapshot(run)
    rc, o, e = run_cli("train", "--preset", "transformer-tiny", "--data", corpus, "--out", run,
                       *TRAIN_ARGS)
    assert_user_error(rc, o, e, "already holds a run", "--resume")
    assert (run / "ckpt" / "last" / "model.safetensors").read_bytes() == weights
    assert snapshot(run) == before


def test_train_resume_on_empty_dir(run_cli, tmp_path, corpus):
    (tmp_path / "run").mkdir()
    rc, o, e = run_cli("train", "--data", corpus, "--out", tmp_path / "run", "--resume", *TRAIN_ARGS)
    assert_user_error(rc, o, e, "nothing to resume")
    assert list((tmp_path / "run").iterdir()) == []


def test_train_resume_with_damaged_run_config(run_cli, tmp_path, corpus):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run_config.json").write_text("{not json")
    before = snapshot(tmp_path)
    rc, o, e = run_cli("train", "--data", corpus, "--out", tmp_path / "run", "--resume", *TRAIN_ARGS)
    assert_user_error(rc, o, e, "run_config.json")
    assert snapshot(tmp_path) == before


# --- eval -----------------------------------------------------------------------------------

def _damage(ckpt: Path, how: str) -> None:
    w, c = ckpt / "model.safetensors", ckpt / "config.json"
    if how == "garbage-weights":
        w.write_bytes(bytes(range(256)) * 64)
    elif how == "truncated-weights":
        data = w.read_bytes()
        w.write_bytes(data[: len(data) // 2])
    elif how == "config-not-json":
        c.write_text('{"d_model": 64,')
    elif how in ("config-d_model-96", "config-n_layers-3"):
        d = json.loads(c.read_text())
        key, value = how.split("-")[1], int(how.split("-")[2])
        d[key] = value
        c.write_text(json.dumps(d))
    elif how in ("config-n_layers-2.7", "config-context-256"):
        d = json.loads(c.read_text())
        key, value = how.split("-")[1], float(how.split("-")[2])
        d[key] = int(value) if value.is_integer() else value
        c.write_text(json.dumps(d))
    elif how == "weights-nan":
        from safetensors.torch import load_file, save_file
        t = load_file(str(w))
        save_file({k: v * float("nan") for k, v in t.items()}, str(w))
    elif how == "trainer-state-not-json":
        (ckpt / "trainer_state.json").write_text("{oops")
    else:
        raise AssertionError(how)


EVAL_DAMAGE = {
    "garbage-weights": ["corrupted checkpoint", "model.safetensors"],
    "truncated-weights": ["corrupted checkpoint", "model.safetensors"],
    "config-not-json": ["config.json is not valid JSON"],
    "config-d_model-96": ["config/weights mismatch", "(64, 64) vs config (96, 96)"],
    "config-n_layers-3": ["config/weights mismatch", "missing", "blocks.2."],
    "trainer-state-not-json": ["trainer_state.json"],
    "config-n_layers-2.7": ["model.n_layers must be an integer, got 2.7"],
    "config-context-256": ["disagrees with the run config", "context: 256 vs 128"],
    "weights-nan": ["bad weights", "NaN or Inf"],
}


@pytest.mark.parametrize("how", list(EVAL_DAMAGE))
def test_eval_damaged_checkpoint(how, run_cli, ckpt_copy, tmp_path):
    _damage(ckpt_copy, how)
    before = snapshot(tmp_path)
    rc, o, e = run_cli("eval", ckpt_copy, "--max-bytes", "500", "--json", tmp_path / "res.json")
    assert_user_error(rc, o, e, *EVAL_DAMAGE[how])
    assert snapshot(tmp_path) == before  # no res.json, checkpoint untouched


EVAL_CASES = {
    "missing-path": (["{tmp}/no_such_ckpt"], ["checkpoint not found", "no_such_ckpt"]),
    "not-a-checkpoint": (["{tmp}/plain_dir"], ["not a bytelm checkpoint", "plain_dir"]),
    "seq-len-over-context": (["{ckpt}", "--seq-len", "999"], ["--seq-len 999", "context 128"]),
    "negative-max-bytes": (["{ckpt}", "--max-bytes", "-5"], ["--max-bytes must be >= 0"]),
    "bad-split": (["{ckpt}", "--split", "dev"], ["--split", "'dev'"]),
    "bad-device": (["{ckpt}", "--device", "bogus"], ["device", "'bogus'"]),
    "json-is-a-folder": (["{ckpt}", "--json", "{tmp}/plain_dir"], ["--json", "folder"]),
}


@pytest.mark.parametrize("case", list(EVAL_CASES))
def test_eval_bad_input(case, run_cli, ckpt, tmp_path):
    args, needles = EVAL_CASES[case]
    (tmp_path / "plain_dir").mkdir()
    args = [a.format(tmp=tmp_path, ckpt=ckpt) for a in args]
    before = snapshot(tmp_path)
    rc, o, e = run_cli("eval", *args)
    assert_user_error(rc, o, e, *needles)
    assert snapshot(tmp_path) == before


# --- generate -------------------------------------------------------------------------------

GEN_CASES = {
    "empty-prompt": (["--prompt", ""], ["prompt is empty"]),
    "prompt-file-missing": (["--prompt-file", "{tmp}/nope.txt"], ["prompt file not found", "nope.txt"]),
    "prompt-file-is-a-folder": (["--prompt-file", "{tmp}"], ["prompt file is a folder"]),
    "top-p-zero": (["--prompt", "a", "--top-p", "0"], ["--top-p must be in (0, 1]"]),
    "negative-temperature": (["--prompt", "a", "--temperature", "-1"], ["--temperature"]),
    "nan-temperature": (["--prompt", "a", "--temperature", "nan"], ["--temperature"]),
    "max-bytes-zero": (["--prompt", "a", "--max-bytes", "0"], ["--max-bytes must be >= 1"]),
    "bad-device": (["--prompt", "a", "--device", "bogus"], ["device", "'bogus'"]),
    "no-prompt": ([], ["--prompt"]),
    "prompts-file-missing": (["--prompts-file", "{tmp}/nope.txt"], ["prompts file not found"]),
    "prompts-file-and-stream": (["--prompts-file", "{tmp}/nope.txt", "--stream"],
                                ["--prompts-file", "--stream"]),
}


@pytest.mark.parametrize("case", list(GEN_CASES))
def test_generate_bad_input(case, run_cli, ckpt, tmp_path):
    args, needles = GEN_CASES[case]
    args = [a.format(tmp=tmp_path) for a in args]
    rc, o, e = run_cli("generate", ckpt, "--max-bytes", "4", *args)
    assert_user_error(rc, o, e, *needles)  # includes: nothing generated on stdout


@pytest.mark.parametrize("text, needle", [(b'"ab"\n{"prompt": 3}\n', "p.jsonl:2"),
                                          (b'"ab"\nnot json\n', "not JSON"),
                                          (b'\n\n', "no prompts"),
                                          (b'"ab"\n""\n', "prompt 2 is empty")])
def test_generate_bad_prompts_file(run_cli, ckpt, tmp_path, text, needle):
    (tmp_path / "p.jsonl").write_bytes(text)
    rc, o, e = run_cli("generate", ckpt, "--prompts-file", tmp_path / "p.jsonl")
    assert_user_error(rc, o, e, needle)


def test_generate_bad_checkpoint_path(run_cli, tmp_path):
    rc, o, e = run_cli("generate", tmp_path / "no_such_ckpt", "--prompt", "a")
    assert_user_error(rc, o, e, "checkpoint not found", "no_such_ckpt")


def test_generate_crops_a_long_prompt_with_a_warning(run_cli, ckpt):
    """A prompt longer than the context: its last 128 bytes are used, and a warning says so."""
    long = "y" * 40 + "x" * CONTEXT
    args = ("--temperature", "0", "--max-bytes", "6")
    rc, o, e = run_cli("generate", ckpt, "--prompt", long, *args)
    assert rc == 0 and "Traceback" not in e
    assert "129" not in e and "168 bytes, longer than the model's context of 128" in e
    rc, o2, _ = run_cli("generate", ckpt, "--prompt", long[-CONTEXT:], *args)
    assert o == o2
    rc, o3, e = run_cli("generate", ckpt, "--interactive", *args, stdin=long.encode() + b"\nab\n\n")
    assert rc == 0 and e.count("longer than the model's context") == 1 and "error" not in e


def test_non_utf8_prompts_are_bytes_not_tracebacks(run_cli, ckpt):
    """argv and stdin that are not UTF-8 reach the byte model as the bytes they are."""
    args = ("--temperature", "0", "--max-bytes", "5")
    raw = b"ab\xff\xfe"
    rc, o, e = run_cli("generate", ckpt, "--prompt", os.fsdecode(raw), *args)  # as argv arrives
    assert rc == 0 and "Traceback" not in e, e
    rc, o_stdin, e = run_cli("generate", ckpt, "--prompt", "-", *args, stdin=raw)
    assert rc == 0 and o_stdin == o
    rc, o_inter, e = run_cli("generate", ckpt, "--interactive", *args, stdin=raw + b"\n\n")
    assert rc == 0 and "Traceback" not in e and o_inter == o
    rc, o_chat, e = run_cli("chat", ckpt, "--temperature", "0", "--max-bytes", "5",
                            stdin=raw + b"\n\n")
    assert rc == 0 and "Traceback" not in e and o_chat.strip()


def test_generate_stop_strings(run_cli, ckpt):
    """--stop (repeatable, escapes allowed) ends the output right after the first stop string."""
    import bytelm
    made = bytelm.generate(bytelm.load(ckpt), b"ab", max_bytes=40, temperature=0)
    stop_a, stop_b = made[5:7], made[12:14]
    cut = min(made.find(stop_a) + 2, made.find(stop_b) + 2)
    want = made[:cut].decode("utf-8", errors="replace") + "\n"
    esc = lambda b: "".join(f"\\x{v:02x}" for v in b)  # noqa: E731
    args = ("--prompt", "ab", "--temperature", "0", "--max-bytes", "40")
    for extra in (["--stop", esc(stop_b), "--stop", esc(stop_a)],
                  ["--stop", esc(stop_a), "--stop", esc(stop_b), "--stream"]):
        rc, o, e = run_cli("generate", ckpt, *args, *extra)
        assert rc == 0, e
        assert o == want


# --- info / top level -----------------------------------------------------------------------

def test_info_unknown_preset(run_cli):
    rc, o, e = run_cli("info", "transformer-tinny")
    assert_user_error(rc, o, e, "unknown preset 'transformer-tinny'", "did you mean 'transformer-tiny'")


@pytest.mark.parametrize("argv", [[], ["bogus"], ["info", "--foo"]], ids=["no-command", "bad-command",
                                                                           "info-extra-flag"])
def test_top_level_bad_input(argv, run_cli):
    rc, o, e = run_cli(*argv)
    assert_user_error(rc, o, e)


# --- the real process -----------------------------------------------------------------------

def test_subprocess_exit_code_and_single_line(ckpt_copy, tmp_path, cli_cache):
    """`python -m bytelm` really exits 2 with one stderr line (no log lines, no traceback)."""
    _damage(ckpt_copy, "garbage-weights")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "BYTELM_CACHE": str(cli_cache)}
    p = subprocess.run([sys.executable, "-m", "bytelm", "eval", str(ckpt_copy), "--max-bytes", "500"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert_user_error(p.returncode, p.stdout, p.stderr, "corrupted checkpoint", "model.safetensors")
