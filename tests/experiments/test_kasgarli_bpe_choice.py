"""benchmarks/kasgarli_bpe_choice.py: the committed Kaşgarlı results' BPE vocabulary chosen on
validation, recomputed from the files; the committed summary matches a fresh run."""
import json

from tests.scripts import BENCHMARKS, load_benchmark


def test_choice_on_validation_from_committed_results(tmp_path, capsys):
    mod = load_benchmark("kasgarli_bpe_choice")
    out = mod.main(["--out", str(tmp_path / "c.json")])
    tur = {r["lang"]: r for r in out["files"]["kasgarli_mono.json"]}["tur"]
    # the monolingual Turkish test split favours BPE 1000, validation BPE 4000
    assert (tur["val_chosen"]["vocab"], tur["test_chosen"]["vocab"]) == (4000, 1000)
    assert abs(tur["val_chosen"]["gap"] - (4.032 - 3.903)) < 1e-3 and tur["changed"]
    assert "kasgarli_bible_transformer-30m_laststep.json" in out["not_choosable"]
    assert "changed best gap: tur: BPE 4000 (+0.130) instead of BPE 1000 (+0.478)" in \
        capsys.readouterr().out
    committed = json.loads((BENCHMARKS / "results" / "kasgarli" / "kasgarli_bpe_choice.json").read_text())
    assert committed["files"] == json.loads((tmp_path / "c.json").read_text())["files"]
