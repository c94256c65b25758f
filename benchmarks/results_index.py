"""Generates benchmarks/results/INDEX.md: one row per result file (study, device, commit,
command, a headline number), read from the files themselves, plus the notes of the files that
a later one supersedes.

    python benchmarks/results_index.py            # rewrite INDEX.md
    python benchmarks/results_index.py --check    # exit 1 if INDEX.md is not what it would write

Every result file lives in the folder of its study, benchmarks/results/STUDY/ (``STUDIES`` gives
each folder's title). Fields a file does not record are shown as "-".
"""
import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
INDEX = RESULTS / "INDEX.md"

# study folder -> its title in the index (every file lives in its study's folder)
STUDIES = {
    "equal_time_30m": "30M equal-time runs", "generate": "generation speed",
    "train_speed": "training speed", "compile": "torch.compile", "mixer": "mixer kernels",
    "gpu_tests": "GPU tests", "kasgarli": "Kasgarli (English vs Turkish)",
    "recall": "associative recall", "needle": "needle", "copy_task": "copy task",
    "curriculum": "curriculum", "live": "live learning", "ablations": "ablations",
    "optimizers": "optimizers", "flops": "FLOP counts", "sizes": "sizes", "patching": "patching",
    "prepare": "data preparation", "hardening": "hardening", "speedrun": "time to target",
    "hnet": "hnet (hierarchical)", "lm_eval": "lm-evaluation-harness suite",
}

# files kept as a record although a later file replaces them: path -> note
SUPERSEDED = {
    "generate/bench_generate_bsfin_cpu_before.json":
        "before ComplexLinear kept its block matrix for inference; the after is generate/bench_generate_bsfin_cpu.json",
    "kasgarli/kasgarli_bible_transformer-30m_laststep.json":
        "BPE scored at its last (overfit) step; superseded by kasgarli/kasgarli_bible_transformer-30m.json (chosen on validation)",
    "hnet/equal_time_2.5min_budget_bug_h100.json":
        "record of the time-budget bug (runs stopped after 5 steps); no model result",
    "hnet/equal_time_1min_h200.json":
        "the first hnet-30m preset; superseded by hnet/equal_time_1min_v2_h100.json (another card: not comparable)",
    "generate/bench_generate_static_rerun_h100.json": "a rerun of generate/bench_generate_static_h100.json on another machine",
}

KEEP = {".json", ".png", ".log", ".txt", ".md"}


def study(rel: Path) -> str:
    """The title of the file's folder (its first folder under benchmarks/results/)."""
    if len(rel.parts) < 2:
        return "other"  # a file outside every study folder: test_results_index fails on it
    return STUDIES.get(rel.parts[0], rel.parts[0])


def _get(d: dict, *paths: str):
    for p in paths:
        cur = d
        for k in p.split("."):
            cur = cur.get(k) if isinstance(cur, dict) else None
        if cur not in (None, "", []):
            return cur
    return None


def device(rel: Path, d: dict) -> str:
    v = _get(d, "device_name", "env.device_name", "env.device", "device", "machine.device")
    if isinstance(v, str) and v:
        return v
    m = re.search(r"_(h100|h200|cpu)(?:_|\.|/|$)", rel.as_posix())
    if m:
        return m.group(1).upper()
    m = re.search(r"\b(H100|H200)\b", str(_get(d, "device_command") or ""))
    return m.group(1) if m else "-"


def headline(d: dict) -> str:
    for key, label in (("test.bpb", "test bpb"), ("summary.by_outcome.ok", "ok cases"),
                       ("train_summary.steady_bytes_per_s", "steady bytes/s"),
                       ("best_val.bpb", "best val bpb")):
        v = _get(d, key)
        if isinstance(v, (int, float)):
            return f"{label} {v:,.3f}" if isinstance(v, float) and v < 100 else f"{label} {v:,.0f}"
    rows = _get(d, "rows", "runs", "cases")
    if isinstance(rows, list):
        return f"{len(rows)} rows"
    return "-"


def cell(s) -> str:
    s = " ".join(str(s).split())
    s = s if len(s) <= 140 else s[:137] + "..."
    return s.replace("|", "\\|")


def rows() -> list[list[str]]:
    out = []
    for f in sorted(RESULTS.rglob("*")):
        rel = f.relative_to(RESULTS)
        if not f.is_file() or f == INDEX or f.suffix not in KEEP:
            continue
        d = {}
        if f.suffix == ".json":
            try:
                d = json.loads(f.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                d = {}
            d = d if isinstance(d, dict) else {}
        cmd = _get(d, "device_command", "command", "env.command")
        if cmd is None and isinstance(d.get("commands"), list):
            cmd = d["commands"][-1]
        out.append([study(rel), f"`{rel.as_posix()}`", device(rel, d),
                    cell(_get(d, "git_commit", "env.git_commit", "commit") or "-"),
                    cell(cmd or "-"), headline(d) if d else "-",
                    SUPERSEDED.get(rel.as_posix(), "")])
    out.sort(key=lambda r: (r[0], r[1]))
    return out


def render() -> str:
    lines = ["# Result files", "",
             "Generated by `python benchmarks/results_index.py` from the files themselves (do not "
             "edit; `--check` in the tests fails when it is stale). Study: the file's folder. "
             "Command: the device command where the file records one. "
             "Headline: the first of test bpb, ok cases, steady bytes/s, best val bpb, or a row count.",
             "", "| study | file | device | commit | command | headline | superseded / note |",
             "|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows()]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if INDEX.md is stale")
    a = ap.parse_args()
    text = render()
    if a.check:
        if not INDEX.is_file() or INDEX.read_text() != text:
            print("benchmarks/results/INDEX.md is stale: run python benchmarks/results_index.py",
                  file=sys.stderr)
            return 1
        return 0
    INDEX.write_text(text)
    print(f"wrote {INDEX.relative_to(ROOT)} ({len(text.splitlines()) - 6} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
