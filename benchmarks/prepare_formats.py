"""Peak memory of ``bytelm prepare`` on a large ``.jsonl.zst``, and its splits against plain text.

Generates (in --work, never in the repository) a zstd-compressed JSON-lines file of about
--gb GB holding English Wikipedia articles (shared/data/en/text, split at blank lines,
repeated until the size is reached) and a plain text file of the same documents joined as
``--doc-sep`` documents it (a newline between two documents unless the first ends in one). Both
are prepared by the CLI in a child process under ``/usr/bin/time -v``; the result JSON records
each run's peak RSS and wall time and whether the split files are byte for byte the same (sha256
from meta.json and recomputed from the files on disk).

    python benchmarks/prepare_formats.py --gb 1 --out benchmarks/results/prepare/prepare_jsonl_zst_1gb.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "en" / "text"
SPLITS = ("train", "val", "test")


def _documents(source: Path) -> list[str]:
    """The articles of every enwiki file, split at blank lines."""
    docs = []
    for f in sorted(source.glob("*.txt")):
        docs += [d for d in f.read_text(encoding="utf-8").split("\n\n") if d.strip()]
    return docs


def generate(work: Path, target_bytes: int, source: Path) -> dict:
    """Write work/docs.jsonl.zst (until it holds target_bytes compressed) and work/docs.txt."""
    import zstandard

    docs = _documents(source)
    work.mkdir(parents=True, exist_ok=True)
    zpath, tpath = work / "docs.jsonl.zst", work / "docs.txt"
    n_docs, text_bytes, tail = 0, 0, ""
    with open(zpath, "wb") as zf, open(tpath, "wb") as tf:
        writer = zstandard.ZstdCompressor(level=3).stream_writer(zf, closefd=False)
        while zf.tell() < target_bytes:
            doc = docs[n_docs % len(docs)]
            line = json.dumps({"id": n_docs, "text": doc}, ensure_ascii=False) + "\n"
            writer.write(line.encode("utf-8"))
            piece = ("\n" if n_docs and not tail.endswith("\n") else "") + doc
            tf.write(piece.encode("utf-8"))
            text_bytes += len(piece.encode("utf-8"))
            tail = doc[-1:]
            n_docs += 1
        writer.close()
    return {"documents": n_docs, "distinct_documents": len(docs), "jsonl_zst_bytes": zpath.stat().st_size,
            "text_bytes": text_bytes}


def _run_prepare(src: Path, out: Path) -> dict:
    """Prepare src into out with the CLI under /usr/bin/time -v; peak RSS and wall seconds."""
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "bytelm", "prepare", str(src), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise SystemExit(f"prepare failed:\n{proc.stderr}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)[1])
    return {"command": " ".join(cmd[2:]).replace(str(REPO) + "/", ""), "peak_rss_mb": round(rss_kb / 1024, 1),
            "wall_s": round(wall, 1), "stdout": proc.stdout.strip()}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gb", type=float, default=1.0, help="size of the .jsonl.zst file in GB (1e9 bytes)")
    p.add_argument("--work", type=Path, default=Path("/tmp/bytelm_prepare_bench"))
    p.add_argument("--source", type=Path, default=SHARED)
    p.add_argument("--out", type=Path, required=True, help="result JSON")
    p.add_argument("--keep", action="store_true", help="keep the generated files")
    args = p.parse_args()

    t0 = time.time()
    gen = generate(args.work, int(args.gb * 1e9), args.source)
    gen["generate_s"] = round(time.time() - t0, 1)
    print(json.dumps(gen), flush=True)
    runs, metas = {}, {}
    for name, src in (("jsonl_zst", args.work / "docs.jsonl.zst"), ("plain_text", args.work / "docs.txt")):
        out = args.work / f"out_{name}"
        runs[name] = _run_prepare(src, out)
        metas[name] = json.loads((out / "meta.json").read_text())
        runs[name]["splits"] = {s: {k: metas[name]["splits"][s][k] for k in ("bytes", "sha256")} for s in SPLITS}
        runs[name]["sha256_on_disk_matches_meta"] = all(
            _sha256(out / f"{s}.bin") == metas[name]["splits"][s]["sha256"] for s in SPLITS)
        print(json.dumps({name: runs[name]}), flush=True)
    a, b = (metas[k]["splits"] for k in ("jsonl_zst", "plain_text"))
    result = {
        "what": "bytelm prepare on a zstd-compressed JSON-lines file vs plain text of the same documents",
        "command": "python benchmarks/prepare_formats.py " + " ".join(sys.argv[1:]),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "note": "CPU machine shared with other jobs (2 cores); wall times are under that load"},
        "commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip(),
        "input": gen,
        "runs": runs,
        "splits_identical": all(a[s]["sha256"] == b[s]["sha256"] and a[s]["bytes"] == b[s]["bytes"] for s in SPLITS),
        "rss_target_mb": 500,
        "rss_under_target": runs["jsonl_zst"]["peak_rss_mb"] < 500,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"splits identical: {result['splits_identical']}; peak RSS {runs['jsonl_zst']['peak_rss_mb']} MB "
          f"(jsonl.zst), {runs['plain_text']['peak_rss_mb']} MB (text)")
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
