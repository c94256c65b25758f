"""bytelm.experiments.kasgarli (the Kasgarli test): line-aligned splits, bit accounting, end to end."""
import json
import math

import numpy as np
import pytest
import torch

import bytelm
from bytelm.data import open_split
from bytelm.errors import UserError
from bytelm.eval.bpb import evaluate_bpb
from bytelm.experiments.kasgarli import (best_bpe, best_bpe_bpb, bpe_table, heldout_metrics,
                                   line_splits, markdown_table, prepare_monolingual,
                                   prepare_parallel, steps_to_reach)
from tests.eval.test_needle import run_cli


def test_line_splits():
    s = line_splits(1000)
    assert (s["train"], s["val"], s["test"]) == (range(0, 900), range(900, 950), range(950, 1000))
    s = line_splits(29935)
    assert s["test"].stop == 29935 and len(s["test"]) == len(s["val"]) == 1497
    assert s["train"].stop == s["val"].start and s["val"].stop == s["test"].start
    with pytest.raises(UserError):
        line_splits(10)


@pytest.fixture()
def parallel_dir(tmp_path):
    d = tmp_path / "par"
    d.mkdir()
    (d / "aaa.txt").write_text("".join(f"line {i} of a\n" for i in range(200)), encoding="utf-8")
    (d / "bbb.txt").write_text("".join(f"{i}. satır, çok güzel ğ\n" for i in range(200)),
                               encoding="utf-8")
    return d


def test_prepare_parallel_same_line_indices(parallel_dir, tmp_path):
    prep = prepare_parallel(parallel_dir, ["aaa", "bbb"], tmp_path / "data")
    assert prep["_splits"] == {"train": [0, 180], "val": [180, 190], "test": [190, 200]}
    for lang, fmt in (("aaa", "line {} of a"), ("bbb", "{}. satır, çok güzel ğ")):
        for split, (a, b) in prep["_splits"].items():
            want = "".join(fmt.format(i) + "\n" for i in range(a, b)).encode()
            got = open_split(prep[lang]["data"], split)
            assert bytes(got.data) == want, (lang, split)
            assert prep[lang]["bytes"][split] == len(want)
            assert prep[lang]["lines"][split] == b - a
    assert prep["bbb"]["chars"]["test"] < prep["bbb"]["bytes"]["test"]  # ç, ğ, ı take 2 bytes
    (parallel_dir / "ccc.txt").write_text("one line\n")
    with pytest.raises(UserError, match="line-aligned"):
        prepare_parallel(parallel_dir, ["aaa", "ccc"], tmp_path / "data2")
    with pytest.raises(UserError):
        prepare_parallel(parallel_dir, ["aaa", "zzz"], tmp_path / "data3")


def test_prepare_monolingual_equal_bytes(tmp_path):
    a, b, c = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"
    a.write_text("".join(f"english line number {i}\n" for i in range(3000)))
    b.write_text("".join(f"türkçe satır {i}\n" for i in range(1000)))
    c.write_text("".join(f"ikinci dosya {i}\n" for i in range(1000)))
    prep = prepare_monolingual({"eng": [a], "tur": [b, c]}, tmp_path / "mono")
    n = prep["_splits"]["bytes_per_language"]
    assert n == b.stat().st_size + c.stat().st_size
    for lang in ("eng", "tur"):
        total = sum(prep[lang]["bytes"].values())
        assert n - 30 <= total <= n  # whole lines only, less than one line short per file
    # both Turkish files contribute to the test split
    test = bytes(open_split(prep["tur"]["data"], "test").data).decode()
    assert "türkçe" in test and "ikinci" in test


def test_total_bits_arithmetic():
    torch.manual_seed(0)
    m = bytelm.create_model("transformer-tiny").eval()
    data = np.frombuffer("Gizli şifre 1453. The secret key is 1453.\n".encode() * 30, dtype=np.uint8)
    score = evaluate_bpb(m, data, seq_len=128)
    t = heldout_metrics(score, n_lines=30)
    assert t["total_bits"] == pytest.approx(t["bpb"] * t["scored_bytes"], rel=1e-12)
    assert t["total_bits"] == pytest.approx(t["bits_per_char"] * t["scored_chars"], rel=1e-12)
    assert t["total_bits"] == pytest.approx(score["nats"] / math.log(2))
    assert t["bits_per_line"] == pytest.approx(t["total_bits"] / 30)
    assert t["scored_bytes"] == len(data) - 1


def test_steps_to_reach():
    curve = [{"step": 30, "bpb": 2.4}, {"step": 10, "bpb": 3.0}, {"step": 20, "bpb": 2.5}]
    assert steps_to_reach(curve, 2.5) == 20
    assert steps_to_reach(curve, 2.0) is None
    assert steps_to_reach([], 2.5) is None


def _bpe(vocab, val, test):
    return {"vocab_requested": vocab, "selection": {"val_bpb": val, "fraction": 1, "epochs": 1,
                                                    "step": 9}, "test": {"bpb": test},
            "test_bytes_per_token": 2.0}


def test_best_bpe_chosen_on_validation():
    # the test split favours 1000, validation 4000: the vocabulary is chosen on validation
    lang = {"lang": "tur", "test": {"bpb": 4.0},
            "bpe": [_bpe(1000, val=1.65, test=3.55), _bpe(4000, val=1.62, test=3.90)]}
    assert best_bpe(lang)["vocab_requested"] == 4000
    assert best_bpe_bpb(lang) == 3.90
    assert "| tur | 4.000 |" in bpe_table({"languages": [lang]})
    assert bpe_table({"languages": [lang]}).endswith("| +0.100 |")
    # a baseline without a validation score cannot be chosen without the test split
    del lang["bpe"][1]["selection"]["val_bpb"]
    with pytest.raises(UserError, match=r"\[4000\] record no validation"):
        best_bpe(lang)


def test_kasgarli_tiny_end_to_end(shared_data, tmp_path, capsys, one_thread):
    """eng and tur Bible, the same line indices held out, 4 steps of transformer-tiny each."""
    out = tmp_path / "kas"
    rc = run_cli(["kasgarli", "--langs", "eng,tur", "--max-lines", "400", "--steps", "4",
                            "--evals", "2", "--out", str(out), "--train.batch_size=2",
                            "--train.device=cpu"])
    assert rc == 0
    res = json.loads((out / "kasgarli.json").read_text())
    assert (out / "kasgarli.png").stat().st_size > 1000
    assert res["mode"] == "parallel" and res["content_controlled"] is True
    assert res["splits"] == {"train": [0, 360], "val": [360, 380], "test": [380, 400]}
    assert res["bytes_per_language"] == 4 * 2 * 128
    eng, tur = res["languages"]
    assert (eng["lang"], tur["lang"]) == ("eng", "tur")
    bible = shared_data / "parallel" / "bible"
    for r in (eng, tur):
        lines = (bible / f"{r['lang']}.txt").read_bytes().split(b"\n")[380:400]
        assert r["bytes"]["test"] == sum(len(x) + 1 for x in lines)
        assert r["test_complete"] and r["test"]["scored_bytes"] == r["bytes"]["test"] - 1
        assert r["test"]["total_bits"] == pytest.approx(r["test"]["bpb"] * r["test"]["scored_bytes"])
        assert [v["step"] for v in r["val_curve"]] == [2, 4]
        assert r["steps_to_threshold"] is None  # 4 steps never reach 2.5 bpb
    assert eng["test"]["total_bits_vs_first"] == 1.0
    printed = capsys.readouterr().out
    assert markdown_table(res) in printed and "| tur |" in printed
    # the same command again reuses the finished runs; other steps in the same folder is an error
    args = ["kasgarli", "--langs", "eng,tur", "--max-lines", "400", "--evals", "2", "--out", out,
            "--train.batch_size=2", "--train.device=cpu"]
    assert run_cli(args + ["--steps", "4"]) == 0
    again = json.loads((out / "kasgarli.json").read_text())
    assert [r["test"] for r in again["languages"]] == [r["test"] for r in res["languages"]]
    assert run_cli(args + ["--steps", "5"]) == 2
    assert "use another --out" in capsys.readouterr().err


def test_reused_run_must_match_its_data(tmp_path, capsys, one_thread):
    """Monolingual sizes follow the smallest text of the languages chosen: English run alone
    gets more bytes than with Turkish beside it, so the same --out must refuse to reuse it."""
    eng, tur = tmp_path / "eng.txt", tmp_path / "tur.txt"
    eng.write_text("".join(f"english line number {i}\n" for i in range(3000)))
    tur.write_text("".join(f"türkçe satır {i}\n" for i in range(1000)))
    out = tmp_path / "kas"
    common = ["kasgarli", "--mode", "monolingual", "--mono", f"eng={eng}", "--mono", f"tur={tur}",
              "--steps", "2", "--evals", "1", "--out", str(out), "--train.batch_size=2",
              "--train.device=cpu"]
    assert run_cli(common + ["--langs", "eng"]) == 0
    assert run_cli(common + ["--langs", "eng"]) == 0  # same data: reused
    assert run_cli(common + ["--langs", "eng,tur"]) == 2
    assert "on other data" in capsys.readouterr().err
