"""The small byte LM of BSFIN's entropy-model patcher: train it, fit its threshold.

    python benchmarks/entropy_lm.py --name tr --source ../shared/data/tr/text --out OUT \
        [--preset transformer-small] [--steps 2000] [--target babylon] [-- TRAIN OPTIONS]

1. prepares the corpus (``bytelm prepare``, into WORK/data_NAME unless already there) and trains
   the LM on its train split (``bytelm train``, into WORK/elm_NAME), unless --lm-ckpt names one;
2. fits the entropy threshold (``bytelm.patching.fit_threshold``) on the first --fit-bytes of
   the val split, under BSFIN's own patch-size limits (``BsfinConfig.min_patch/max_patch``), so
   the mean patch equals --target: a number of bytes, or ``babylon`` (default) for the mean
   patch of BSFIN's default babylon patcher on the same bytes. The two patchers then differ in
   where they cut, not in how often;
3. writes OUT/entropy_lm_NAME.json (the commands, the LM's val bpb, the threshold, the mean
   patch sizes) and WORK/elm_NAME/model_opts.txt, the ``--model.*`` options that make a bsfin
   run use this patcher:  ``bytelm train --preset bsfin-35m ... $(cat WORK/elm_NAME/model_opts.txt)``.
"""
import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch


def sh(cmd: list[str], log: list[str]) -> None:
    line = " ".join(shlex.quote(c) for c in cmd)
    print(f"$ {line}", flush=True)
    log.append(line)
    subprocess.run(cmd, check=True)


def mean_patch(patcher, x: torch.Tensor) -> float:
    """Bytes per patch of x (1, T), the unfinished tail counted as a patch."""
    from bytelm.patching import patch_lengths
    _, n = patch_lengths(patcher(x))
    return x.numel() / int(n[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--source", required=True, help="text folder or file to prepare")
    ap.add_argument("--out", required=True, help="folder for the result JSON")
    ap.add_argument("--work", default="runs/bench")
    ap.add_argument("--preset", default="transformer-small")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--target", default="babylon", help="mean patch in bytes, or 'babylon'")
    ap.add_argument("--fit-bytes", type=int, default=200_000)
    ap.add_argument("--bsfin-preset", default="bsfin-35m", help="whose patch-size limits to use")
    ap.add_argument("--lm-ckpt", default=None,
                    help="an already trained LM checkpoint: skip training, only fit the threshold")
    ap.add_argument("train_args", nargs="*", help="extra --key=value training options")
    args = ap.parse_args()
    from bytelm.patching import fit_threshold, get_patcher
    from bytelm.registry import preset_config
    from bytelm.train.checkpoint import load_model
    t0 = time.time()
    py = [sys.executable, "-m", "bytelm"]
    work = Path(args.work)
    data, run = work / f"data_{args.name}", work / f"elm_{args.name}"
    cmds: list[str] = []
    if not (data / "meta.json").is_file():
        sh(py + ["prepare", args.source, "--out", str(data)], cmds)
    if args.lm_ckpt:
        ckpt, summary = Path(args.lm_ckpt), {}
    elif (run / "summary.json").is_file() and (run / "ckpt" / "best").is_dir():
        # an earlier call on the same (warm) machine trained it: reuse it, never overwrite
        print(f"reusing the LM already trained in {run}", flush=True)
        summary = json.loads((run / "summary.json").read_text())
        ckpt = run / "ckpt" / "best"
    else:
        sh(py + ["train", "--preset", args.preset, "--data", str(data), "--out", str(run),
                 f"--train.steps={args.steps}", "--train.progress=false", *args.train_args], cmds)
        summary = json.loads((run / "summary.json").read_text())
        ckpt = run / "ckpt" / "best"
    run.mkdir(parents=True, exist_ok=True)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    lm = load_model(ckpt).to(dev)
    val = (data / "val.bin").read_bytes()[: args.fit_bytes]
    x = torch.frombuffer(bytearray(val), dtype=torch.uint8)[None].to(dev)
    bcfg = preset_config(args.bsfin_preset)
    sizes = {"min_size": bcfg.min_patch, "max_size": bcfg.max_patch}
    babylon = get_patcher("babylon", **bcfg.patcher_kwargs())
    babylon_mean = mean_patch(babylon, x)
    target = babylon_mean if args.target == "babylon" else float(args.target)
    ent = get_patcher("entropy-model", model=lm, **sizes)
    theta = fit_threshold(ent, x, target)
    ent.config.threshold = theta
    opts = ["--model.patcher=entropy-model", f"--model.patcher_model={ckpt.resolve()}",
            f"--model.patch_threshold={theta:.6g}"]
    (run / "model_opts.txt").write_text(" ".join(opts) + "\n")
    result = {"benchmark": f"entropy_lm_{args.name}", "preset": args.preset, "commands": cmds,
              "lm_checkpoint": str(ckpt),
              "lm": {k: summary.get(k) for k in ("val_bpb", "best_val_bpb", "steps", "n_params",
                                                 "bytes_per_s", "device")},
              "fit": {"bytes": x.numel(), "split": "val", "target": target,
                      "target_from": args.target, "size_limits": sizes,
                      "threshold_bits": theta, "entropy_model_mean_patch": mean_patch(ent, x),
                      "babylon_mean_patch": babylon_mean},
              "bsfin_model_options": opts, "wall_s": time.time() - t0}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"entropy_lm_{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["fit"] | {"lm_val_bpb": summary.get("val_bpb")}, indent=1))


if __name__ == "__main__":
    main()
