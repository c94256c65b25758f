"""Live learning vs plain fine-tuning: learning the new domain and forgetting the old one.

1. Train transformer-tiny on the original domain (``--original``, default
   shared/data/small/tr.txt, Turkish running text; 90/5/5 split) with the trainer.
2. Stream the new domain (the train part of ``--new``, default shared/data/small/en.txt;
   90/5/5, cut to a multiple of the 128-byte chunk stride) into it ``--passes`` times: a stream
   whose content recurs at aligned offsets (the same files re-sent), the case importance
   scaling is meant for (``--unaligned`` repeats at shifted offsets, where exact context
   hashes never match). Four variants from the same start, optimizer (AdamW), LR, batch and
   seed:
     plain        grad scale 1, no replay                          (plain fine-tuning)
     importance   grad scale from the context memory, no replay    (bytelm live default)
     replay       grad scale 1, replay 0.25 seeded with original-domain train chunks
     imp+replay   both
3. Every ``--eval-every`` chunks score the held-out original domain (val + test of
   ``--original``) and the held-out new domain (val + test of ``--new``): forgetting =
   original bpb after - before, learning = new bpb before - after.

Domain labels in the printout, verdict and plot come from ``--original-name`` / ``--new-name``
(default: the file stems); JSON keys stay generic (original_*, new_*).

    python benchmarks/live_forgetting.py --threads 1      # Turkish -> English, CPU, ~1 min
    python benchmarks/live_forgetting.py --threads 1 \
        --original /work/shared/data/small/en.txt --new /work/shared/data/small/tr.txt
                                                          # the earlier English -> Turkish run

Writes benchmarks/results/live/live_forgetting.json and .png, and prints a table and a verdict.
"""
import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from bytelm.options import build_run_config# noqa: E402
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


def prepared_dir(work: Path, src: Path) -> Path:
    """A cache folder for the prepared corpus of ``src`` (keyed by stem and path/size/mtime)."""
    st = src.stat()
    key = hashlib.sha1(f"{src.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:10]
    return work / "data" / f"{src.stem}_{key}"


def run_variant(name: str, opts: dict, args, run_dir: Path, orig: Path, domains: dict,
                chunks: list[bytes]) -> dict:
    torch.manual_seed(args.seed)
    learner = LiveLearner.from_checkpoint(run_dir, {
        "context": 0, "batch_size": args.batch_size, "lr": args.lr, "ckpt_every": 0,
        "log_every": 10**9, "seed": args.seed, "half_life": args.half_life,
        "replay_capacity": 1024, "sketch": args.sketch, **opts})
    if opts["replay"] > 0:
        learner.prefill_replay(orig)  # the original domain's train split
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
           "original_before": curve[0]["original"], "original_after": curve[-1]["original"],
           "new_before": curve[0]["new"], "new_after": curve[-1]["new"],
           "at_best_new": min(curve, key=lambda c: c["new"])}
    res["forgetting"] = res["original_after"] - res["original_before"]
    res["learning"] = res["new_before"] - res["new_after"]
    print(f"  {name:<11} {args.original_name} {res['original_before']:.3f} -> "
          f"{res['original_after']:.3f} ({res['forgetting']:+.3f})"
          f"  {args.new_name} {res['new_before']:.3f} -> {res['new_after']:.3f} "
          f"({-res['learning']:+.3f})"
          f"  mean grad scale {res['mean_grad_scale']:.3f}, replayed {res['replayed']}", flush=True)
    return res


def plot(results: list[dict], path: Path, orig_name: str, new_name: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for r in results:
        xs = [c["chunks"] for c in r["curve"]]
        axes[0].plot(xs, [c["new"] for c in r["curve"]], label=r["name"])
        axes[1].plot(xs, [c["original"] for c in r["curve"]], label=r["name"])
        axes[2].plot([c["new"] for c in r["curve"]], [c["original"] for c in r["curve"]],
                     marker=".", label=r["name"])
    axes[0].set_title(f"new domain: {new_name} held-out bpb (learning)")
    axes[1].set_title(f"original domain: {orig_name} held-out bpb (forgetting)")
    axes[2].set_title("trade-off (each point an evaluation)")
    for a in axes[:2]:
        a.set_xlabel("stream chunks learned")
        a.set_ylabel("bpb")
    axes[2].set_xlabel(f"{new_name} bpb")
    axes[2].set_ylabel(f"{orig_name} bpb")
    for a in axes:
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def verdict(by: dict, orig_name: str, new_name: str) -> list[str]:
    p = by["plain"]
    out = []
    for name, r in by.items():
        if name == "plain":
            continue
        out.append(f"{name} vs plain fine-tuning: forgetting {r['forgetting'] - p['forgetting']:+.3f} "
                   f"bpb, {new_name} after {r['new_after'] - p['new_after']:+.3f} bpb")

    def at_new(r, target):
        # original bpb at the first evaluation where the new domain reached the target (None if never)
        for c in r["curve"]:
            if c["new"] <= target:
                return c["original"]
        return None
    target = max(r["new_after"] for r in by.values())
    cmp = {n: at_new(r, target) for n, r in by.items()}
    out.append(f"{orig_name} bpb when {new_name} first reached {target:.3f} bpb (equal learning): "
               + ", ".join(f"{n} {v:.3f}" if v is not None else f"{n} n/a" for n, v in cmp.items()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="/tmp/bytelm_bench_live")
    ap.add_argument("--original", default=str(SMALL / "tr.txt"),
                    help="original-domain text: the base model is trained on it (forgetting)")
    ap.add_argument("--new", default=str(SMALL / "en.txt"),
                    help="new-domain text: its train split is streamed into the model (learning)")
    ap.add_argument("--original-name", default=None,
                    help="label for the original domain (default: the --original file stem)")
    ap.add_argument("--new-name", default=None,
                    help="label for the new domain (default: the --new file stem)")
    ap.add_argument("--base-steps", type=int, default=800,
                    help="pre-training steps on the original domain")
    ap.add_argument("--passes", type=int, default=3, help="times the new-domain stream repeats")
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
    ap.add_argument("--out", default=str(HERE / "results" / "live" / "live_forgetting.json"))
    args = ap.parse_args()
    orig_src, new_src = Path(args.original), Path(args.new)
    for flag, f in (("--original", orig_src), ("--new", new_src)):
        if not f.is_file():
            ap.error(f"{flag} {f}: not a file")
    args.original_name = args.original_name or orig_src.stem
    args.new_name = args.new_name or new_src.stem
    on, nn = args.original_name, args.new_name
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    work = Path(args.work)
    orig, new = prepared_dir(work, orig_src), prepared_dir(work, new_src)
    for src, dst in ((orig_src, orig), (new_src, new)):
        if not (dst / "meta.json").is_file():
            prepare([str(src)], dst)
    run_dir = work / f"base_{orig.name}_{args.base_steps}"  # one base model per original domain
    if not (run_dir / "ckpt" / "last" / "config.json").is_file():
        import shutil
        shutil.rmtree(run_dir, ignore_errors=True)
        summary = train(build_run_config("transformer-tiny", {
            "train.device": "cpu", "train.progress": False, "train.steps": args.base_steps,
            "train.batch_size": 16, "train.eval_every": 0, "train.eval_bytes": 0,
            "train.seed": args.seed, "optim.lr": 3e-3, "optim.warmup_steps": 50,
            "data.path": str(orig), "train.out_dir": str(run_dir)}))
        print(f"base model: {args.base_steps} steps on {on}, val {summary['val_bpb']:.3f} bpb",
              flush=True)
    domains = {"original": held_out(orig), "new": held_out(new)}
    stream = np.asarray(open_split(new, "train").data).tobytes()
    if not args.unaligned:
        # repeats at chunk-aligned offsets (the same files re-sent): exact context hashes match
        stream = stream[:len(stream) - len(stream) % 128]
    import io
    chunks = list(iter_chunks(io.BytesIO(stream * args.passes), 128))
    print(f"original {on} ({orig_src}), new {nn} ({new_src})")
    print(f"stream: {len(stream):,} {nn} bytes x {args.passes} passes = {len(chunks)} chunks "
          f"({'un' if args.unaligned else ''}aligned repeats); held-out {on} "
          f"{len(domains['original']):,} B, {nn} {len(domains['new']):,} B", flush=True)
    results = [run_variant(n, o, args, run_dir, orig, domains, chunks) for n, o in VARIANTS.items()]
    by = {r["name"]: r for r in results}
    lines = verdict(by, on, nn)
    print("\nverdict:")
    for ln in lines:
        print("  " + ln)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "command": ("python benchmarks/live_forgetting.py " + " ".join(sys.argv[1:])).strip(),
        "original_name": on, "new_name": nn, "original_file": str(orig_src),
        "new_file": str(new_src), "stream_bytes": len(stream), "stream_chunks": len(chunks),
        "args": vars(args), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "wall_s": time.perf_counter() - t0, "verdict": lines, "variants": results}, indent=1))
    plot(results, out.with_suffix(".png"), on, nn)
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
