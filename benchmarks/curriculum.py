"""The Phase 7 curriculum experiment, done honestly (issue #4): three arms, one byte budget.

A: agiformer-31m with the 3-stage curriculum and plasticity schedule (configs/curriculum_tr.toml)
B: agiformer-31m flat: the final (running-text) corpus only, plasticity 0.99 throughout
C: transformer-30m flat on the same corpus
D: agiformer-31m with the curriculum's data stages but plasticity 0.99 throughout (separates
   the effect of the stage data from that of the plasticity schedule; not in the default arms)

Every arm gets the same optimizer settings, steps x batch x 1024 bytes and validation; each is
scored on the whole held-out test split of the running-text corpus from its best-validation
checkpoint (validation: the whole val split, AGIFORMER always at the final alpha 0.99). Writes
curriculum.json (commands, curves, test bpb, wall time) and curriculum.png (`bytelm plot`).

    python benchmarks/curriculum.py --out benchmarks/results/curriculum --steps 2500 --batch 32 -- \\
        --optim.lr=1e-3 --train.compile=true

Each step runs the public CLI, so the recorded commands are the ones a user would type. A run
stops at its first NaN/Inf loss or gradient (the trainer refuses to go on), so an arm that
finishes has zero non-finite steps; the JSON records whether each arm finished.
"""
import argparse
import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

ARMS = {
    "A_curriculum": "agiformer-31m, 3-stage curriculum, plasticity 0.10/0.50/0.99",
    "B_flat": "agiformer-31m, running text only, plasticity 0.99",
    "C_transformer": "transformer-30m, running text only",
    "D_curriculum_fixed_alpha": "agiformer-31m, 3-stage curriculum data, plasticity 0.99 throughout",
}
DEFAULT_ARMS = ["A_curriculum", "B_flat", "C_transformer"]


def sh(cmd: list[str], log: list[str]) -> float:
    line = " ".join(shlex.quote(c) for c in cmd)
    print(f"$ {line}", flush=True)
    log.append(line)
    t0 = time.time()
    subprocess.run(cmd, check=True)
    return time.time() - t0


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for curriculum.json / curriculum.png")
    ap.add_argument("--work", default="runs/curriculum", help="scratch folder (runs, data)")
    ap.add_argument("--curriculum", default="configs/curriculum_tr.toml")
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--agiformer", default="agiformer-31m")
    ap.add_argument("--transformer", default="transformer-30m")
    ap.add_argument("--arms", nargs="+", default=DEFAULT_ARMS, choices=list(ARMS))
    ap.add_argument("--plot-from", default=None,
                    help="only draw curriculum.png (val bpb vs bytes) from this result JSON")
    ap.add_argument("train_args", nargs="*", help="extra --key=value options for every arm")
    args = ap.parse_args()
    if args.plot_from:
        plot_from_json(Path(args.plot_from), Path(args.out) / "curriculum.png")
        return
    py = [sys.executable, "-m", "bytelm"]
    work, out = Path(args.work), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = [f"--train.steps={args.steps}", f"--train.batch_size={args.batch}",
              f"--train.eval_every={args.eval_every}", "--train.eval_bytes=0",
              "--train.progress=false", *args.train_args]
    runs = {arm: work / arm for arm in ARMS}
    final_data = runs["A_curriculum"] / "data" / "adulthood"
    cmds: list[str] = []
    res = {"budget": {"steps": args.steps, "batch": args.batch},
           "arms": {}, "commands": cmds}
    t_all = time.time()
    for arm in args.arms:
        run = runs[arm]
        if arm == "A_curriculum":
            cmd = ["train", "--curriculum", args.curriculum, "--preset", args.agiformer]
        elif arm == "D_curriculum_fixed_alpha":
            fixed = work / "curriculum_fixed_alpha.toml"
            fixed.parent.mkdir(parents=True, exist_ok=True)
            fixed.write_text(re.sub(r"(?m)^(\s*plasticity\s*=\s*)[0-9.eE+-]+", r"\g<1>0.99",
                                    Path(args.curriculum).read_text()))
            cmd = ["train", "--curriculum", str(fixed), "--preset", args.agiformer]
        elif arm == "B_flat":
            cmd = ["train", "--preset", args.agiformer, "--data", str(final_data),
                   "--model.plasticity=0.99"]
        else:
            cmd = ["train", "--preset", args.transformer, "--data", str(final_data)]
        if arm != "A_curriculum" and not (final_data / "meta.json").is_file():
            # the final corpus is prepared by arm A's curriculum run; prepare it the same way
            sh(py + ["prepare", *_final_sources(args.curriculum), "--out", str(final_data)], cmds)
        rec = {"what": ARMS[arm]}
        try:
            rec["train_wall_s"] = sh(py + cmd + ["--out", str(run), *common], cmds)
            res["arms"][arm] = rec  # written now too: a run stopped during the eval keeps it
            (out / "curriculum.json").write_text(json.dumps(res, indent=2))
            test_json = work / f"test_{arm}.json"
            sh(py + ["eval", str(run / "ckpt" / "best"), "--split", "test", "--data",
                     str(final_data), "--batch-size", "16", "--json", str(test_json)], cmds)
            rec["test"] = json.loads(test_json.read_text())
        except subprocess.CalledProcessError as e:
            rec["error"] = f"exit {e.returncode}: {' '.join(map(str, e.cmd))[:300]}"
        if (run / "metrics.jsonl").is_file():
            m = read_jsonl(run / "metrics.jsonl")
            rec["val_curve"] = [{k: r[k] for k in r if k == "step" or k == "bytes_seen"
                                 or k.startswith("val_bpb") or k in ("bpb", "plasticity")}
                                for r in m if r.get("kind") == "val"]
            rec["stages"] = [r for r in m if r.get("kind") == "stage"]
            train = [r for r in m if r.get("kind") == "train"]
            rec["train_curve"] = [{"step": r["step"], "loss": r.get("loss"),
                                   "plasticity": r.get("plasticity")} for r in train[::10]]
            rec["last_step"] = train[-1]["step"] if train else 0
            rec["bytes_seen"] = train[-1].get("bytes_seen") if train else 0
            rec["finished"] = rec["last_step"] == args.steps
            rec["nonfinite_steps"] = 0 if rec["finished"] else None
        if (run / "summary.json").is_file():
            rec["summary"] = json.loads((run / "summary.json").read_text())
        res["arms"][arm] = rec
        (out / "curriculum.json").write_text(json.dumps(res, indent=2))
    done = [str(runs[a]) for a in args.arms if (runs[a] / "metrics.jsonl").is_file()]
    if done:
        try:
            sh(py + ["plot", *done, "--out", str(out / "curriculum.png")], cmds)
        except subprocess.CalledProcessError as e:
            res["plot_error"] = str(e)
    res["total_wall_s"] = time.time() - t_all
    (out / "curriculum.json").write_text(json.dumps(res, indent=2))
    for arm, rec in res["arms"].items():
        t = rec.get("test", {})
        print(f"{arm:<15} test bpb {t.get('bpb', float('nan')):.4f}  "
              f"best val {rec.get('summary', {}).get('best_val_bpb', float('nan')):.4f}  "
              f"train {rec.get('train_wall_s', float('nan')):.0f} s  {rec.get('error', '')}")


def plot_from_json(result: Path, png: Path) -> None:
    """Validation bpb (running-text val split) vs bytes seen per arm, stage starts dashed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    res = json.loads(result.read_text())
    fig, ax = plt.subplots(figsize=(8, 5))
    for arm, rec in res["arms"].items():
        curve = rec.get("val_curve") or []
        if curve:
            ax.plot([r["bytes_seen"] / 1e6 for r in curve], [r["bpb"] for r in curve], marker="o",
                    label=f"{arm}: {rec['what']}")
        elif "summary" in rec:
            ax.axhline(rec["summary"]["best_val_bpb"], ls=":", color="gray",
                       label=f"{arm}: best val {rec['summary']['best_val_bpb']:.3f} (no curve)")
        for st in rec.get("stages", [])[1:]:
            ax.axvline(st["bytes_seen"] / 1e6, ls="--", color="gray", lw=0.8)
            ax.text(st["bytes_seen"] / 1e6, ax.get_ylim()[1], f" {st['name']}", va="top",
                    fontsize=8, color="gray")
    ax.set_xlabel("bytes seen (M)")
    ax.set_ylabel("val bits per byte (running-text val split)")
    ax.set_ylim(top=3.5)
    ax.set_title("Turkish curriculum experiment, equal byte budget")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    print(f"wrote {png}")


def _final_sources(curriculum: str) -> list[str]:
    import tomllib
    cfg = tomllib.loads(Path(curriculum).read_text())
    data = cfg["curriculum"]["stages"][-1]["data"]
    return [data] if isinstance(data, str) else list(data)


if __name__ == "__main__":
    main()
