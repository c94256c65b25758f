"""Renders the results tables of README.md from the committed result files and writes each
between its markers ``<!-- table:NAME -->`` ... ``<!-- /table:NAME -->``:

    python benchmarks/tables.py            # rewrite the tables in place
    python benchmarks/tables.py --check    # exit 1 if any table differs from its files

Every number in a table is read from the file named in its row; MFU uses today's
``flops_per_byte`` (``equal_time_30m/mfu_recount.json``, made by benchmarks/mfu_recount.py).
"""
import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RES = ROOT / "benchmarks" / "results"
DOCS = [ROOT / "README.md"]


def _load(rel: str) -> dict:
    return json.loads((RES / rel).read_text())


def _mfu_now(rel: str) -> float:
    rows = {r["file"]: r for r in _load("equal_time_30m/mfu_recount.json")["rows"]}
    return rows[f"benchmarks/results/{rel}"]["mfu_now"]


def equal_time_8min() -> str:
    """The 8.3-minute English runs of the three seed-era families (one H100 each)."""
    runs = [("`transformer-30m`", "equal_time_30m/baseline_en.json"),
            ("`agiformer-31m`", "equal_time_30m/agiformer_en.json"),
            ("`bsfin-35m` (babylon)", "equal_time_30m/bsfin_en_babylon_qkmem.json")]
    out = ["| model (English Wikipedia, 8.3 min, one H100) | test bpb | steps | bytes seen | "
           "steady bytes/s | MFU | file |", "|---|---:|---:|---:|---:|---:|---|"]
    for name, rel in runs:
        d = _load(rel)
        ts = d["train_summary"]
        out.append(f"| {name} | {d['test']['bpb']:.3f} | {ts['steps']:,} | "
                   f"{ts['bytes_seen'] / 1e6:,.0f} M | {ts['steady_bytes_per_s'] / 1e6:.2f} M | "
                   f"{100 * _mfu_now(rel):.1f}% | `{rel}` |")
    return "\n".join(out)


def hnet_2_5min() -> str:
    """hnet-30m against transformer-30m in one GPU job, 2.5 minutes each."""
    rel = "hnet/equal_time_2.5min_h100.json"
    d = _load(rel)
    out = [f"| model (English Wikipedia, 2.5 min each, same {d['device']} job, {d['date']}) | "
           "test bpb | steps | overall / steady bytes/s | s to val 1.60 | s to val 1.50 |",
           "|---|---:|---:|---:|---:|---:|"]
    for r in sorted(d["runs"], key=lambda r: r["test"]["bpb"]):
        ts = r["train_summary"]
        reach = [f"{r[k]['train_s']:.0f}" if r.get(k) else "not reached" for k in ("time_to_1_60", "time_to_1_50")]
        out.append(f"| `{r['name']}` | {r['test']['bpb']:.3f} | {ts['steps']:,} | "
                   f"{ts['bytes_per_s'] / 1e6:.2f} M / {ts['steady_bytes_per_s'] / 1e6:.2f} M | "
                   f"{reach[0]} | {reach[1]} |")
    out.append(f"\nFile: `{rel}` (seconds of training, compilation included, validations not).")
    return "\n".join(out)


TABLES = {"equal_time_8min": equal_time_8min, "hnet_2_5min": hnet_2_5min}
MARK = re.compile(r"(<!-- table:(\w+) -->\n)(.*?)(<!-- /table:\2 -->)", re.S)


def render(text: str) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(2)
        if name not in TABLES:
            raise SystemExit(f"unknown table {name!r}; known: {', '.join(TABLES)}")
        return m.group(1) + TABLES[name]() + "\n" + m.group(4)
    return MARK.sub(sub, text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a table is stale")
    a = ap.parse_args()
    stale = []
    for doc in DOCS:
        text = doc.read_text()
        new = render(text)
        if new != text:
            stale.append(doc.name)
            if not a.check:
                doc.write_text(new)
    if a.check and stale:
        print(f"stale tables in {', '.join(stale)}: run python benchmarks/tables.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
