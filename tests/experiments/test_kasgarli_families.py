"""benchmarks/kasgarli_families.py: kasgarli results of several families set side by side, each
byte model's gap to the Transformer's BPE baseline; incomparable results refused."""
import json

import pytest

from tests.eval.test_needle import run_cli
from tests.scripts import load_benchmark


def test_families_side_by_side(shared_data, tmp_path, one_thread):
    common = ["--langs", "eng,tur", "--max-lines", "400", "--steps", "2", "--evals", "1",
              "--train.batch_size=2", "--train.device=cpu", "--data.seq_len=64"]
    t, a, b = tmp_path / "t", tmp_path / "a", tmp_path / "b"
    assert run_cli(["kasgarli", "--preset", "transformer-tiny", "--bpe", "300", "--out", str(t)]
                   + common) == 0
    assert run_cli(["kasgarli", "--preset", "agiformer-tiny", "--out", str(a)] + common) == 0
    mod = load_benchmark("kasgarli_families")
    out = tmp_path / "f.json"
    mod.main([str(a / "kasgarli.json"), str(t / "kasgarli.json"), "--out", str(out)])
    res = json.loads(out.read_text())
    assert res["presets"] == ["agiformer-tiny", "transformer-tiny"]
    assert res["bpe_from"] == "transformer-tiny" and res["bytes_per_language"] == 2 * 2 * 64
    assert out.with_suffix(".png").stat().st_size > 1000
    assert [r["flops_per_byte"] > 0 for r in res["runs"]] == [True, True]
    runs = {p: json.loads((d / "kasgarli.json").read_text()) for p, d in
            (("transformer-tiny", t), ("agiformer-tiny", a))}
    for i, row in enumerate(res["languages"]):
        bpe = runs["transformer-tiny"]["languages"][i]["bpe"][0]["test"]["bpb"]
        assert row["best_bpe_bpb"] == bpe and row["best_bpe_vocab"] == 300
        for p, r in runs.items():  # every family against the Transformer's BPE
            assert row["bytes"][p]["bpb"] == r["languages"][i]["test"]["bpb"]
            assert row["gap_to_bpe"][p] == pytest.approx(row["bytes"][p]["bpb"] - bpe)
    # a run with --model.* overrides records its config and is sized by it, under its label
    w = tmp_path / "w"
    assert run_cli(["kasgarli", "--preset", "transformer-tiny", "--model.n_layers=3",
                    "--out", str(w)] + common) == 0
    wres = json.loads((w / "kasgarli.json").read_text())
    assert wres["model"]["n_layers"] == 3
    wres["label"] = "transformer-tiny-3l"
    (w / "kasgarli.json").write_text(json.dumps(wres))
    mod.main([str(t / "kasgarli.json"), str(w / "kasgarli.json"), "--out", str(out)])
    res = json.loads(out.read_text())
    import bytelm
    sizes = {r["preset"]: r["n_params"] for r in res["runs"]}
    assert sizes == {"transformer-tiny": bytelm.create_model("transformer-tiny").n_params(),
                     "transformer-tiny-3l": bytelm.create_model("transformer-tiny", n_layers=3).n_params()}
    # another byte budget is not comparable
    assert run_cli(["kasgarli", "--preset", "bsfin-tiny", "--out", str(b)] + common[:-1]) == 0
    with pytest.raises(SystemExit, match="bytes_per_language"):
        mod.main([str(t / "kasgarli.json"), str(b / "kasgarli.json"), "--out", str(out)])
