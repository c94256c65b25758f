"""Which BPE vocabulary each committed Kaşgarlı result's gaps use, recomputed from the files.

For every `bytelm kasgarli` result in benchmarks/results/kasgarli/ whose languages carry BPE baselines,
the vocabulary is chosen on validation (``kasgarli.best_bpe``: lowest ``selection.val_bpb``) and,
for the record, by minimum test bpb (the earlier rule, which looked at the test split), with the
byte model's gap to each. The "last-step gap" (against each baseline's full-budget last step,
``test_final``) is recomputed the same way: the vocabulary whose full-budget schedule ends at the
lower validation bpb. Results without validation scores (the last-step record) are listed as
not choosable. Writes the JSON and prints each result's ``bpe_table`` (the numbers the docs cite):

    python benchmarks/kasgarli_bpe_choice.py --out benchmarks/results/kasgarli/kasgarli_bpe_choice.json
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from bytelm.bench.report import write_json  # noqa: E402
from bytelm.errors import UserError  # noqa: E402
from bytelm.experiments.kasgarli import best_bpe, bpe_table, read_result  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "kasgarli"


def _last_val(bpe: dict) -> float:
    """Validation bpb at the last check of a baseline's full-budget schedule."""
    full = [c for c in bpe["candidates"] if c["fraction"] == 1.0]
    return full[0]["val_curve"][-1]["bpb"]


def choices(result: dict) -> list[dict]:
    """Per language with BPE: {"lang", "bytes_bpb", "val_chosen": {"vocab", "test_bpb", "gap"},
    "test_chosen": {...}, "changed", "last_step_val_chosen", "last_step_test_chosen"}; raises
    UserError where validation scores are missing."""
    rows = []
    for r in result["languages"]:
        if not r.get("bpe"):
            continue
        by_val = best_bpe(r)
        by_test = min(r["bpe"], key=lambda b: b["test"]["bpb"])
        pick = {k: {"vocab": b["vocab_requested"], "test_bpb": b["test"]["bpb"],
                    "gap": r["test"]["bpb"] - b["test"]["bpb"]}
                for k, b in (("val_chosen", by_val), ("test_chosen", by_test))}
        last = {k: min(r["bpe"], key=key) for k, key in (
            ("last_step_val_chosen", _last_val), ("last_step_test_chosen",
                                                  lambda b: b["test_final"]["bpb"]))}
        pick.update({k: {"vocab": b["vocab_requested"], "test_bpb": b["test_final"]["bpb"],
                         "gap": r["test"]["bpb"] - b["test_final"]["bpb"]}
                     for k, b in last.items()})
        rows.append({"lang": r["lang"], "bytes_bpb": r["test"]["bpb"], **pick,
                     "changed": by_val is not by_test})
    return rows


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(RESULTS), help="folder of kasgarli_*.json")
    ap.add_argument("--out", help="JSON to write")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    out = {"benchmark": "kasgarli_bpe_choice", "rule": "vocabulary with the lowest "
           "selection.val_bpb (bytelm.experiments.kasgarli.best_bpe)", "files": {}, "not_choosable": {}}
    for path in sorted(Path(args.results).glob("kasgarli_*.json")):
        try:
            result = read_result(path)
        except UserError:
            continue  # this script's own output
        if not isinstance(result["languages"], list) or "preset" not in result or \
                not any(r.get("bpe") for r in result["languages"]):
            continue  # a families summary, or no BPE baselines
        try:
            rows = choices(result)
        except UserError as e:
            out["not_choosable"][path.name] = str(e)
            continue
        out["files"][path.name] = rows
        print(f"## {path.name} ({result['preset']}, {result['mode']})\n\n{bpe_table(result)}\n")
        print("last-step gap (vocabulary chosen on the full budget's last validation check): " +
              ", ".join(f"{row['lang']} {row['last_step_val_chosen']['gap']:+.3f}"
                        for row in rows) + "\n")
        for row in rows:
            for k in ("", "last_step_"):
                v, t = row[k + "val_chosen"], row[k + "test_chosen"]
                if v["vocab"] != t["vocab"]:
                    print(f"changed {k or 'best '}gap: {row['lang']}: BPE {v['vocab']} "
                          f"({v['gap']:+.3f}) instead of BPE {t['vocab']} ({t['gap']:+.3f})\n")
    for name, why in out["not_choosable"].items():
        print(f"not choosable: {name}: {why}")
    out["command"] = "python benchmarks/kasgarli_bpe_choice.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    if args.out:
        write_json(out, args.out)
    return out


if __name__ == "__main__":
    main()
