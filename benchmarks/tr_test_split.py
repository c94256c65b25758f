"""What the Turkish benchmark's test split holds: bits per byte of each source file's test piece,
and of the book index ("DİZİN") that ends ataturk_speeches.txt and so lands in the test split.

`bytelm prepare ../shared/data/tr/text` cuts every file 90/5/5 by bytes, so the last 5% of
ataturk_speeches.txt (57% of the corpus) is test, and most of that last 5% is the book's index of
names and page numbers, text that no train or val byte resembles. This script trains a small model
on the train split (or loads --ckpt), then scores val, test, every file's test piece, and the
ataturk piece before and after the index marker:

    python benchmarks/tr_test_split.py --steps 1500 --out benchmarks/results/kasgarli/tr_test_split_cpu.json \
        -- --train.batch_size=16
"""
import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from ablate_lm import split_argv  # noqa: E402
from bytelm.bench.report import environment, write_json  # noqa: E402
from bytelm.options import build_run_config# noqa: E402
from bytelm.data import load_meta, open_split, prepare  # noqa: E402
from bytelm.eval.bpb import evaluate_bpb  # noqa: E402
from bytelm.train.checkpoint import load_model  # noqa: E402
from bytelm.train.loop import train  # noqa: E402

INDEX_MARKER = "DİZİN Devlet-Ulus Dizini".encode()  # the index heading of ataturk_speeches.txt


def segments(data_dir: Path) -> list[dict]:
    """[{"name", "start", "stop"}] of the test split: each source's test piece, and the piece of
    the file holding INDEX_MARKER cut in two at it (offsets into test.bin)."""
    meta = load_meta(data_dir)
    out, pos = [], 0
    for src in meta["sources"]:
        a, b = src["splits"]["test"]
        name = Path(src["path"]).name
        piece = Path(src["path"]).read_bytes()[a:b]
        cut = piece.find(INDEX_MARKER)
        if cut > 0:
            out += [{"name": f"{name} before the index", "start": pos, "stop": pos + cut},
                    {"name": f"{name} index (from '{INDEX_MARKER.decode()}')",
                     "start": pos + cut, "stop": pos + len(piece), "index": True}]
        else:
            out.append({"name": name, "start": pos, "stop": pos + len(piece)})
        pos += len(piece)
    if pos != meta["splits"]["test"]["bytes"]:
        raise SystemExit(f"test pieces sum to {pos} bytes, test.bin has "
                         f"{meta['splits']['test']['bytes']}: not a fraction-split corpus")
    return out


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    own, common = split_argv(argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default=str(ROOT.parent / "shared" / "data" / "tr" / "text"))
    ap.add_argument("--preset", default="transformer-tiny")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--ckpt", default=None, help="score this checkpoint instead of training one")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(own)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        prepare([args.source], data)
        summary = None
        if args.ckpt:
            model = load_model(args.ckpt)
        else:
            cfg = build_run_config(args.preset, {
                "data.path": str(data), "train.out_dir": str(Path(tmp) / "run"),
                "train.steps": args.steps, "train.eval_every": args.steps, "train.eval_bytes": 0,
                "train.progress": False, **common})
            summary = train(cfg)
            model = load_model(Path(tmp) / "run" / "ckpt" / "last")
        model.eval()
        seq_len = model.context
        test = np.asarray(open_split(data, "test").data)

        def score(arr) -> dict:
            r = evaluate_bpb(model, arr, seq_len=seq_len, batch_size=8, precision="fp32")
            return {"bpb": r["bpb"], "bits_per_char": r["bits_per_char"], "n_bytes": r["n_bytes"],
                    "bits": r["nats"] / np.log(2)}

        res = {"val": score(np.asarray(open_split(data, "val").data)), "test": score(test)}
        segs = segments(data)
        for s in segs:
            s.update(score(test[s["start"]:s["stop"]]))
        idx = [s for s in segs if s.get("index")]
        rest = np.concatenate([test[s["start"]:s["stop"]] for s in segs if not s.get("index")])
        res["test_without_index"] = score(rest)
        index_bytes = sum(s["stop"] - s["start"] for s in idx)
        out = {"benchmark": "tr_test_split", "source": args.source, "preset": args.preset,
               "steps": args.steps, "ckpt": args.ckpt, "options": common, "seq_len": seq_len,
               "train_summary": summary and {k: summary.get(k) for k in
                                             ("steps", "bytes_seen", "val_bpb", "n_params")},
               "test_bytes": int(len(test)), "index_bytes": index_bytes,
               "index_fraction_of_test": index_bytes / len(test), **res, "segments": segs,
               "command": "python benchmarks/tr_test_split.py " + " ".join(argv),
               "environment": environment(torch.device("cpu"))}
    write_json(out, args.out)
    for s in segs:
        print(f"{s['name']:60s} {s['n_bytes']:>8,} B  {s['bpb']:.3f} bpb")
    print(f"val {res['val']['bpb']:.3f}  test {res['test']['bpb']:.3f}  test without the index "
          f"{res['test_without_index']['bpb']:.3f}  (index: {out['index_fraction_of_test']:.1%} "
          "of the test bytes)")
    return out


if __name__ == "__main__":
    main()
