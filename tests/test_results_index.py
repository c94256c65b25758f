"""benchmarks/results/INDEX.md is current, and every result file the docs cite exists."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CITED = re.compile(r"(?<![\w./+-])((?:\.\./)?(?:[\w.+-]+/)*[\w.+-]+\.(?:json|png|log))\b")
# names that are not committed results: run outputs, placeholders, other tools' files
NOT_RESULTS = ("summary.json", "metrics.jsonl", "config.json", "run_config.json", "meta.json",
               "trainer_state.json", "tokenizer.json", "tokenizer_config.json",
               "generation_config.json", "special_tokens_map.json", "live_state.json",
               "memory.json", "results.json", "r.json", "out.json", "lm_eval.json", "screenshot.png",
               # the seed's artefacts (docs/claims.md A17) and a `datasets` folder's files
               "metrics_curriculum.json", "training_20k.log", "dataset_dict.json",
               "dataset_info.json", "state.json")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
OUTPUT_FLAG = re.compile(r"--(?:out|result|png|json)[ =]\S+$")


def test_index_is_current():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "results_index.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def cited_files() -> set[tuple[str, str]]:
    out = set()
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = FENCE.sub("", doc.read_text())  # commands in code blocks name their outputs
        for m in CITED.finditer(text):
            name = m.group(1)
            if OUTPUT_FLAG.search(text[max(0, m.start() - 12):m.end()]):
                continue  # an output a command would write
            if name.startswith("_") or "CORPUS" in name:
                continue  # the tail of a {a,b}_x.json pattern, a placeholder
            if Path(name).name in NOT_RESULTS or name.startswith(("runs/", "tmp/", "docs/", "src/", "tests/")):
                continue
            name = name.removeprefix("../")
            if "results/" in name:
                name = name.split("results/", 1)[1]
            elif "/" in name and not (RESULTS / name.split("/")[0]).is_dir():
                continue  # another folder's file (e.g. a corpus or a run directory)
            out.add((doc.name, name))
    return out


def test_every_cited_result_file_exists():
    have = [p.relative_to(RESULTS).as_posix() for p in RESULTS.rglob("*") if p.is_file()]
    have += [p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*") if p.is_file()]
    missing = sorted((doc, name) for doc, name in cited_files()
                     if not any(h == name or h.endswith("/" + name) for h in have))
    assert not missing, missing


def test_readme_tables_are_generated_from_the_files():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "tables.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
