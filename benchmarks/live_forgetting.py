"""Live learning vs plain fine-tuning: learning the new domain and forgetting the old one.

1. Train transformer-tiny on English (shared/data/small/en.txt, 90/5/5 split) with the trainer.
2. Stream Turkish (the train part of small/tr.txt, 90/5/5, cut to a multiple of the 128-byte
   chunk stride) into it ``--passes`` times: a stream whose content recurs at aligned offsets
   (the same files re-sent), the case importance scaling is meant for (``--unaligned`` repeats
   at shifted offsets, where exact context hashes never match). Four variants from the same
   start, optimizer (AdamW), LR, batch and seed:
     plain        grad scale 1, no replay                          (plain fine-tuning)
     importance   grad scale from the context memory, no replay    (bytelm live default)
     replay       grad scale 1, replay 0.25 seeded with English train chunks
     imp+replay   both
3. Every ``--eval-every`` chunks score held-out English (val + test of en.txt) and held-out
   Turkish (val + test of tr.txt): forgetting = English bpb after - before, learning = Turkish
   bpb before - after.

    python benchmarks/live_forgetting.py --threads 1      # CPU, ~1-2 min

Writes benchmarks/results/live_forgetting.json and .png, and prints a table and a verdict.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from bytelm.config import build_run_config  # noqa: E402
from bytelm.data import open_split, prepare  # noqa: E402
from bytelm.live import LiveLearner, evaluate_domains, iter_chunks  # noqa: E402
from bytelm.train.loop import train  # noqa: E402

SMALL = Path("/work/shared/data/small")
VARIANTS = {
    "plain": {"importance": False, "replay": 0.0},
    "importance": {"importance": True, "replay": 0.0},
    "replay": {"importance": False, "replay": 0.25},
    "imp+replay": {"importance": True, "replay": 0.25},
}


def held_out(corpus: Path) -> np.ndarray:
    return np.concatenate([np.asarray(open_split(corpus, s, min_len=2).data) for s in ("val", "test")])


def run_variant(name: str, opts: dict, args, run_dir: Path, en: Path, domains: dict,
                chunks: list[bytes]) -> dict:
    torch.manual_seed(args.seed)
    learner = LiveLearner.from_checkpoint(run_dir, {
        "context": 0, "batch_size": args.batch_size, "lr": args.lr, "ckpt_every": 0,
        "log_every": 10**9, "seed": args.seed, "half_life": args.half_life,
        "replay_capacity": 1024, "sketch": args.sketch, **opts})
    if opts["replay"] > 0:
        learner.prefill_replay(en)  # the original domain's train split
    seq = learner.model.config.context
    curve = [{"chunks": 0, **evaluate_domains(learner.model, domains, seq)}]
    seg = args.eval_every - args.eval_every % args.batch_size
    t0 = time.perf_counter()
    scales = []
    for start in range(0, len(chunks), seg):
        s = learner.learn(chunks[start:start + seg])
        scales.append((s["chunks"], s["mean_grad_scale"]))
        curve.append({"chunks": learner.step, **evaluate_domains(learner.model, domains, seq)})
    t = learner.totals
    res = {"name": name, **opts, "curve": curve, "learn_s": time.perf_counter() - t0,
           "chunks": t["chunks"], "novel": t["novel"], "repeated": t["repeated"],
           "replayed": t["replayed"], "mean_grad_scale": t["scale_sum"] / t["chunks"],
           "en_before": curve[0]["en"], "en_after": curve[-1]["en"],
           "tr_before": curve[0]["tr"], "tr_after": curve[-1]["tr"],
           "en_best_tr": min(curve, key=lambda c: c["tr"])}
    res["forgetting"] = res["en_after"] - res["en_before"]
    res["learning"] = res["tr_before"] - res["tr_after"]
    print(f"  {name:<11} en {res['en_before']:.3f} -> {res['en_after']:.3f} ({res['forgetting']:+.3f})"
          f"  tr {res['tr_before']:.3f} -> {res['tr_after']:.3f} ({-res['learning']:+.3f})"
          f"  mean grad scale {res['mean_grad_scale']:.3f}, replayed {res['replayed']}", flush=True)
    return res


def plot(results: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for r in results:
        xs = [c["chunks"] for c in r["curve"]]
        axes[0].plot(xs, [c["tr"] for c in r["curve"]], label=r["name"])
        axes[1].plot(xs, [c["en"] for c in r["curve"]], label=r["name"])
        axes[2].plot([c["tr"] for c in r["curve"]], [c["en"] for c in r["curve"]], marker=".",
                     label=r["name"])
    axes[0].set_title("new domain: Turkish held-out bpb (learning)")
    axes[1].set_title("original domain: English held-out bpb (forgetting)")
    axes[2].set_title("trade-off (each point an evaluation)")
    for a in axes[:2]:
        a.set_xlabel("stream chunks learned")
        a.set_ylabel("bpb")
    axes[2].set_xlabel("Turkish bpb")
    axes[2].set_ylabel("English bpb")
    for a in axes:
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def verdict(by: dict) -> list[str]:
    p = by["plain"]
    out = []
    for name, r in by.items():
        if name == "plain":
            continue
        out.append(f"{name} vs plain fine-tuning: forgetting {r['forgetting'] - p['forgetting']:+.3f} "
                   f"bpb, Turkish after {r['tr_after'] - p['tr_after']:+.3f} bpb")

    def at_tr(r, target):
        # English bpb at the first evaluation where Turkish reached the target (None if never)
        for c in r["curve"]:
            if c["tr"] <= target:
                return c["en"]
        return None
    target = max(r["tr_after"] for r in by.values())
    cmp = {n: at_tr(r, target) for n, r in by.items()}
    out.append(f"English bpb when Turkish first reached {target:.3f} bpb (equal learning): "
               + ", ".join(f"{n} {v:.3f}" if v is not None else f"{n} n/a" for n, v in cmp.items()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="/tmp/bytelm_bench_live")
    ap.add_argument("--base-steps", type=int, default=800, help="English pre-training steps")
    ap.add_argument("--passes", type=int, default=3, help="times the Turkish stream repeats")
    ap.add_argument("--lr", type=float, default=1e-3, help="live AdamW learning rate")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--half-life", type=float, default=2000.0)
    ap.add_argument("--eval-every", type=int, default=120, help="chunks between evaluations")
    ap.add_argument("--unaligned", action="store_true",
                    help="repeat the stream at offsets that are not multiples of the chunk "
                         "stride (exact hashes then never match)")
    ap.add_argument("--sketch", action="store_true", help="MinHash keys for the importance variants")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "results" / "live_forgetting.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    work = Path(args.work)
    en, tr = work / "en", work / "tr"
    for src, dst in ((SMALL / "en.txt", en), (SMALL / "tr.txt", tr)):
        if not (dst / "meta.json").is_file():
            prepare([str(src)], dst)
    run_dir = work / f"base_{args.base_steps}"
    if not (run_dir / "ckpt" / "last" / "config.json").is_file():
        import shutil
        shutil.rmtree(run_dir, ignore_errors=True)
        summary = train(build_run_config("transformer-tiny", {
            "train.device": "cpu", "train.progress": False, "train.steps": args.base_steps,
            "train.batch_size": 16, "train.eval_every": 0, "train.eval_bytes": 0,
            "train.seed": args.seed, "optim.lr": 3e-3, "optim.warmup_steps": 50,
            "data.path": str(en), "train.out_dir": str(run_dir)}))
        print(f"base model: {args.base_steps} steps on English, val {summary['val_bpb']:.3f} bpb",
              flush=True)
    domains = {"en": held_out(en), "tr": held_out(tr)}
    stream = np.asarray(open_split(tr, "train").data).tobytes()
    if not args.unaligned:
        # repeats at chunk-aligned offsets (the same files re-sent): exact context hashes match
        stream = stream[:len(stream) - len(stream) % 128]
    import io
    chunks = list(iter_chunks(io.BytesIO(stream * args.passes), 128))
    print(f"stream: {len(stream):,} Turkish bytes x {args.passes} passes = {len(chunks)} chunks "
          f"({'un' if args.unaligned else ''}aligned repeats); held-out en "
          f"{len(domains['en']):,} B, tr {len(domains['tr']):,} B", flush=True)
    results = [run_variant(n, o, args, run_dir, en, domains, chunks) for n, o in VARIANTS.items()]
    by = {r["name"]: r for r in results}
    lines = verdict(by)
    print("\nverdict:")
    for ln in lines:
        print("  " + ln)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "command": ("python benchmarks/live_forgetting.py " + " ".join(sys.argv[1:])).strip(),
        "args": vars(args), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "wall_s": time.perf_counter() - t0, "verdict": lines, "variants": results}, indent=1))
    plot(results, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
