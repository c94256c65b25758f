"""``bytelm overfit``, ``bytelm inspect`` and ``bytelm plot`` end to end, in-process."""
import pytest

from .helpers import TRAIN_ARGS, assert_user_error, main_ok

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC


@pytest.fixture(scope="module")
def agi_run(tmp_path_factory, corpus, cli_cache):
    """agiformer-tiny trained for 2 steps: a checkpoint with gates, memory and ACT."""
    run = tmp_path_factory.mktemp("agi-run") / "run"
    main_ok(["train", "--preset", "agiformer-tiny", "--data", corpus, "--out", run, *TRAIN_ARGS],
            cli_cache)
    return run


def test_overfit_reaches_target(run_cli, corpus):
    rc, out, err = run_cli("overfit", "--preset", "transformer-tiny", "--data", corpus,
                           "--steps", "200", "--seq-len", "64", "--target", "0.5", "--lr", "3e-3",
                           "--device", "cpu")
    assert rc == 0, out + err
    assert "OK: loss" in out and "non-finite: loss 0, grad norm 0" in out
    assert out.count("\n") < 20  # a summary of the curve, not every step


def test_overfit_failure_exit_code_and_bf16_counts(run_cli, corpus):
    rc, out, err = run_cli("overfit", "--preset", "agiformer-tiny", "--data", corpus, "--steps", "2",
                           "--seq-len", "32", "--target", "0.01", "--precision", "bf16",
                           "--device", "cpu")
    assert rc == 1, out + err
    assert "FAILED" in out and "non-finite: loss 0, grad norm 0 (of 2 steps)" in out
    assert "precision bf16" in out


@pytest.mark.parametrize("argv,needle", [
    (["--steps", "0"], "--steps"),
    (["--target", "-1"], "--target"),
    (["--seq-len", "4096"], "exceeds the model context"),
    (["--train.steps=3"], "only --model"),
    (["--model.n_layers=0"], "n_layers"),
])
def test_overfit_bad_input(run_cli, corpus, argv, needle):
    assert_user_error(*run_cli("overfit", "--data", corpus, *argv), needle)


def test_inspect_agiformer_writes_png(run_cli, agi_run, tmp_path):
    out = tmp_path / "insp.png"
    rc, o, e = run_cli("inspect", agi_run, "--bytes", "1024", "--out", out)
    assert rc == 0, o + e
    assert _is_png(out)
    for needle in ("HybridBlock gate", "memory decay lambda", "half-life", "ACT: mean steps",
                   "plasticity 1", "positions by steps taken", "mean |dz| at step n: 1:"):
        assert needle in o, needle
    # two layers of agiformer-tiny, four memory heads
    table = o.split("HybridBlock gate")[1]
    assert "    0 " in table and "    1 " in table


def test_inspect_gpt_prints_parameter_norms(run_cli, ckpt, tmp_path):
    out = tmp_path / "none.png"
    rc, o, e = run_cli("inspect", ckpt, "--out", out)
    assert rc == 0, o + e
    assert "parameter norms only" in o and "embed.weight" in o and not out.exists()


@pytest.mark.parametrize("argv,needle", [
    (["--out", "{tmp}/x.txt"], ".png"),
    (["--bytes", "1"], "--bytes"),
])
def test_inspect_bad_input(run_cli, agi_run, tmp_path, argv, needle):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert_user_error(*run_cli("inspect", agi_run, *argv), needle)
    assert_user_error(*run_cli("inspect", tmp_path / "nope"), "not found")


def test_plot_runs(run_cli, trained_run, agi_run, tmp_path):
    out = tmp_path / "curves.png"
    rc, o, e = run_cli("plot", trained_run, agi_run, "--out", out)
    assert rc == 0, o + e
    assert _is_png(out) and str(out) in o
    assert_user_error(*run_cli("plot", tmp_path / "nope", "--out", out), "not found")
    assert_user_error(*run_cli("plot", tmp_path, "--out", out), "metrics.jsonl")
    assert_user_error(*run_cli("plot", trained_run, "--out", tmp_path / "c.pdf"), ".png")


def test_plot_kasgarli_result(run_cli, tmp_path):
    """A kasgarli.json (here the committed 15-language NTREX result) redraws its figure."""
    from pathlib import Path
    res = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "kasgarli" / "kasgarli_ntrex.json"
    out = tmp_path / "k.png"
    rc, o, e = run_cli("plot", res, "--out", out)
    assert rc == 0, o + e
    assert _is_png(out) and str(out) in o
    other = tmp_path / "x.json"
    other.write_text('{"a": 1}')
    assert_user_error(*run_cli("plot", other, "--out", out), "not a `bytelm kasgarli` result")
    assert_user_error(*run_cli("plot", res, "--out", tmp_path / "k.pdf"), ".png")
