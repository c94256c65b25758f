"""Patch statistics of every patcher on real English and Turkish text (CPU, ~1 minute).

    PYTHONPATH=src python benchmarks/patch_stats.py --data ../shared/data --out benchmarks/results/patching/patch_stats.json

The entropy-model patcher needs a small byte LM: a transformer-tiny is trained here for a few
hundred steps on the two samples' first halves, and its threshold is fitted (bytelm.patching.
fit_threshold) for a mean patch of 4.5 bytes on the English half it was not trained on.
Statistics are measured on the second halves.
"""
import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch


def stats(patcher, data: bytes) -> dict:
    from bytelm.patching import patch_lengths
    x = torch.frombuffer(bytearray(data), dtype=torch.uint8)[None]
    lengths, n = patch_lengths(patcher(x))
    ln = lengths[0, : int(n[0])].numpy()
    hist = np.bincount(ln, minlength=int(ln.max()) + 1)
    return {"bytes": len(data), "patches": int(n[0]), "mean": float(ln.mean()),
            "median": float(np.median(ln)), "p90": float(np.percentile(ln, 90)), "max": int(ln.max()),
            "histogram": {int(k): int(v) for k, v in enumerate(hist) if v}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--bytes", type=int, default=100_000, help="bytes per language sample")
    ap.add_argument("--lm-steps", type=int, default=300)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.manual_seed(0)
    root = Path(args.data)
    samples = {"en": (root / "en/text/enwiki_test.txt").read_bytes()[: 2 * args.bytes],
               "tr": (root / "tr/text/news.txt").read_bytes()[: 2 * args.bytes]}
    from bytelm.options import build_run_config
    from bytelm.data import prepare
    from bytelm.patching import fit_threshold, get_patcher
    from bytelm.train.checkpoint import load_model
    from bytelm.train.loop import train
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "lm.txt"
        src.write_bytes(b"".join(s[: args.bytes] for s in samples.values()))
        prepare([str(src)], Path(tmp) / "lm_data")
        cfg = build_run_config("transformer-tiny", {
            "data.path": str(Path(tmp) / "lm_data"), "train.steps": args.lm_steps,
            "train.batch_size": 16, "optim.lr": 3e-3, "optim.warmup_steps": 30,
            "train.eval_every": 0, "train.eval_bytes": 20000, "train.progress": False,
            "train.device": "cpu", "train.out_dir": str(Path(tmp) / "lm_run")})
        lm_summary = train(cfg)
        lm = load_model(Path(tmp) / "lm_run" / "ckpt" / "last")
        ent = get_patcher("entropy-model", model=lm, min_size=1, max_size=16)
        x_fit = torch.frombuffer(bytearray(samples["en"][args.bytes:]), dtype=torch.uint8)[None]
        theta = fit_threshold(ent, x_fit, 4.5)
        patchers = {"fixed-4": get_patcher("fixed", patch_size=4),
                    "space": get_patcher("space"),
                    "babylon (w16, rise 0.1 bits, 2..16)": get_patcher("babylon"),
                    f"entropy-model (tiny LM, theta {theta:.2f} bits, 1..16)":
                        get_patcher("entropy-model", model=lm, threshold=theta, min_size=1, max_size=16)}
        res = {"lm": {"preset": "transformer-tiny", "steps": args.lm_steps,
                      "val_bpb": lm_summary["val_bpb"], "threshold_bits": theta},
               "samples": {"en": "en/text/enwiki_test.txt", "tr": "tr/text/news.txt"},
               "bytes_per_sample": args.bytes, "stats": {}}
        for lang, data in samples.items():
            for name, p in patchers.items():
                res["stats"].setdefault(name, {})[lang] = stats(p, data[args.bytes:])
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(f"{'patcher':<48}{'lang':>5}{'patches':>9}{'mean':>7}{'median':>7}{'p90':>6}{'max':>5}")
    for name, per in res["stats"].items():
        for lang, s in per.items():
            print(f"{name:<48}{lang:>5}{s['patches']:>9}{s['mean']:>7.2f}{s['median']:>7.1f}"
                  f"{s['p90']:>6.1f}{s['max']:>5}")


if __name__ == "__main__":
    main()
