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


RESULTS_PATH = re.compile(r"benchmarks/results/[\w.+/{},*-]*")
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_results_path_in_the_docs_exists():
    """A `benchmarks/results/...` path in README.md or docs/*.md names a file or folder that is
    there (a moved file's old path fails); outputs of a command (--out PATH), patterns ({a,b}, *)
    and placeholders (STUDY, CORPUS) are not checked."""
    missing = []
    for doc in DOCS:
        text = doc.read_text()
        for m in RESULTS_PATH.finditer(text):
            path = m.group(0).rstrip(".,:")
            if re.search(r"--(?:out|result|png|json)[ =]$", text[max(0, m.start() - 10):m.start()]):
                continue
            if any(c in path for c in "{*") or re.search(r"[A-Z]{3,}", path.replace("INDEX.md", "")):
                continue  # a pattern or a placeholder (STUDY, CORPUS)
            if not (ROOT / path).exists():
                missing.append(f"{doc.name}: {path}")
    assert not missing, missing


def test_result_files_are_in_study_folders():
    """Every result file is in the folder of its study, and the index names every folder."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import results_index
    finally:
        sys.path.pop(0)
    top = sorted(p.name for p in RESULTS.iterdir() if p.is_file() and p.name != "INDEX.md")
    assert not top, f"files outside a study folder: {top}"
    folders = sorted(p.name for p in RESULTS.iterdir() if p.is_dir())
    assert [f for f in folders if f not in results_index.STUDIES] == []
    assert all((RESULTS / k).is_file() for k in results_index.SUPERSEDED), results_index.SUPERSEDED


LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_doc_links_point_to_files():
    """Relative links of README.md and docs/*.md lead to files or folders of the repository."""
    broken = []
    for doc in DOCS:
        for m in LINK.finditer(FENCE.sub("", doc.read_text())):
            target = m.group(1).split("#", 1)[0]
            if not target or re.match(r"[a-z]+:", target):
                continue  # an anchor in the same page, or a URL
            if not (doc.parent / target).exists():
                broken.append(f"{doc.name}: {m.group(1)}")
    assert not broken, broken
