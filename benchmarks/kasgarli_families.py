"""The Kaşgarlı test across model families: several `bytelm kasgarli` results on the same corpus,
languages, splits and byte budget (one per preset, e.g. transformer-30m with --bpe, agiformer-31m
and bsfin-35m without), set side by side per language, each byte model's test bpb next to the
Transformer's BPE baseline (trained at that Transformer's FLOPs), with each family's gap to it:

    python benchmarks/kasgarli_families.py runs/kas_t/kasgarli.json runs/kas_a/kasgarli.json \
        runs/kas_b/kasgarli.json --out benchmarks/results/kasgarli/kasgarli_bible_families.json

Writes the JSON, a PNG beside it (test bpb and gap to BPE per language and family) and prints a
markdown table. The results must agree on mode, languages, held-out lines and bytes per language.
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from bytelm.bench.report import write_json  # noqa: E402
from bytelm.errors import UserError  # noqa: E402
from bytelm.experiments.kasgarli import best_bpe, read_result  # noqa: E402
from bytelm.registry import config_from_dict, create_model  # noqa: E402


def _selection(ref: dict) -> str:
    """How the reference's BPE weights were chosen (older results: the full budget's last step)."""
    rules = {b.get("selection", {}).get("rule", "last step of the full budget")
             for r in ref["languages"] for b in r.get("bpe", [])}
    return "weights: " + "; ".join(sorted(rules))


def load(paths: list[str]) -> list[dict]:
    """The results, checked to be comparable (SystemExit with a one-line reason if not)."""
    try:
        res = [read_result(p) for p in paths]
    except UserError as e:
        raise SystemExit(str(e)) from None
    for r in res:  # a result may name its column ("label": a preset with overrides)
        r["preset"] = r.get("label", r["preset"])
    first = res[0]
    for p, r in zip(paths[1:], res[1:]):
        for key in ("mode", "splits", "bytes_per_language"):
            if r[key] != first[key]:
                raise SystemExit(f"{p} differs from {paths[0]} in {key}: {r[key]} vs {first[key]}")
        if [x["lang"] for x in r["languages"]] != [x["lang"] for x in first["languages"]]:
            raise SystemExit(f"{p} has other languages than {paths[0]}")
        for x, y in zip(r["languages"], first["languages"]):
            if x["bytes"] != y["bytes"]:
                raise SystemExit(f"{p}: {x['lang']} has other split sizes than in {paths[0]}")
    if len({r["preset"] for r in res}) != len(res):
        raise SystemExit("a preset is given twice")
    return res


def _size(preset: str, seq_len: int, model_cfg: dict | None = None) -> dict:
    """Parameters and FLOPs per byte of the model a result trained: its recorded config
    (``model``: the preset with its --model.* overrides) when it has one, else the preset."""
    if model_cfg:
        model = create_model(config_from_dict(model_cfg))
    else:
        model = create_model(preset)
    return {"n_params": model.n_params(), "flops_per_byte": model.flops_per_byte(seq_len)}


def combine(res: list[dict], paths: list[str]) -> dict:
    """{"presets", "runs" (each with its parameters and training FLOPs per byte), "bpe_from",
    "languages": [{"lang", "test_bytes", "bytes": {preset: {...}}, "bpe": {vocab: bpb} | None,
    "best_bpe_vocab", "best_bpe_bpb", "gap_to_bpe": {preset: bpb - best BPE}}]}; the best BPE
    vocabulary is the one with the lowest validation bpb (``kasgarli.best_bpe``)."""
    with_bpe = [r for r in res if all(x.get("bpe") for x in r["languages"])]
    ref = with_bpe[0] if with_bpe else None
    langs = []
    for i, first in enumerate(res[0]["languages"]):
        row = {"lang": first["lang"], "test_bytes": first["bytes"]["test"], "bytes": {}}
        for r in res:
            x = r["languages"][i]
            row["bytes"][r["preset"]] = {k: x["test"][k] for k in
                                         ("bpb", "bits_per_char", "total_bits")}
            row["bytes"][r["preset"]].update(final_val_bpb=x["final_val_bpb"],
                                             steps_to_threshold=x["steps_to_threshold"],
                                             bytes_seen=x["bytes_seen"])
        if ref:
            ref_lang = ref["languages"][i]
            row["bpe"] = {str(b["vocab_requested"]): b["test"]["bpb"] for b in ref_lang["bpe"]}
            best = best_bpe(ref_lang)
            row["best_bpe_vocab"] = best["vocab_requested"]
            row["best_bpe_bpb"] = best["test"]["bpb"]
            row["gap_to_bpe"] = {p: v["bpb"] - row["best_bpe_bpb"] for p, v in row["bytes"].items()}
        langs.append(row)
    return {"benchmark": "kasgarli_families", "inputs": paths, "mode": res[0]["mode"],
            "content_controlled": res[0]["content_controlled"], "corpus": res[0]["corpus"],
            "bytes_per_language": res[0]["bytes_per_language"],
            "runs": [{**{k: r[k] for k in ("preset", "steps", "batch_size", "seq_len")},
                      **_size(r["preset"], r["seq_len"], r.get("model"))} for r in res],
            "presets": [r["preset"] for r in res], "bpe_from": ref and ref["preset"],
            "bpe_note": ref and "BPE: the same Transformer as bpe_from over BPE tokens, at most its "
                                "training FLOPs; vocabulary: lowest validation bpb; " +
                                _selection(ref), "languages": langs}


def table(out: dict) -> str:
    ps = out["presets"]
    head = "| lang | " + " | ".join(f"{p}: bpb" for p in ps)
    sep = "|---|" + "---:|" * len(ps)
    if out["bpe_from"]:
        head += " | best BPE bpb (vocab) | " + " | ".join(f"{p} - BPE" for p in ps)
        sep += "---:|" + "---:|" * len(ps)
    lines = [head + " |", sep]
    for r in out["languages"]:
        line = f"| {r['lang']} | " + " | ".join(f"{r['bytes'][p]['bpb']:.3f}" for p in ps)
        if out["bpe_from"]:
            line += f" | {r['best_bpe_bpb']:.3f} ({r['best_bpe_vocab']}) | " + " | ".join(
                f"{r['gap_to_bpe'][p]:+.3f}" for p in ps)
        lines.append(line + " |")
    return "\n".join(lines)


def plot(out: dict, path: Path) -> None:
    import numpy as np

    from bytelm.eval.plots import _figure, _save
    langs = [r["lang"] for r in out["languages"]]
    ps = out["presets"]
    x, w = np.arange(len(langs)), 0.8 / len(ps)
    n = 1 + bool(out["bpe_from"])
    fig, axes = _figure(1, n, (max(6, 0.6 * len(langs) * len(ps)) * n / 1.5, 4))
    for j, p in enumerate(ps):
        axes[0, 0].bar(x + (j - (len(ps) - 1) / 2) * w, [r["bytes"][p]["bpb"]
                                                         for r in out["languages"]], w, label=p)
        if out["bpe_from"]:
            axes[0, 1].bar(x + (j - (len(ps) - 1) / 2) * w, [r["gap_to_bpe"][p]
                                                             for r in out["languages"]], w, label=p)
    if out["bpe_from"]:
        axes[0, 0].scatter(x, [r["best_bpe_bpb"] for r in out["languages"]], color="k",
                           marker="_", s=300, zorder=3, label=f"best BPE ({out['bpe_from']})")
        axes[0, 1].axhline(0, color="k", lw=1)
        axes[0, 1].set_title("test bpb minus best BPE (> 0: BPE better)", fontsize=10)
    axes[0, 0].set_title("test bits per byte (same held-out content)", fontsize=10)
    for ax in axes[0]:
        ax.set_xticks(x, langs)
        ax.grid(alpha=0.3, axis="y")
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi + 0.3 * (hi - lo))  # room above the bars for the legend
        ax.legend(fontsize=8, loc="upper center", ncol=2)
    fig.suptitle(f"Kasgarli test across families: {out['bytes_per_language']:,} bytes per "
                 "language", fontsize=10)
    _save(fig, path, dpi=120)


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", help="kasgarli.json files, one per preset")
    ap.add_argument("--out", required=True, help="JSON to write (the PNG goes beside it)")
    args = ap.parse_args(argv)
    out = combine(load(args.results), args.results)
    out["command"] = "python benchmarks/kasgarli_families.py " + " ".join(argv)
    write_json(out, args.out)
    plot(out, Path(args.out).with_suffix(".png"))
    print(table(out))
    return out


if __name__ == "__main__":
    main()
