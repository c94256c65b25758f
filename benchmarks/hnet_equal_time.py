"""Equal-wall-time comparison of byte models in one GPU job (issue #19), and a throughput survey.

    python benchmarks/hnet_equal_time.py --data DATA --out OUT --minutes 2.5 \
        transformer=transformer-30m hnet=hnet-30m hnet_space=hnet-30m:--model.chunker=space
    python benchmarks/hnet_equal_time.py --survey --out OUT hnet=hnet-30m ...

A RUN is NAME=PRESET[:--key=value,--key=value]. Training runs go one after another through the
public CLI (``bytelm train`` with the baseline's recipe, benchmarks/recipe.sh, and
``--train.time_budget_min``), then ``bytelm eval`` scores the best-validation checkpoint on the
whole test split. One JSON (OUT/equal_time.json) holds, per run: the exact commands, parameters
and FLOPs per byte by stage, the training summary (steps, bytes/s overall and steady, MFU), the
validation curve with the training seconds at each check, the wall time to reach validation bpb
1.60 and 1.50 (first check at or below it), the last chunk statistics, and the test bpb.

``--survey`` instead times compiled bf16 training steps (forward, backward, AdamW) of each RUN at
batch 64 x 1024 bytes after a warm-up, so configurations can be compared before training.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def parse_run(spec: str) -> tuple[str, str, list[str]]:
    """'name=preset:--a=1,--b=2' -> ('name', 'preset', ['--a=1', '--b=2'])."""
    if "=" not in spec.split(":")[0]:
        raise SystemExit(f"bad RUN {spec!r}: expected NAME=PRESET[:--key=value,...]")
    name, rest = spec.split("=", 1)
    preset, _, opts = rest.partition(":")
    return name, preset, [o for o in opts.split(",") if o]


def recipe(eval_every: int) -> list[str]:
    out = subprocess.run(["bash", "-c", f"source {HERE / 'recipe.sh'}; baseline_recipe {eval_every}"],
                         check=True, capture_output=True, text=True).stdout
    return out.split()


def sh(cmd: list[str], log: list[str], timeout: float | None = None) -> int:
    line = " ".join(shlex.quote(c) for c in cmd)
    print(f"$ {line}", flush=True)
    log.append(line)
    return subprocess.run(cmd, timeout=timeout).returncode


def model_overrides(opts: list[str]) -> dict:
    return {o[len("--model."):].split("=")[0]: o.split("=", 1)[1] for o in opts if o.startswith("--model.")}


def describe(preset: str, opts: list[str]) -> dict:
    """Parameters and FLOPs per byte (by stage where the family reports stages)."""
    sys.path.insert(0, str(ROOT / "src"))
    from bytelm.overrides import apply_overrides
    from bytelm.registry import model_class, preset_config
    cfg = apply_overrides(preset_config(preset), model_overrides(opts), "model")
    m = model_class(cfg)(cfg)
    d = {"n_params": m.n_params(), "flops_per_byte": m.flops_per_byte(), "config": cfg.to_dict()}
    if hasattr(m, "stage_flops"):
        d["stage_flops_per_byte"] = m.stage_flops()
        d["stage_params"] = m.stage_params()
    return d


def time_to(val_curve: list[dict], target: float):
    hit = next((v for v in val_curve if v["bpb"] <= target), None)
    return None if hit is None else {"train_s": hit.get("train_s"), "step": hit["step"],
                                     "bytes_seen": hit["bytes_seen"]}


def train_run(name, preset, opts, args, cmds) -> dict:
    py = [sys.executable, "-m", "bytelm"]
    run = Path(args.work) / name
    t0 = time.time()
    rc = sh(py + ["train", "--preset", preset, "--data", args.data, "--out", str(run),
                  f"--train.time_budget_min={args.minutes}", "--train.steps=1000000",
                  "--train.progress=false", *recipe(args.eval_every), *opts], cmds)
    res = {"name": name, "preset": preset, "options": opts, "train_rc": rc, **describe(preset, opts)}
    if not (run / "summary.json").is_file():
        return res
    summary = json.loads((run / "summary.json").read_text())
    metrics = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in metrics if r["kind"] == "train"]
    val = []
    for r in metrics:
        if r["kind"] != "val":
            continue
        # training seconds at the check: bytes seen over the overall rate of the nearest log
        near = min(train, key=lambda t: abs(t["step"] - r["step"])) if train else None
        val.append({"step": r["step"], "bytes_seen": r["bytes_seen"], "bpb": r["bpb"],
                    "train_s": (r["bytes_seen"] / near["bytes_per_s"]) if near and near["bytes_per_s"] else None})
    chunk_keys = ("chunk_len", "chunk_overflow", "boundary_rate", "p_mean", "ratio_loss")
    res.update(train_summary=summary, val_curve=val,
               time_to_1_60=time_to(val, 1.60), time_to_1_50=time_to(val, 1.50),
               chunk_stats_last={k: train[-1][k] for k in chunk_keys if train and k in train[-1]},
               chunk_len_curve=[{"step": t["step"], "chunk_len": t["chunk_len"]}
                                for t in train[::max(1, len(train) // 20)] if "chunk_len" in t],
               wall_train_s=time.time() - t0)
    test_json = run / "test.json"
    rc = sh(py + ["eval", str(run / "ckpt" / "best"), "--split", "test", "--batch-size", "64",
                  "--json", str(test_json)], cmds)
    if rc == 0:
        t = json.loads(test_json.read_text())
        res["test"] = {k: t[k] for k in ("bpb", "bits_per_char", "n_bytes") if k in t}
    res["wall_s"] = time.time() - t0
    return res


def survey_run(name, preset, opts, args) -> dict:
    import torch
    sys.path.insert(0, str(ROOT / "src"))
    from bytelm.nn.loss import byte_cross_entropy
    info = describe(preset, opts)
    from bytelm.overrides import apply_overrides
    from bytelm.registry import model_class, preset_config
    cfg = apply_overrides(preset_config(preset), model_overrides(opts), "model")
    torch.manual_seed(0)
    m = model_class(cfg)(cfg).cuda()
    opt = torch.optim.AdamW(m.param_groups(0.1), lr=1e-4, fused=True)
    cm = torch.compile(m)
    B, T = args.batch, cfg.context
    x = torch.randint(0, 256, (B, T + 1), device="cuda")

    def step():
        with torch.autocast("cuda", torch.bfloat16):
            out = cm(x[:, :-1])
            loss = byte_cross_entropy(out.logits, x[:, 1:]) + out.aux_loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    t0 = time.time()
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    compile_s = time.time() - t0
    for _ in range(5):
        step()
    torch.cuda.synchronize()
    t0 = time.time()
    n = args.survey_steps
    for _ in range(n):
        step()
    torch.cuda.synchronize()
    dt = (time.time() - t0) / n
    bps = B * T / dt
    info.pop("config")
    res = {"name": name, "preset": preset, "options": opts, **info, "compile_s": compile_s,
           "ms_per_step": dt * 1e3, "bytes_per_s": bps,
           "tflops": info["flops_per_byte"] * bps / 1e12,
           "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30}
    print(json.dumps(res), flush=True)
    del cm, m, opt
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="NAME=PRESET[:--key=value,...]")
    ap.add_argument("--data", help="prepared corpus (bytelm prepare)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=2.5)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--work", default="runs/equal_time")
    ap.add_argument("--survey", action="store_true", help="time compiled training steps only")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--survey-steps", type=int, default=15)
    ap.add_argument("--result", default=None, help="result file name in --out")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / (args.result or ("survey.json" if args.survey else "equal_time.json"))
    doc = {"command": " ".join(shlex.quote(a) for a in sys.argv),
           "git_commit": os.environ.get("GIT_COMMIT", "unknown"), "date": time.strftime("%Y-%m-%d"),
           "minutes": None if args.survey else args.minutes, "runs": []}
    try:
        import torch
        doc["device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    except Exception:  # noqa: BLE001
        doc["device"] = "unknown"
    for spec in args.runs:
        name, preset, opts = parse_run(spec)
        if args.survey:
            try:
                doc["runs"].append(survey_run(name, preset, opts, args))
            except Exception as e:  # noqa: BLE001 - one failing configuration must not end the survey
                doc["runs"].append({"name": name, "preset": preset, "options": opts, "error": repr(e)[:500]})
        else:
            doc.setdefault("commands", [])
            doc["runs"].append(train_run(name, preset, opts, args, doc["commands"]))
        path.write_text(json.dumps(doc, indent=1) + "\n")
    for r in doc["runs"]:
        keep = {k: r.get(k) for k in ("name", "n_params", "flops_per_byte", "bytes_per_s", "test",
                                      "time_to_1_50", "chunk_stats_last", "error")}
        if "train_summary" in r:
            s = r["train_summary"]
            keep.update(steps=s["steps"], bytes_per_s=s["bytes_per_s"], steady=s["steady_bytes_per_s"],
                        mfu=s["mfu"], best_val=s["best_val_bpb"])
        print(json.dumps(keep), flush=True)


if __name__ == "__main__":
    main()
