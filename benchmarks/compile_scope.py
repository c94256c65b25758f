"""Compile time and steady step time of `bytelm bench train --compile` with the whole model as
one graph (``--compile-scope model``) against each repeated block compiled in place
(``--compile-scope blocks``), each row in a fresh process with an empty inductor cache (a cold
start, as a user's first run). Writes one JSON with every row:

    python benchmarks/compile_scope.py --out benchmarks/results/compile/compile_scope_cpu.json
    python benchmarks/compile_scope.py --device cuda --batch 32 --seq-len 1024 --out ...  # GPU

first_step_s is the first forward+backward+optimizer step (tracing and code generation
included); step_ms the median of the timed steps after it.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from bytelm.bench.report import write_json  # noqa: E402

PRESETS = ["transformer-30m", "agiformer-31m", "bsfin-35m", "hnet-30m"]


def commit() -> str:
    if os.environ.get("GIT_COMMIT"):  # the device machine's copy of the tree has no .git
        return os.environ["GIT_COMMIT"]
    r = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                       capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"],
                           capture_output=True, text=True).stdout.strip()
    return r.stdout.strip() + ("+dirty" if dirty else "")


def row(preset: str, scope: str, a) -> dict:
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TORCHINDUCTOR_CACHE_DIR": cache,
               "TRITON_CACHE_DIR": str(Path(cache) / "triton")}
        cmd = [sys.executable, "-m", "bytelm", "bench", "train", "--preset", preset,
               "--batch", str(a.batch), "--seq-len", str(a.seq_len), "--steps", str(a.steps),
               "--warmup", str(a.warmup), "--compile", "--compile-scope", scope,
               "--device", a.device, "--out", str(out)]
        t0 = time.time()
        p = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.time() - t0
        if p.returncode != 0:
            return {"preset": preset, "compile_scope": scope, "status": "error",
                    "stderr_tail": p.stderr[-800:], "process_wall_s": wall}
        r = json.loads(out.read_text())["rows"][0]
        r["process_wall_s"] = round(wall, 1)
        return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=PRESETS)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    res = {"what": __doc__.split("\n\n")[0].replace("\n", " "),
           "command": "python benchmarks/compile_scope.py " + " ".join(sys.argv[1:]),
           "git_commit": commit(), "date": time.strftime("%Y-%m-%d"), "device": a.device,
           "cpus": os.cpu_count(), "loadavg_before": open("/proc/loadavg").read().split()[:3],
           "rows": []}
    for preset in a.presets:
        for scope in ("model", "blocks"):
            r = row(preset, scope, a)
            res["rows"].append(r)
            print(f"{preset:16s} {scope:6s} first step {r.get('first_step_s', float('nan')):6.1f} s"
                  f"  step {r.get('step_ms', float('nan')):8.1f} ms  {r.get('status')}", flush=True)
            write_json(res, a.out)
    res["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
    write_json(res, a.out)


if __name__ == "__main__":
    main()
