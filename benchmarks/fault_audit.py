"""Fault audit of issue #25, rerun on CPU: injected faults and bad inputs through the real CLI.

Every case runs ``python -m bytelm ...`` (this checkout's ``src``) in a child process on tiny
settings (transformer-tiny, a few steps, 2-byte batches), injects one fault (kill -9 mid-save,
SIGTERM/SIGHUP, a damaged checkpoint or corpus, an OS error during a save, a second writer,
a non-UTF-8 byte, an out-of-range option, ...) and classifies what happened:

- ok: the expected outcome (a one-line ``bytelm: error:`` and a nonzero exit, or a safe
  recovery: the checkpoint loads, a resume continues, temporary folders are gone);
- traceback: a Python traceback reached the user;
- silent-wrong: exit 0 (or an accepted input) where the result is wrong or an error was due;
- data-loss: a checkpoint or corpus that was good before the fault is gone or damaged;
- bad-message: no traceback and a nonzero exit, but not one clean error line (or the line
  lacks what it should name);
- skipped: the fault could not be injected here (the reason is recorded).

The bad-input table (``BAD_INPUTS``) runs in one child process that calls the CLI's ``main``
once per input (a real exit code and the real stdout/stderr of each call, without paying
torch's import per input); the fault cases each get their own process.

Disk full and read-only faults need a private mount namespace (``unshare -m`` as root, a tiny
tmpfs or a read-only bind mount that no other process sees); without root they are skipped.

    .venv/bin/python benchmarks/fault_audit.py   # writes benchmarks/results/hardening/fault_audit_cpu.json
    .venv/bin/python benchmarks/fault_audit.py --only kill9,disk   # cases whose id contains a word
"""
from __future__ import annotations

import argparse
import base64
import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import platform
import random
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
SHARED_TEXT = REPO.parent / "shared" / "data" / "small" / "en.txt"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "hardening" / "fault_audit_cpu.json"
PY = sys.executable

TINY = ["--preset", "transformer-tiny", "--train.batch_size=2", "--train.progress=false",
        "--train.device=cpu"]
OUTCOMES = ("ok", "traceback", "silent-wrong", "data-loss", "bad-message", "skipped")


# --- running the CLI ------------------------------------------------------------------------

class Res:
    """A finished ``bytelm`` child: argv, exit code, stdout, stderr (text), seconds."""

    def __init__(self, argv, rc, out: bytes, err: bytes, seconds: float, shell: str | None = None):
        self.argv, self.rc, self.seconds = [os.fsdecode(a) for a in argv], rc, seconds
        self.out = out.decode("utf-8", "replace")
        self.err = err.decode("utf-8", "replace")
        self.shell = shell

    def command(self) -> str:
        if self.shell is not None:
            return self.shell
        argv = ["python" if a == PY else a for a in self.argv]
        return shlex.join(argv)


class Audit:
    def __init__(self, work: Path):
        self.work = work
        self.cache = work / "cache"
        self.env = {**os.environ, "PYTHONPATH": str(SRC), "BYTELM_CACHE": str(self.cache),
                    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "LC_ALL": "C.UTF-8",
                    "PYTHONUNBUFFERED": "1"}
        self.env.pop("PYTHONIOENCODING", None)
        self.results: list[dict] = []
        self._n = 0

    def tmp(self, name: str) -> Path:
        """A fresh scratch folder. Numbered only: a case's name in the path would satisfy the
        check that an error message names the file at fault (``needles``)."""
        self._n += 1
        d = self.work / f"{self._n:03d}"
        d.mkdir(parents=True)
        (self.work / "folders.txt").open("a").write(f"{d.name} {name}\n")
        return d

    def argv(self, *args) -> list:
        return [PY, "-m", "bytelm", *[a if isinstance(a, bytes) else str(a) for a in args]]

    def cli(self, *args, stdin: bytes | None = None, env: dict | None = None, timeout=300,
            preexec=None) -> Res:
        argv = self.argv(*args)
        t = time.perf_counter()
        p = subprocess.run(argv, input=stdin if stdin is not None else b"", capture_output=True,
                           env={**self.env, **(env or {})}, timeout=timeout, preexec_fn=preexec,
                           cwd=self.work)
        return Res(argv, p.returncode, p.stdout, p.stderr, time.perf_counter() - t)

    def popen(self, *args, stdin=subprocess.DEVNULL, env=None) -> tuple[subprocess.Popen, list]:
        argv = self.argv(*args)
        p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**self.env, **(env or {})}, cwd=self.work)
        return p, argv

    def shell_in_namespace(self, script: str, timeout=300) -> tuple[int, str, str, str]:
        """``script`` (sh) in a private mount namespace; returns (rc, stdout, stderr, script)."""
        p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                           capture_output=True, env=self.env, timeout=timeout, cwd=self.work)
        return (p.returncode, p.stdout.decode("utf-8", "replace"),
                p.stderr.decode("utf-8", "replace"), script)

    def record(self, cid: str, group: str, fault: str, expected: str, outcome: str, detail: str,
               res: Res | None = None, command: str | None = None, seconds: float | None = None):
        assert outcome in OUTCOMES, outcome
        row = {"id": cid, "group": group, "fault": fault, "expected": expected,
               "outcome": outcome, "detail": detail[:600]}
        if res is not None:
            row.update(command=command or res.command(), rc=res.rc,
                       stderr_tail=res.err[-400:], seconds=round(res.seconds, 2))
        elif command is not None:
            row["command"] = command
        if seconds is not None:
            row["seconds"] = round(seconds, 2)
        self.results.append(row)
        mark = "  " if outcome == "ok" else "!!"
        print(f"{mark} {outcome:12s} {cid}: {detail[:160]}", flush=True)


_PROGRESS = re.compile(r"^\S+: +\d+%\|")  # a tqdm bar's frame on a non-terminal stderr


def clean_error(r: Res, *needles: str, rc=(2,), allow_logs=True,
                foreign_logs: bool = False) -> tuple[str, str]:
    """(outcome, detail) for a run that should end with one ``bytelm: error:`` line; bytelm's
    own log lines (INFO/WARNING) and progress bars may come before it when ``allow_logs``, any
    line (another program's log) when ``foreign_logs``."""
    if "Traceback" in r.err:
        tb = [ln for ln in r.err.splitlines() if ln.strip()]
        return "traceback", " | ".join(tb[-2:])
    if r.rc == 0:
        return "silent-wrong", f"exit 0; stdout: {r.out[-200:]!r}"
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    errs = [ln for ln in lines if ln.startswith("bytelm: error: ")]
    noise = [ln for ln in lines if not ln.startswith("bytelm: error: ") and not foreign_logs
             and not (allow_logs and (ln.startswith(("INFO ", "WARNING ")) or _PROGRESS.match(ln)))]
    rcs = rc if isinstance(rc, tuple) else (rc,)
    if r.rc not in rcs or len(errs) != 1 or noise or lines[-1] != errs[0]:
        return "bad-message", f"rc {r.rc} (want {rcs}); stderr: {r.err[-300:]!r}"
    missing = [n for n in needles if n not in errs[0]]
    if missing:
        return "bad-message", f"{errs[0]!r} lacks {missing}"
    return "ok", errs[0]


# --- checkpoints and corpora, inspected in this process -----------------------------------

def _bytelm():
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    import bytelm  # noqa: F401


def ckpt_info(path: Path, training: bool = True) -> dict:
    """Whether ``path`` (a checkpoint dir, or its .old twin after a swap) loads, its step and
    the sha256 of its weights."""
    _bytelm()
    from bytelm.train.checkpoint import load_model, load_training, resolve_checkpoint
    try:
        d = resolve_checkpoint(path)
        model = load_model(d)
        info = {"loadable": True, "dir": str(d),
                "sha": hashlib.sha256((d / "model.safetensors").read_bytes()).hexdigest()}
        if training:
            state = load_training(d)[0]
            info["step"] = state["step"]
        info["params"] = sum(p.numel() for p in model.parameters())
        return info
    except BaseException as e:  # noqa: BLE001 - anything that fails to load is the finding
        return {"loadable": False, "error": f"{type(e).__name__}: {str(e)[:300]}"}


def val_bpb(path: Path, corpus: Path, max_bytes: int = 2048) -> float:
    _bytelm()
    from bytelm.data import open_split
    from bytelm.eval.bpb import evaluate_bpb
    from bytelm.train.checkpoint import load_model
    model = load_model(path)
    split = open_split(corpus, "val", min_len=2)
    return evaluate_bpb(model, split, seq_len=model.config.context, batch_size=8,
                        max_bytes=max_bytes)["bpb"]


def temps(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if ".tmp-" in p.name or p.name.endswith(".old") or ".old-" in p.name)


def tree_sha(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def edit_json(path: Path, fn) -> None:
    d = json.loads(path.read_text())
    fn(d)
    path.write_text(json.dumps(d, indent=2))


def wait_for(cond, proc: subprocess.Popen | None, timeout: float, poll: float = 0.01) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        if proc is not None and proc.poll() is not None:
            return bool(cond())
        time.sleep(poll)
    return False


def finish(proc: subprocess.Popen, argv, t0: float, timeout: float = 120) -> Res:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return Res(argv, proc.returncode, out, err, time.perf_counter() - t0)


def can_unshare() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "needs root for a private mount namespace (tmpfs / read-only bind mount)"
    if shutil.which("unshare") is None:
        return False, "no unshare(1)"
    p = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return False, f"cannot mount in a private namespace: {p.stderr.strip()[:200]}"
    return True, ""


# --- the fixtures every case starts from --------------------------------------------------

def source_text(work: Path) -> Path:
    """shared/data/small/en.txt when present, else ~200 KB of this Python's stdlib sources."""
    if SHARED_TEXT.is_file():
        return SHARED_TEXT
    import sysconfig
    out, buf = work / "src.txt", []
    for f in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        buf.append(f.read_text(encoding="utf-8", errors="replace"))
        if sum(map(len, buf)) > 200_000:
            break
    out.write_text("\n".join(buf), encoding="utf-8")
    return out


def setup(a: Audit) -> dict:
    t = time.perf_counter()
    fx = {"text": source_text(a.work)}
    fx["corpus"] = a.work / "corpus"
    r = a.cli("prepare", fx["text"], "--out", fx["corpus"])
    assert r.rc == 0, r.err
    # a base run: 12 steps at a usable learning rate, checkpoints at 6 and 12
    fx["run"] = a.work / "base-run"
    r = a.cli("train", *TINY, "--data", fx["corpus"], "--out", fx["run"], "--train.steps=12",
              "--train.eval_every=6", "--train.eval_bytes=1024", "--optim.lr=3e-3",
              "--optim.warmup_steps=2")
    assert r.rc == 0, r.err
    fx["ckpt"] = fx["run"] / "ckpt" / "last"
    fx["setup_s"] = time.perf_counter() - t
    return fx


def copy_run(a: Audit, fx: dict, name: str) -> Path:
    return Path(shutil.copytree(fx["run"], a.tmp(name) / "run"))


def copy_corpus(a: Audit, fx: dict, name: str) -> Path:
    return Path(shutil.copytree(fx["corpus"], a.tmp(name) / "corpus"))


def resume_args(run: Path, steps: int, *extra) -> list:
    return ["train", "--out", run, "--resume", f"--train.steps={steps}", *extra]


# --- the cases ------------------------------------------------------------------------------

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


@case
def kill9_mid_save(a: Audit, fx: dict):
    """kill -9 while a checkpoint is being written (a .tmp- folder exists), again and again,
    resuming each time; every checkpoint left must load and the last resume must finish."""
    run = a.tmp("kill9") / "run"
    common = [*TINY, "--data", fx["corpus"], "--out", run, "--train.steps=120",
              "--train.eval_every=1", "--train.eval_bytes=128"]
    kills, mid, steps, problems = 0, 0, [], []
    rng = random.Random(0)
    t0 = time.perf_counter()
    first_argv = None
    ckdir = run / "ckpt"

    def step() -> int:
        try:
            return json.loads((ckdir / "last" / "trainer_state.json").read_text())["step"]
        except (OSError, ValueError, KeyError):
            return 0
    for i in range(7):
        args = ["train", *common] + (["--resume"] if i else [])
        proc, argv = a.popen(*args)
        first_argv = first_argv or argv
        # this process has saved a checkpoint of its own (a few steps on from the last kill) ...
        start = step()
        wait_for(lambda: step() >= start + 1 + i, proc, 60, poll=0.002)
        if i < 5:   # ... and a temporary checkpoint folder appears beside it: mid-write
            hit = wait_for(lambda: any(".tmp-" in p.name or p.name.endswith(".old")
                                       for p in ckdir.iterdir()), proc, 60, poll=0.0005)
        else:       # ... then a random moment
            hit = True
            time.sleep(rng.uniform(0.0, 0.1))
        if proc.poll() is not None:
            out, err = proc.communicate()
            problems.append(f"run {i} ended before the kill (rc {proc.returncode}): "
                            f"{err.decode()[-200:]!r}")
            break
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        kills += 1
        mid += bool(hit and i < 5 and temps(run))
        info = ckpt_info(run / "ckpt" / "last")
        if not info["loadable"]:
            a.record("kill9-mid-save", "crash", "kill -9 during a checkpoint save (x7, resumed "
                     "each time)", "every checkpoint left loads; the resume continues",
                     "data-loss", f"after kill {kills}: {info['error']}", command=shlex.join(
                         map(str, argv)), seconds=time.perf_counter() - t0)
            return
        steps.append(info["step"])
    # the last resume runs to the end
    r = a.cli("train", *common, "--resume")
    left = temps(run)
    if "Traceback" in r.err or r.rc != 0:
        outcome, detail = ("traceback" if "Traceback" in r.err else "bad-message"), r.err[-300:]
    elif any(b < a_ for a_, b in zip(steps, steps[1:])):
        outcome, detail = "data-loss", f"checkpoint step went back: {steps}"
    elif left:
        outcome, detail = "bad-message", f"temporary folders left after a clean resume: {left}"
    elif problems:
        outcome, detail = "skipped", "; ".join(problems)
    else:
        final = ckpt_info(run / "ckpt" / "last")
        outcome = "ok" if final.get("step") == 120 else "data-loss"
        detail = (f"{kills} kills ({mid} with a temporary folder on disk), checkpoint steps "
                  f"after each {steps}; final resume reached step {final.get('step')}")
    a.record("kill9-mid-save", "crash", "kill -9 during a checkpoint save (x5 while a .tmp- "
             "folder exists, x2 at random moments), resumed each time",
             "every checkpoint left loads; each resume continues; the last one finishes",
             outcome, detail, r, command=shlex.join(map(str, first_argv)) + "  # then --resume",
             seconds=time.perf_counter() - t0)


@case
def kill9_resume_exact(a: Audit, fx: dict):
    """An uninterrupted 40-step run and one killed (-9) after its step-10 checkpoint then
    resumed end with the same weights."""
    d = a.tmp("resume-exact")
    common = [*TINY, "--data", fx["corpus"], "--train.steps=40", "--train.eval_every=5",
              "--train.eval_bytes=256", "--train.seed=7"]
    ru = a.cli("train", *common, "--out", d / "whole")
    proc, argv = a.popen("train", *common, "--out", d / "cut")
    t0 = time.perf_counter()
    state = d / "cut" / "ckpt" / "last" / "trainer_state.json"

    def step():
        try:
            return json.loads(state.read_text())["step"]
        except (OSError, ValueError, KeyError):
            return 0
    wait_for(lambda: step() >= 10, proc, 60, poll=0.002)
    if proc.poll() is not None:
        a.record("kill9-resume-exact", "crash", "kill -9 after step 10, resume", "same weights",
                 "skipped", "the run finished before the kill")
        return
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    at = step()
    rr = a.cli("train", *common, "--out", d / "cut", "--resume")
    if ru.rc or rr.rc:
        outcome, detail = clean_error(rr)
        if outcome == "silent-wrong":
            outcome, detail = "bad-message", ru.err[-300:]
    else:
        w = [hashlib.sha256((d / x / "ckpt" / "last" / "model.safetensors").read_bytes()).hexdigest()
             for x in ("whole", "cut")]
        v = [json.loads((d / x / "summary.json").read_text())["val_bpb"] for x in ("whole", "cut")]
        same = w[0] == w[1]
        outcome = "ok" if same else "silent-wrong"
        detail = (f"killed at checkpoint step {at}; final weights "
                  f"{'identical' if same else 'DIFFER'}; val bpb {v[0]:.6f} vs {v[1]:.6f}")
    a.record("kill9-resume-exact", "crash", "kill -9 after the step-10 checkpoint of a 40-step "
             "run, then --resume", "the resumed run ends with the uninterrupted run's weights",
             outcome, detail, rr, seconds=time.perf_counter() - t0)


@case
def two_writers(a: Audit, fx: dict):
    run = a.tmp("two-writers") / "run"
    common = [*TINY, "--data", fx["corpus"], "--out", run, "--train.steps=100000",
              "--train.eval_every=5", "--train.eval_bytes=128"]
    proc, argv = a.popen("train", *common)
    t0 = time.perf_counter()
    ok = wait_for(lambda: (run / "ckpt" / "last" / "trainer_state.json").is_file(), proc, 60)
    if not ok:
        proc.kill()
        a.record("two-writers", "writers", "second train on one --out", "refused", "skipped",
                 "the first run never checkpointed")
        return
    rb = a.cli("train", *common)
    rr = a.cli("train", *common, "--resume")
    proc.send_signal(signal.SIGTERM)
    ra = finish(proc, argv, t0)
    o1, d1 = clean_error(rb)
    o2, d2 = clean_error(rr, "being written by another bytelm process")
    info = ckpt_info(run / "ckpt" / "last")
    try:
        rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
        tr = [r["step"] for r in rows if r.get("kind") == "train"]
        metrics_ok = tr == sorted(tr) and len(tr) == len(set(tr))
    except ValueError:
        metrics_ok = False
    outcome = next((o for o in (o1, o2) if o != "ok"), "ok")
    if outcome == "ok" and (not info["loadable"] or not metrics_ok):
        outcome = "data-loss"
    if outcome == "ok" and ra.rc != 128 + signal.SIGTERM:
        outcome = "bad-message"
    a.record("two-writers", "writers", "a second `train` on the --out of a running one "
             "(fresh, then --resume)", "both refused in one line; the first run's checkpoint and "
             "metrics are its own", outcome,
             f"fresh: {d1} | resume: {d2} | first run: rc {ra.rc}, checkpoint step "
             f"{info.get('step')}, metrics {'clean' if metrics_ok else 'MIXED'}", rr,
             seconds=time.perf_counter() - t0)


def _signal_train(a: Audit, fx: dict, sig: signal.Signals):
    run = a.tmp(f"{sig.name}-train") / "run"
    proc, argv = a.popen("train", *TINY, "--data", fx["corpus"], "--out", run,
                         "--train.steps=100000", "--train.eval_every=3", "--train.eval_bytes=128")
    t0 = time.perf_counter()
    wait_for(lambda: (run / "ckpt" / "last" / "trainer_state.json").is_file(), proc, 60)
    time.sleep(0.2)
    proc.send_signal(sig)
    r = finish(proc, argv, t0)
    info = ckpt_info(run / "ckpt" / "last")
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    if "Traceback" in r.err:
        outcome, detail = "traceback", lines[-1]
    elif not info["loadable"]:
        outcome, detail = "data-loss", info["error"]
    elif r.rc != 128 + sig or lines[-1:] != [f"bytelm: stopped by {sig.name}"]:
        outcome, detail = "bad-message", f"rc {r.rc}: {r.err[-200:]!r}"
    elif temps(run):
        outcome, detail = "bad-message", f"left {temps(run)}"
    else:
        outcome, detail = "ok", f"rc {r.rc}, '{lines[-1]}', checkpoint at step {info['step']} loads"
    a.record(f"{sig.name.lower()}-train", "signals", f"{sig.name} to a running `train`",
             f"one line, exit {128 + sig}, the last checkpoint intact, no temporary folders",
             outcome, detail, r, command=shlex.join(map(str, argv)) + f"  # kill -{sig.name[3:]}")


@case
def sigterm_train(a, fx):
    _signal_train(a, fx, signal.SIGTERM)


@case
def sighup_train(a, fx):
    _signal_train(a, fx, signal.SIGHUP)


def _stream_file(a: Audit, fx: dict) -> Path:
    f = a.work / "stream.bin"
    if not f.exists():
        f.write_bytes(fx["text"].read_bytes() * 20)
    return f


def _live_state(out: Path) -> dict | None:
    try:
        return json.loads((out / "ckpt" / "last" / "live_state.json").read_text())
    except (OSError, ValueError):
        return None


def _signal_live(a: Audit, fx: dict, sig: signal.Signals):
    out = a.tmp(f"{sig.name}-live") / "live"
    proc, argv = a.popen("live", fx["ckpt"], "--stream", _stream_file(a, fx), "--out", out,
                         "--ckpt-every", "1000000", "--log-every", "5", "--device", "cpu")
    t0 = time.perf_counter()
    # wait for learning to be under way (a log line on stderr or stdout), then a little more
    time.sleep(4.0)
    if proc.poll() is not None:
        r = finish(proc, argv, t0)
        a.record(f"{sig.name.lower()}-live", "signals", f"{sig.name} to `live`", "saved",
                 "skipped" if r.rc == 0 else clean_error(r)[0], f"ended first: rc {r.rc} {r.err[-200:]!r}", r)
        return
    proc.send_signal(sig)
    r = finish(proc, argv, t0)
    st = _live_state(out)
    learned = (st or {}).get("bytes_consumed", 0)
    if "Traceback" in r.err:
        outcome, detail = "traceback", r.err.strip().splitlines()[-1]
    elif not st or not learned:
        outcome, detail = "data-loss", f"rc {r.rc}; no final checkpoint ({out}/ckpt/last): {r.err[-200:]!r}"
    elif r.rc not in (130, 128 + sig):
        outcome, detail = "bad-message", f"rc {r.rc}: {r.err[-200:]!r}"
    else:
        info = ckpt_info(out / "ckpt" / "last", training=False)
        outcome = "ok" if info["loadable"] else "data-loss"
        detail = (f"rc {r.rc}; final checkpoint holds {learned:,} bytes learned "
                  f"(step {st.get('step')}), loads: {info['loadable']}")
    a.record(f"{sig.name.lower()}-live", "signals", f"{sig.name} to `live` learning a file "
             "(no periodic checkpoint due yet)", "a final checkpoint with everything learned; "
             "exit 130 / 128+signal without a traceback", outcome, detail, r,
             command=shlex.join(map(str, argv)) + f"  # kill -{sig.name[3:]} after 4 s")


@case
def sigterm_live(a, fx):
    _signal_live(a, fx, signal.SIGTERM)


@case
def sighup_live(a, fx):
    _signal_live(a, fx, signal.SIGHUP)


@case
def kill9_live(a: Audit, fx: dict):
    out = a.tmp("kill9-live") / "live"
    stream = _stream_file(a, fx)
    proc, argv = a.popen("live", fx["ckpt"], "--stream", stream, "--out", out, "--ckpt-every", "3",
                         "--device", "cpu")
    t0 = time.perf_counter()
    wait_for(lambda: _live_state(out) is not None, proc, 60)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    info = ckpt_info(out / "ckpt" / "last", training=False)
    st = _live_state(out)
    short = a.work / "short.bin"
    short.write_bytes(stream.read_bytes()[: (st or {}).get("bytes_consumed", 0) + 4096])
    r = a.cli("live", out, "--stream", short, "--resume", "--device", "cpu")
    if not info["loadable"]:
        outcome, detail = "data-loss", info["error"]
    elif r.rc != 0:
        outcome, detail = clean_error(r)
    else:
        outcome, detail = "ok", (f"periodic checkpoint (step {st.get('step')}) loads and the "
                                 f"resume continues: {r.out.strip().splitlines()[0][:120]}")
    a.record("kill9-live", "crash", "kill -9 during `live` (checkpoint every 3 updates), then "
             "--resume", "the last periodic checkpoint loads; the resume continues", outcome,
             detail, r, seconds=time.perf_counter() - t0)


@case
def divergence_fresh(a: Audit, fx: dict):
    run = a.tmp("diverge-fresh") / "run"
    r = a.cli("train", *TINY, "--data", fx["corpus"], "--out", run, "--train.steps=60",
              "--train.eval_every=2", "--train.eval_bytes=256", "--optim.lr=1000",
              "--optim.grad_clip=0", "--optim.warmup_steps=0")
    outcome, detail = clean_error(r, rc=(3,))
    last = run / "ckpt" / "last"
    if outcome == "ok" and (last / "config.json").is_file():
        info = ckpt_info(last)
        if not info["loadable"]:
            outcome, detail = "data-loss", f"{detail} | ckpt/last: {info['error']}"
    if outcome == "ok" and not (last / "config.json").is_file() and "last good" in r.err:
        outcome, detail = "bad-message", "calls a checkpoint that was never written good"
    a.record("huge-lr-fresh", "divergence", "optim.lr=1000, no clipping, no warm-up, fresh run",
             "exit 3 with one line that names only checkpoints that exist; any ckpt/last loads",
             outcome, detail, r)


@case
def divergence_after_good(a: Audit, fx: dict):
    """A good run resumed at a huge learning rate: validation collapses; ckpt/last must keep the
    good weights (the issue: wrecked weights were saved over ckpt/last)."""
    run = copy_run(a, fx, "diverge-resume")
    good = val_bpb(run / "ckpt" / "last", fx["corpus"])
    sha = ckpt_info(run / "ckpt" / "last")["sha"]
    r = a.cli(*resume_args(run, 40, "--optim.lr=1000", "--optim.grad_clip=0",
                           "--train.eval_every=1", "--train.eval_bytes=256"))
    outcome, detail = clean_error(r, rc=(3,))
    info = ckpt_info(run / "ckpt" / "last")
    if not info["loadable"]:
        outcome, detail = "data-loss", info["error"]
    else:
        now = val_bpb(run / "ckpt" / "last", fx["corpus"])
        if now > good + 1.0:
            outcome = "data-loss"
        detail += (f" | ckpt/last val {good:.3f} -> {now:.3f} bpb, weights "
                   f"{'unchanged' if info['sha'] == sha else 'changed'}")
    a.record("huge-lr-after-good", "divergence", "a trained run resumed with optim.lr=1000 "
             "(validation collapses)", "exit 3, one line naming the good checkpoints; ckpt/last "
             "keeps good weights", outcome, detail, r)


# data: damaged corpora

def _train_on(a: Audit, corpus: Path, name: str) -> Res:
    return a.cli("train", *TINY, "--data", corpus, "--out", a.tmp(name) / "run",
                 "--train.steps=2", "--train.eval_bytes=256")


@case
def corpus_damage(a: Audit, fx: dict):
    for cid, fault, damage, needles in [
        ("truncated-train-bin", "train.bin cut to half its size",
         lambda c: (c / "train.bin").write_bytes((c / "train.bin").read_bytes()[:20000]), ["train.bin"]),
        ("grown-val-bin", "bytes appended to val.bin",
         lambda c: (c / "val.bin").write_bytes((c / "val.bin").read_bytes() + b"extra" * 100), ["val.bin"]),
        ("missing-meta-json", "meta.json deleted", lambda c: (c / "meta.json").unlink(), ["meta.json"]),
        ("meta-json-garbage", "meta.json not JSON",
         lambda c: (c / "meta.json").write_text("{oops"), ["meta.json"]),
        ("missing-val-bin", "val.bin deleted", lambda c: (c / "val.bin").unlink(), ["val"]),
    ]:
        c = copy_corpus(a, fx, cid)
        damage(c)
        r = _train_on(a, c, cid)
        a.record(cid, "data", fault + " (then `train`)", "one-line error naming the file",
                 *clean_error(r, *needles), r)
    c = copy_corpus(a, fx, "truncated-test-bin")
    (c / "test.bin").write_bytes((c / "test.bin").read_bytes()[:300])
    r = a.cli("eval", fx["ckpt"], "--data", c, "--split", "test")
    a.record("truncated-test-bin-eval", "data", "test.bin cut short (then `eval --split test`)",
             "one-line error naming the file", *clean_error(r, "test.bin"), r)


def _formats(text: bytes, d: Path) -> list[tuple[str, Path, str]]:
    """(id, file, expected) for each input format of the issue's target list."""
    import zstandard
    lines = text.decode("utf-8").splitlines(keepends=True)
    jl = b"".join(json.dumps({"text": ln}).encode() + b"\n" for ln in lines)
    files = {
        "gz": ("t.txt.gz", gzip.compress(text)), "zst": ("t.txt.zst", zstandard.compress(text)),
        "xz": ("t.txt.xz", lzma.compress(text)), "bz2": ("t.txt.bz2", bz2.compress(text)),
        "jsonl": ("t.jsonl", jl), "jsonl-gz": ("t.jsonl.gz", gzip.compress(jl)),
        "gz-named-txt": ("t.txt", gzip.compress(text)),
        "txt-named-gz": ("plain.gz", text),
        "binary": ("blob.txt", bytes(random.Random(0).randbytes(200_000))),
        "utf16": ("u16.txt", text.decode("utf-8").encode("utf-16")),
        "empty": ("empty.txt", b""),
        "truncated-gz": ("cut.txt.gz", gzip.compress(text)[:5000]),
    }
    out = []
    for cid, (name, data) in files.items():
        (d / name).write_bytes(data)
        out.append((cid, d / name))
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
        pq.write_table(pa.table({"text": lines}), d / "t.parquet")
        out.append(("parquet", d / "t.parquet"))
    except ImportError:
        pass
    return out


@case
def prepare_formats(a: Audit, fx: dict):
    text = fx["text"].read_bytes()[:200_000]
    d = a.tmp("formats")
    # handled = the splits hold the text itself; refused = one line (either is fine, except
    # that the formats prepare documents must be read, and broken or binary input refused)
    must_handle = {"gz", "zst", "xz", "bz2", "jsonl", "jsonl-gz", "parquet"}
    must_refuse = {"binary", "empty", "truncated-gz"}
    for cid, f in _formats(text, d):
        out = d / f"out-{cid}"
        r = a.cli("prepare", f, "--out", out)
        if r.rc == 0 and "Traceback" not in r.err:
            got = b"".join((out / f"{s}.bin").read_bytes() for s in ("train", "val", "test"))
            probe = text[1000:1400]
            decoded = probe in got
            if cid in ("jsonl", "jsonl-gz", "parquet"):
                decoded = decoded and b'{"text"' not in got
            if cid == "utf16":  # transcoded to UTF-8 is handling it too
                decoded = probe in got
            outcome = "ok" if decoded else "silent-wrong"
            detail = (f"prepared {len(got):,} bytes; the text itself "
                      f"{'is' if decoded else 'is NOT'} in the splits")
            if cid in must_refuse:
                outcome = "silent-wrong"
        else:
            outcome, detail = clean_error(r)
            if outcome == "ok" and cid in must_handle:
                outcome = "bad-message"
                detail = "refused a format it should read: " + detail
        a.record(f"prepare-{cid}", "data", f"`prepare` on {f.name}",
                 "decoded (the text, not the container, in the splits) or a one-line refusal",
                 outcome, detail, r)


@case
def kill9_prepare(a: Audit, fx: dict):
    """kill -9 during a prepare over an existing corpus: the old corpus survives, and the next
    prepare removes the temporary folder."""
    d = a.tmp("kill9-prepare")
    big = d / "big.txt"
    big.write_bytes(fx["text"].read_bytes() * 400)
    out = Path(shutil.copytree(fx["corpus"], d / "corpus"))
    before = tree_sha(out)
    proc, argv = a.popen("prepare", big, "--out", out)
    t0 = time.perf_counter()
    hit = wait_for(lambda: any(p.name.startswith(".corpus.tmp-") for p in d.iterdir()), proc, 60,
                   poll=0.001)
    time.sleep(0.05)
    if proc.poll() is not None:
        a.record("kill9-prepare", "crash", "kill -9 during prepare", "old corpus intact",
                 "skipped", "prepare finished before the kill")
        return
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    left = [p.name for p in d.iterdir() if p.name.startswith(".corpus.")]
    intact = tree_sha(out) == before or _complete_corpus(out)
    r = a.cli("prepare", fx["text"], "--out", out)
    after = [p.name for p in d.iterdir() if p.name.startswith(".corpus.")]
    if not intact:
        outcome = "data-loss"
    elif "Traceback" in r.err or r.rc:
        outcome = clean_error(r)[0]
    elif after:
        outcome = "bad-message"
    else:
        outcome = "ok"
    a.record("kill9-prepare", "crash", "kill -9 during `prepare` over an existing corpus "
             "(24 MB input), then prepare again", "the old corpus intact (or the new one "
             "complete); the next prepare removes the temporary folder", outcome,
             f"temp seen: {hit}; left after the kill: {left}; a complete corpus: {intact}; "
             f"after the next prepare: {after or 'none'}", r, seconds=time.perf_counter() - t0)


def _complete_corpus(out: Path) -> bool:
    """meta.json's sizes and sha256s match the split files."""
    try:
        meta = json.loads((out / "meta.json").read_text())
        return all(hashlib.sha256((out / v["file"]).read_bytes()).hexdigest() == v["sha256"]
                   for v in meta["splits"].values())
    except (OSError, ValueError, KeyError):
        return False


# checkpoints: damaged weights, configs and trainer state

def _weights(ckpt: Path):
    _bytelm()
    from safetensors.torch import load_file
    return load_file(str(ckpt / "model.safetensors"))


def _save_weights(ckpt: Path, w) -> None:
    from safetensors.torch import save_file
    save_file(w, str(ckpt / "model.safetensors"))


def _nan(c):
    import torch
    w = _weights(c)
    k = sorted(w)[0]
    w[k] = torch.full_like(w[k], float("nan"))
    _save_weights(c, w)


def _inf(c):
    import torch
    w = _weights(c)
    k = sorted(w)[-1]
    w[k] = w[k].clone()
    w[k].view(-1)[0] = float("inf")
    _save_weights(c, w)


def _int32(c):
    import torch
    _save_weights(c, {k: v.to(torch.int32) for k, v in _weights(c).items()})


def _fp16(c):
    import torch
    _save_weights(c, {k: v.to(torch.float16) for k, v in _weights(c).items()})


def _cfg(key, value):
    return lambda c: edit_json(c / "config.json", lambda d: d.update({key: value}))


def _state(fn):
    return lambda c: edit_json(c / "trainer_state.json", fn)


def _rng(c):
    _bytelm()
    import torch
    from safetensors.torch import save_file
    save_file({"cpu": torch.zeros(7, dtype=torch.uint8)}, str(c / "rng.safetensors"))


CKPT_DAMAGE = [
    # id, fault, damage(ckpt dir), command kind, expected needles
    ("nan-weights-eval", "a weight tensor set to NaN", _nan, "eval", ["NaN or Inf"]),
    ("nan-weights-generate", "a weight tensor set to NaN", _nan, "generate", ["NaN or Inf"]),
    ("inf-weight-generate", "one weight set to +Inf", _inf, "generate", ["NaN or Inf"]),
    ("int32-weights-eval", "weights stored as int32", _int32, "eval", ["int32"]),
    ("context-edited-eval", "config.json context 128 -> 256", _cfg("context", 256), "eval",
     ["context"]),
    ("n-layers-2.7-eval", "config.json n_layers: 2.7", _cfg("n_layers", 2.7), "eval",
     ["n_layers"]),
    ("d-model-edited-eval", "config.json d_model 64 -> 96", _cfg("d_model", 96), "eval",
     ["mismatch"]),
    ("garbage-weights-eval", "model.safetensors overwritten with garbage",
     lambda c: (c / "model.safetensors").write_bytes(bytes(range(256)) * 64), "eval",
     ["model.safetensors"]),
    ("truncated-weights-generate", "model.safetensors cut to half",
     lambda c: (c / "model.safetensors").write_bytes((c / "model.safetensors").read_bytes()[:250000]),
     "generate", ["model.safetensors"]),
    ("missing-weights-eval", "model.safetensors deleted",
     lambda c: (c / "model.safetensors").unlink(), "eval", ["model.safetensors"]),
    ("config-garbage-eval", "config.json not JSON",
     lambda c: (c / "config.json").write_text('{"d_model": 64,'), "eval", ["config.json"]),
    ("negative-step-resume", "trainer_state.json step: -5", _state(lambda d: d.update(step=-5)),
     "resume", ["step=-5"]),
    ("sampler-missing-resume", "trainer_state.json without 'sampler'",
     _state(lambda d: d.pop("sampler")), "resume", ["sampler"]),
    ("state-garbage-resume", "trainer_state.json not JSON",
     lambda c: (c / "trainer_state.json").write_text("{oops"), "resume", ["trainer_state"]),
    ("rng-wrong-size-resume", "rng.safetensors holds a 7-byte CPU RNG state", _rng, "resume",
     ["RNG"]),
    ("optimizer-garbage-resume", "optimizer.pt overwritten with garbage",
     lambda c: (c / "optimizer.pt").write_bytes(b"PK\x03\x04junk" * 100), "resume", ["optimizer"]),
    ("optimizer-missing-resume", "optimizer.pt deleted",
     lambda c: (c / "optimizer.pt").unlink(), "resume", ["optimizer.pt"]),
    ("optimizer-other-family-resume", "resume an AdamW run with --optim.name=sgd", None,
     "resume-sgd", ["adamw"]),
]


@case
def checkpoint_damage(a: Audit, fx: dict):
    for cid, fault, damage, kind, needles in CKPT_DAMAGE:
        run = copy_run(a, fx, cid)
        for name in ("last", "best"):
            if damage is not None:
                damage(run / "ckpt" / name)
        ck = run / "ckpt" / "last"
        if kind == "eval":
            r = a.cli("eval", ck, "--max-bytes", "500")
        elif kind == "generate":
            r = a.cli("generate", ck, "--prompt", "ab", "--max-bytes", "8")
        elif kind == "resume":
            r = a.cli(*resume_args(run, 14))
        else:
            r = a.cli(*resume_args(run, 14, "--optim.name=sgd"))
        a.record(cid, "checkpoint", fault + f" (then `{kind.split('-')[0]}`)",
                 "one-line error, nothing written", *clean_error(r, *needles), r)
    # config.json edited, then resumed: the trainer builds the model from the run's own config
    # (run_config.json), so the edit must not reach the model or the next checkpoint
    run = copy_run(a, fx, "context-edited-resume")
    for name in ("last", "best"):
        _cfg("context", 256)(run / "ckpt" / name)
    r = a.cli(*resume_args(run, 14))
    if r.rc == 0:
        ctx = json.loads((run / "ckpt" / "last" / "config.json").read_text())["context"]
        outcome = "ok" if ctx == 128 else "silent-wrong"
        detail = f"resumed with the run config's context; the new ckpt/last says context {ctx}"
    else:
        outcome, detail = clean_error(r, "context")
    a.record("context-edited-resume", "checkpoint", "config.json context 128 -> 256, then "
             "`train --resume`", "the run's own config wins (the checkpoint written says 128) "
             "or a one-line refusal", outcome, detail, r)
    # fp16 weights: a legitimate export; loading them must work (not refused, not garbage)
    run = copy_run(a, fx, "fp16-weights")
    _fp16(run / "ckpt" / "last")
    r = a.cli("eval", run / "ckpt" / "last", "--max-bytes", "500")
    outcome = "ok" if r.rc == 0 and "nan" not in r.out.lower() else clean_error(r)[0]
    a.record("fp16-weights-eval", "checkpoint", "weights stored as float16",
             "loads and scores a finite bpb (a dtype the model can cast)", outcome,
             r.out.strip()[-160:] or r.err[-200:], r)


# numeric options and configs (the named ones; the rest are in BAD_INPUTS)

@case
def numeric_options(a: Audit, fx: dict):
    d = a.tmp("numeric")
    (d / "layers.toml").write_text("[model]\nn_layers = 2.7\n")
    (d / "bs.toml").write_text("[train]\nbatch_size = 1e8\n")
    for cid, args, needles in [
        ("config-n-layers-2.7", ["--config", d / "layers.toml"], ["n_layers", "2.7"]),
        ("batch-size-1e8", ["--train.batch_size=1e8"], ["train.batch_size"]),
        ("context-1e12", ["--model.context=1e12"], ["model.context"]),
        ("lr-1e300", ["--optim.lr=1e300"], ["optim.lr"]),
        ("lr-nan", ["--optim.lr=nan"], ["optim.lr"]),
        ("steps-negative", ["--train.steps=-5"], ["train.steps"]),
        ("time-budget-negative", ["--train.time_budget_min=-1"], ["time_budget"]),
        ("eval-bytes-negative", ["--train.eval_bytes=-1"], ["eval_bytes"]),
        ("d-model-1e9", ["--model.d_model=1000000000"], ["memory"]),
        ("config-batch-size-1e8", ["--config", d / "bs.toml"], ["batch_size"]),
    ]:
        out = d / cid
        tiny = [x for x in TINY if not (cid.startswith("config-") and "batch_size" in x)]
        r = a.cli("train", *tiny, "--data", fx["corpus"], "--out", out, "--train.steps=2", *args)
        outcome, detail = clean_error(r, *needles)
        if outcome == "ok" and out.exists():
            outcome, detail = "bad-message", f"{detail} (but created {out})"
        a.record(cid, "config", " ".join(map(str, args)), "one-line error before anything is "
                 "written", outcome, detail, r)


# OS errors during saves

def _sh(argv) -> str:
    return shlex.join([os.fsdecode(x) if isinstance(x, bytes) else str(x) for x in argv])


@case
def os_errors(a: Audit, fx: dict):
    can, why = can_unshare()
    # file too large: RLIMIT_FSIZE below the weights' size, SIGXFSZ ignored -> EFBIG
    run = copy_run(a, fx, "efbig")
    before = ckpt_info(run / "ckpt" / "last")

    def fsize():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))
    r = a.cli(*resume_args(run, 18, "--train.eval_every=6"), preexec=fsize)
    _after_save_error(a, "file-too-large-save", "ulimit -f 300 KB (EFBIG on the weights file) "
                      "during a checkpoint save", r, run, before, "File too large")
    if not can:
        for cid in ("disk-full-save", "read-only-run-dir", "disk-full-prepare",
                    "read-only-prepare-out", "read-only-eval-json"):
            a.record(cid, "os-error", cid, "one-line error", "skipped", why)
        return
    # disk full: the run copied onto a tmpfs with room for ckpt/last's files but not another save
    d = a.tmp("disk-full")
    mnt = d / "mnt"
    mnt.mkdir()
    run = copy_run(a, fx, "disk-full-src")
    before = ckpt_info(run / "ckpt" / "last")
    used = sum(p.stat().st_size for p in run.rglob("*") if p.is_file())
    size_kb = (used + 900_000) // 1024
    check = f"{_sh([PY, __file__, '--_inspect', mnt / 'run'])}"
    argv = a.argv(*resume_args(mnt / "run", 18, "--train.eval_every=6"))
    script = (f"mount -t tmpfs -o size={size_kb}k tmpfs {shlex.quote(str(mnt))} && "
              f"cp -a {shlex.quote(str(run))} {shlex.quote(str(mnt))}/ && "
              f"{_sh(argv)} 2> {shlex.quote(str(d / 'err.txt'))}; echo \"rc=$?\"; {check}")
    _namespace_save(a, "disk-full-save", f"tmpfs of {size_kb} KB (ENOSPC) under the run during "
                    "a checkpoint save", script, d, before, "No space left on device", argv)
    # read-only run directory
    d = a.tmp("read-only")
    run = copy_run(a, fx, "read-only-src")
    before = ckpt_info(run / "ckpt" / "last")
    argv = a.argv(*resume_args(run, 18, "--train.eval_every=6"))
    check = _sh([PY, __file__, "--_inspect", run])
    q = shlex.quote(str(run))
    script = (f"mount --bind {q} {q} && mount -o remount,ro,bind {q} && "
              f"{_sh(argv)} 2> {shlex.quote(str(d / 'err.txt'))}; echo \"rc=$?\"; {check}")
    _namespace_save(a, "read-only-run-dir", "the run directory on a read-only mount, then "
                    "`train --resume`", script, d, before, "Read-only file system", argv)
    # prepare into a full disk and into a read-only folder
    for cid, opts, needle in [("disk-full-prepare", "size=48k", "No space left on device"),
                              ("read-only-prepare-out", "size=4m,ro", "Read-only file system")]:
        d = a.tmp(cid)
        mnt = d / "mnt"
        mnt.mkdir()
        argv = a.argv("prepare", fx["text"], "--out", mnt / "corpus")
        script = (f"mount -t tmpfs -o {opts} tmpfs {shlex.quote(str(mnt))} && "
                  f"{_sh(argv)} 2> {shlex.quote(str(d / 'err.txt'))}; echo \"rc=$?\"; "
                  f"ls -A {shlex.quote(str(mnt))}")
        rc, out, err, _ = a.shell_in_namespace(script)
        r = _ns_res(argv, out, d, script)
        outcome, detail = clean_error(r, needle)
        left = out.strip().splitlines()[1:]
        if outcome == "ok" and left:
            outcome, detail = "bad-message", f"{detail}; left behind: {left}"
        a.record(cid, "os-error", f"`prepare --out` on a {opts} tmpfs", "one-line error, "
                 "nothing left behind", outcome, detail, r)
    # eval --json into a read-only folder
    d = a.tmp("ro-json")
    mnt = d / "mnt"
    mnt.mkdir()
    argv = a.argv("eval", fx["ckpt"], "--max-bytes", "500", "--json", mnt / "res.json")
    script = (f"mount -t tmpfs -o size=64k,ro tmpfs {shlex.quote(str(mnt))} && "
              f"{_sh(argv)} 2> {shlex.quote(str(d / 'err.txt'))}; echo \"rc=$?\"")
    rc, out, err, _ = a.shell_in_namespace(script)
    r = _ns_res(argv, out, d, script)
    a.record("read-only-eval-json", "os-error", "`eval --json` into a read-only folder",
             "one-line error", *clean_error(r, "Read-only file system"), r)


def _ns_res(argv, out: str, d: Path, script: str) -> Res:
    rc = next((int(ln[3:]) for ln in out.splitlines() if ln.startswith("rc=")), -1)
    err = (d / "err.txt").read_bytes() if (d / "err.txt").exists() else b""
    return Res(argv, rc, b"", err, 0.0, shell="unshare -m sh -c " + shlex.quote(script))


def _namespace_save(a, cid, fault, script, d, before, needle, argv):
    t0 = time.perf_counter()
    rc, out, err, _ = a.shell_in_namespace(script)
    r = _ns_res(argv, out, d, script)
    r.seconds = time.perf_counter() - t0
    try:
        after = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        after = {"loadable": False, "error": f"no inspection: {out[-200:]!r} {err[-200:]!r}"}
    _classify_save(a, cid, fault, r, before, after, needle)


def _after_save_error(a, cid, fault, r, run, before, needle):
    after = ckpt_info(run / "ckpt" / "last")
    after["temps"] = temps(run)
    _classify_save(a, cid, fault, r, before, after, needle)


def _classify_save(a, cid, fault, r, before, after, needle):
    outcome, detail = clean_error(r, "cannot save", needle) if needle != "Read-only file system" \
        else clean_error(r, needle)
    if not after.get("loadable"):
        outcome, detail = "data-loss", f"{detail} | ckpt/last: {after.get('error')}"
    elif after.get("sha") != before.get("sha") and after.get("step") == before.get("step"):
        outcome, detail = "data-loss", f"{detail} | ckpt/last changed at the same step"
    elif after.get("temps"):
        if outcome == "ok":
            outcome = "bad-message"
        detail += f" | left {after['temps']}"
    else:
        detail += f" | ckpt/last step {after.get('step')} loads (was {before.get('step')})"
    a.record(cid, "os-error", fault, "one-line error; the previous checkpoint intact", outcome,
             detail, r)


# stale temporary folders

@case
def stale_temps(a: Audit, fx: dict):
    run = copy_run(a, fx, "stale-ckpt")
    (run / "ckpt" / ".last.tmp-999999").mkdir()
    (run / "ckpt" / ".last.tmp-999999" / "model.safetensors").write_bytes(b"x" * 100_000)
    (run / ".summary.json.tmp-999999").write_text("{")
    r = a.cli(*resume_args(run, 14))
    left = temps(run)
    outcome = "ok" if r.rc == 0 and not left else ("bad-message" if r.rc == 0 else clean_error(r)[0])
    a.record("stale-ckpt-tmp", "stale", "ckpt/.last.tmp-999999 and .summary.json.tmp-999999 left "
             "by a killed writer", "removed by the next resume, which runs", outcome,
             f"rc {r.rc}; left: {left or 'none'}", r)
    d = a.tmp("stale-prepare")
    out = d / "corpus"
    junk = d / ".corpus.tmp-999999-0123456789ab"
    junk.mkdir()
    (junk / "train.bin").write_bytes(b"x" * 1_000_000)
    r = a.cli("prepare", fx["text"], "--out", out)
    outcome = "ok" if r.rc == 0 and not junk.exists() else ("bad-message" if r.rc == 0 else clean_error(r)[0])
    a.record("stale-prepare-tmp", "stale", "a .corpus.tmp-PID-HEX folder of a killed prepare",
             "removed by the next prepare of that corpus", outcome,
             f"rc {r.rc}; junk {'still there' if junk.exists() else 'removed'}", r)


# non-UTF-8 text

@case
def non_utf8(a: Audit, fx: dict):
    raw = b"ab\xff\xfe"
    gen = ["--temperature", "0", "--max-bytes", "6"]
    ck = fx["ckpt"]
    r_arg = a.cli("generate", ck, "--prompt", os.fsdecode(raw), *gen)
    r_stdin = a.cli("generate", ck, "--prompt", "-", *gen, stdin=raw)

    def same(r, ref, what):
        if "Traceback" in r.err:
            return clean_error(r)
        if r.rc != 0:
            o, msg = clean_error(r)
            return ("bad-message" if o == "ok" else o), f"refused: {msg}"
        if ref is not None and r.out != ref.out:
            return "silent-wrong", f"{what}: {r.out!r} differs from --prompt - {ref.out!r}"
        return "ok", f"{what}: exit 0, output {r.out.strip()[:40]!r}"
    a.record("non-utf8-prompt-argv", "non-utf8", "--prompt with the bytes ab\\xff\\xfe in argv "
             "(LC_ALL=C.UTF-8)", "the bytes reach the model as they are (same output as the same "
             "bytes on stdin)", *same(r_arg, r_stdin, "argv"), r_arg)
    r = a.cli("generate", ck, "--interactive", *gen, stdin=raw + b"\n\n")
    a.record("non-utf8-interactive", "non-utf8", "ab\\xff\\xfe as an --interactive line",
             "generated from those bytes", *same(r, r_stdin, "interactive"), r)
    r = a.cli("chat", ck, "--temperature", "0", "--max-bytes", "6", stdin=raw + b"\n\n")
    a.record("non-utf8-chat", "non-utf8", "ab\\xff\\xfe as a `chat` line", "a reply, no traceback",
             *same(r, None, "chat"), r)
    r = a.cli("generate", ck, "--prompt", "ab", "--stop", os.fsdecode(b"\xff"), *gen)
    a.record("non-utf8-stop", "non-utf8", "--stop with the byte \\xff", "accepted as a byte",
             *same(r, None, "stop"), r)
    # an undertrained model at temperature 1 prints bytes that are not UTF-8 (U+FFFD) and
    # characters latin-1 lacks
    r = a.cli("generate", ck, "--prompt", os.fsdecode(raw), "--temperature", "1", "--seed", "0",
              "--max-bytes", "64", env={"PYTHONIOENCODING": "latin-1"})
    a.record("non-utf8-terminal", "non-utf8", "generate on a latin-1 terminal "
             "(PYTHONIOENCODING=latin-1)", "output printed (unprintable bytes replaced), no "
             "traceback", *same(r, None, "latin-1 stdout"), r)
    r = a.cli("demo", "--preset", "transformer-tiny", "--minutes", "0.02", "--eval-bytes", "1000",
              "--out", a.tmp("demo") / "demo", "--prompt", os.fsdecode(b"\xffde"),
              "--train.eval_bytes=512")
    a.record("non-utf8-demo-prompt", "non-utf8", "demo --prompt with the byte \\xff",
             "the sample generated from those bytes", *same(r, None, "demo"), r)
    # non-UTF-8 file names: a source, a corpus folder and a run folder
    d = a.tmp("non-utf8-paths")
    src = Path(os.fsdecode(bytes(d) + b"/t\xff.txt"))
    shutil.copy(fx["text"], src)
    corpus = Path(os.fsdecode(bytes(d) + b"/c\xff"))
    r = a.cli("prepare", src, "--out", corpus)
    a.record("non-utf8-path-prepare", "non-utf8", "prepare t\\xff.txt --out c\\xff",
             "prepared (file names are bytes too)", *same(r, None, "prepare"), r)
    run = Path(os.fsdecode(bytes(d) + b"/r\xff"))
    r = a.cli("train", *TINY, "--data", corpus if corpus.exists() else fx["corpus"], "--out", run,
              "--train.steps=2", "--train.eval_bytes=256")
    a.record("non-utf8-path-train", "non-utf8", "train --out r\\xff", "trained",
             *same(r, None, "train"), r)
    r = a.cli("generate", run, "--prompt", "ab", *gen)
    a.record("non-utf8-path-generate", "non-utf8", "generate r\\xff (a run in a non-UTF-8 path)",
             "generated", *same(r, None, "generate"), r)
    r = a.cli(*resume_args(run, 4))
    a.record("non-utf8-path-resume", "non-utf8", "train --resume --out r\\xff", "resumed",
             *same(r, None, "resume"), r)


# --- bad inputs (one process, main() per input) ----------------------------------------------

def bad_inputs(fx: dict, d: Path) -> list[dict]:
    """Each: id, argv (str with {ckpt} {run} {corpus} {text} {d} placeholders), stdin, needles."""
    (d / "dir").mkdir()
    (d / "file.txt").write_text("hello")
    (d / "empty.txt").write_bytes(b"")
    (d / "short.txt").write_bytes(b"hi\n")
    (d / "broken.toml").write_text("[train\nsteps = ")
    (d / "unknown.toml").write_text("[train]\nstepz = 3\n")
    (d / "badtype.toml").write_text("[optim]\nlr = \"fast\"\n")
    (d / "bad.jsonl").write_bytes(b'{"text": "a"}\nnot json\n')
    (d / "nofield.jsonl").write_bytes(b'{"body": "a"}\n' * 50)
    (d / "p.jsonl").write_bytes(b'"ab"\n{"prompt": 3}\n')
    (d / "foreign").mkdir()
    (d / "foreign" / "notes.txt").write_text("precious")
    (d / "s.bin").write_bytes(bytes(range(256)) * 4)
    T = ["train", *TINY, "--data", "{corpus}", "--out", "{d}/run", "--train.steps=2"]
    G = ["generate", "{ckpt}", "--max-bytes", "4"]
    L = ["live", "{ckpt}", "--stream", "{d}/s.bin", "--out", "{d}/live"]
    rows = [
        # prepare
        (["prepare", "{d}/nope.txt", "--out", "{d}/o"], ["source not found"]),
        (["prepare", "{d}/empty.txt", "--out", "{d}/o"], ["empty"]),
        (["prepare", "{d}/short.txt", "--out", "{d}/o"], ["split is empty"]),
        (["prepare", "{text}", "--out", "{d}/file.txt"], []),
        (["prepare", "{text}", "--out", "{d}/foreign"], ["refusing to overwrite"]),
        (["prepare", "{text}", "--out", "{d}/o", "--split-rule", "bogus"], ["--split-rule"]),
        (["prepare", "{text}", "--out", "{d}/o", "--format", "bogus"], ["--format"]),
        (["prepare", "{d}/bad.jsonl", "--out", "{d}/o"], ["bad.jsonl"]),
        (["prepare", "{d}/nofield.jsonl", "--out", "{d}/o"], ["text"]),
        (["prepare", "{d}/nofield.jsonl", "--out", "{d}/o", "--text-field", "a.b.c"], []),
        (["prepare", "{d}/dir", "--out", "{d}/o"], []),
        (["prepare", "{d}", "--out", "{d}/o", "--pattern", "*.nothing"], []),
        (["prepare", "{text}", "--out", "{d}/o", "--doc-sep", "\\x"], []),
        (["prepare", "-", "--out", "{d}/o"], []),
        (["prepare", "--out", "{d}/o"], []),
        # train
        (T + ["--preset", "transformer-tinny"], ["did you mean 'transformer-tiny'"]),
        (T + ["--data", "{d}/nope"], ["not a prepared corpus"]),
        (T + ["--data", "{d}/dir"], ["not a prepared corpus"]),
        (T + ["--train.stepz=3"], ["did you mean --train.steps?"]),
        (T + ["--train.steps=abc"], ["train.steps"]),
        (T + ["--train.steps=0"], ["train.steps"]),
        (T + ["--train.steps=2.5"], ["train.steps"]),
        (T + ["--optim.lr=-1"], ["optim.lr"]),
        (T + ["--optim.lr=inf"], ["optim.lr"]),
        (T + ["--optim.lr=0"], ["optim.lr"]),
        (T + ["--train.batch_size=0"], ["batch_size"]),
        (T + ["--train.batch_size=-3"], ["batch_size"]),
        (T + ["--model.context=0"], ["context"]),
        (T + ["--model.context=-128"], ["context"]),
        (T + ["--model.n_layers=0"], ["n_layers"]),
        (T + ["--model.n_heads=3"], ["n_heads"]),
        (T + ["--model.d_model=0"], ["d_model"]),
        (T + ["--model.dropout=1.5"], ["dropout"]),
        (T + ["--model.dropout=nan"], ["dropout"]),
        (T + ["--optim.weight_decay=nan"], ["weight_decay"]),
        (T + ["--optim.weight_decay=-1"], ["weight_decay"]),
        (T + ["--optim.warmup_steps=-1"], ["warmup"]),
        (T + ["--optim.grad_clip=-1"], ["grad_clip"]),
        (T + ["--optim.grad_clip=nan"], ["grad_clip"]),
        (T + ["--optim.betas=0.9"], ["betas"]),
        (T + ["--optim.betas=[0.9,1.5]"], ["betas"]),
        (T + ["--optim.schedule=foo"], ["optim.schedule"]),
        (T + ["--optim.name=foo"], ["optim.name"]),
        (T + ["--train.eval_every=-1"], ["eval_every"]),
        (T + ["--train.eval_bytes=-1"], ["eval_bytes"]),
        (T + ["--train.time_budget_min=nan"], ["time_budget"]),
        (T + ["--train.time_budget_min=-1"], ["time_budget"]),
        (T + ["--train.seed=abc"], ["train.seed"]),
        (T + ["--train.device=bogus"], ["bogus"]),
        (T + ["--train.precision=fp64"], ["precision"]),
        (T + ["--data.seq_len=-1"], ["seq_len"]),
        (T + ["--data.seq_len=999999"], ["999999"]),
        (T + ["--train.wandb=true"], ["wandb"]),
        (T + ["--train.progress=maybe"], ["progress"]),
        (T + ["--foo"], ["'--foo'"]),
        (T + ["--train.steps"], ["needs a value"]),
        (T + ["--config", "{d}/nope.toml"], ["config file not found"]),
        (T + ["--config", "{d}/broken.toml"], ["cannot parse config file"]),
        (T + ["--config", "{d}/unknown.toml"], ["stepz"]),
        (T + ["--config", "{d}/badtype.toml"], ["optim.lr"]),
        (T + ["--config", "{d}/dir"], []),
        (T + ["--out", "{d}/file.txt"], ["not a folder"]),
        (T + ["--out", "{run}"], ["already holds a run"]),
        (["train", "--out", "{d}/dir", "--resume"], ["nothing to resume"]),
        (["train", "--resume"], ["--out"]),
        (T + ["--train.batch_size=1e8"], ["batch_size"]),
        (T + ["--model.context=1e12"], ["context"]),
        (T + ["--optim.lr=1e300"], ["optim.lr"]),
        # eval
        (["eval", "{d}/nope"], ["checkpoint not found"]),
        (["eval", "{d}/dir"], ["not a bytelm checkpoint"]),
        (["eval", "{ckpt}", "--seq-len", "999"], ["--seq-len"]),
        (["eval", "{ckpt}", "--seq-len", "-1"], ["--seq-len"]),
        (["eval", "{ckpt}", "--max-bytes", "-5"], ["--max-bytes"]),
        (["eval", "{ckpt}", "--split", "dev"], ["--split"]),
        (["eval", "{ckpt}", "--device", "bogus"], ["bogus"]),
        (["eval", "{ckpt}", "--json", "{d}/dir"], ["folder"]),
        (["eval", "{ckpt}", "--data", "{d}/nope"], []),
        (["eval", "{ckpt}", "--data", "{d}/dir"], []),
        (["eval", "{ckpt}", "--batch-size", "0"], []),
        # generate
        (G + ["--prompt", ""], ["prompt is empty"]),
        (G + ["--prompt-file", "{d}/nope.txt"], ["prompt file not found"]),
        (G + ["--prompt-file", "{d}/dir"], ["prompt file is a folder"]),
        (G + ["--prompt-file", "{d}/empty.txt"], ["empty"]),
        (G + ["--prompt", "a", "--top-p", "0"], ["--top-p"]),
        (G + ["--prompt", "a", "--top-p", "nan"], ["--top-p"]),
        (G + ["--prompt", "a", "--top-k", "300"], ["--top-k"]),
        (G + ["--prompt", "a", "--temperature", "-1"], ["--temperature"]),
        (G + ["--prompt", "a", "--temperature", "nan"], ["--temperature"]),
        (G + ["--prompt", "a", "--temperature", "inf"], ["--temperature"]),
        (["generate", "{ckpt}", "--prompt", "a", "--max-bytes", "0"], ["--max-bytes"]),
        (G + ["--prompt", "a", "--entropy-low", "5", "--entropy-high", "1"], ["entropy"]),
        (G + ["--prompt", "a", "--decode", "bogus"], ["--decode"]),
        (G + ["--prompt", "a", "--stop", "\\x"], ["escape"]),
        (G + ["--prompt", "a", "--seed", "abc"], ["--seed"]),
        (G + ["--prompt", "a", "--device", "bogus"], ["bogus"]),
        (G, ["--prompt"]),
        (G + ["--prompts-file", "{d}/nope.txt"], ["prompts file not found"]),
        (G + ["--prompts-file", "{d}/p.jsonl"], ["p.jsonl:2"]),
        (G + ["--prompts-file", "{d}/p.jsonl", "--interactive"], ["--prompts-file"]),
        (["generate", "{d}/nope", "--prompt", "a"], ["checkpoint not found"]),
        (G + ["--prompt", "-"], ["prompt is empty"]),
        # chat
        (["chat", "{ckpt}", "--max-bytes", "0"], ["--max-bytes"]),
        (["chat", "{d}/nope"], ["checkpoint not found"]),
        (["chat", "{ckpt}", "--stop", "\\x"], ["escape"]),
        (["chat", "{ckpt}", "--temperature", "-1"], ["--temperature"]),
        (["chat", "{ckpt}", "--top-p", "0"], ["--top-p"]),
        (["chat", "{ckpt}", "--top-k", "999"], ["--top-k"]),
        # info / top level
        (["info", "transformer-tinny"], ["did you mean 'transformer-tiny'"]),
        (["info", "--foo"], []),
        ([], []),
        (["bogus"], []),
        # inspect / export-hf / plot
        (["inspect", "{d}/nope"], ["not found"]),
        (["inspect", "{ckpt}", "--bytes", "-1"], ["--bytes"]),
        (["export-hf", "{d}/nope", "{d}/hf"], ["not found"]),
        (["export-hf", "{ckpt}", "{d}/foreign"], []),
        (["export-hf", "{ckpt}", "{d}/file.txt"], []),
        (["plot", "{d}/nope"], []),
        (["plot", "{d}/dir"], []),
        # needle / recall / patch / overfit / kasgarli / bench / serve
        (["needle", "{ckpt}", "--lengths", "abc"], ["--lengths"]),
        (["needle", "{ckpt}", "--depths", "2.0"], ["--depths"]),
        (["needle", "{ckpt}", "--haystack", "{d}/nope"], []),
        (["needle", "{d}/nope"], ["not found"]),
        (["recall", "--steps", "0"], ["--steps"]),
        (["recall", "--lengths", "abc"], ["--lengths"]),
        (["recall", "--pairs", "-1"], ["--pairs"]),
        (["recall", "--models", "bogus"], ["bogus"]),
        (["patch", "{d}/nope.txt"], ["not found"]),
        (["patch", "{d}/file.txt", "--patcher", "bogus"], ["bogus"]),
        (["patch", "{d}/file.txt", "--patcher", "fixed", "--patch-size", "0"], ["patch_size"]),
        (["patch", "{d}/file.txt", "--threshold", "nan"], []),
        (["patch", "{d}/file.txt", "--max-bytes", "-1"], ["--max-bytes"]),
        (["patch", "{d}/file.txt", "--run", "{d}/nope"], ["not found"]),
        (["overfit", "--steps", "0"], ["--steps"]),
        (["overfit", "--preset", "bogus"], ["bogus"]),
        (["overfit", "--lr", "-1"], ["--lr"]),
        (["overfit", "--batch", "0"], ["--batch"]),
        (["overfit", "--target", "nan"], ["--target"]),
        (["kasgarli", "--corpus", "{d}/nope"], []),
        (["kasgarli", "--steps", "0"], ["--steps"]),
        (["kasgarli", "--langs", "xx"], []),
        (["bench", "train", "--presets", "bogus"], []),
        (["bench", "generate", "{d}/nope"], []),
        (["bench", "mixer", "--op", "bogus"], []),
        (["serve", "{d}/nope"], ["not found"]),
        (["serve", "{ckpt}", "--port", "99999"], ["--port"]),
        (["serve", "{ckpt}", "--max-bytes", "0"], ["--max-bytes"]),
        # live
        (L[:3] + ["{d}/nope"] + L[4:], ["file not found"]),
        (L + ["--context", "129"], ["exceeds the model context"]),
        (L + ["--capacity", "0"], ["capacity"]),
        (L + ["--lr", "nan"], ["finite"]),
        (L + ["--lr", "abc"], ["invalid float"]),
        (L + ["--min-scale", "2"], ["min scale"]),
        (L + ["--resume"], ["needs a live checkpoint"]),
        (L + ["--replay-from", "{d}/s.bin"], ["needs --replay"]),
        (L[:4] + ["--out", "{d}/file.txt"], ["not a folder"]),
        (L[:3] + ["{d}/dir"] + L[4:], ["is a folder"]),
        (L + ["--eval-data", "{d}/nope"], ["not found"]),
        (L + ["--eval-bytes", "-1"], ["--eval-bytes"]),
        (L + ["--batch-size", "0"], ["batch"]),
        (["live", "{d}/nope", "--stream", "{d}/s.bin"], ["not found"]),
        # demo
        (["demo", "--minutes", "0"], ["--minutes"]),
        (["demo", "--minutes", "nan"], ["--minutes"]),
        (["demo", "--out", "{d}/foreign"], ["not a bytelm run"]),
        (["demo", "--preset", "bogus", "--out", "{d}/demo"], ["bogus"]),
        (["demo", "--eval-bytes", "-1", "--out", "{d}/demo"], ["--eval-bytes"]),
        # lm-eval: its own logging comes first (lm_eval's, not ours)
        (["lm-eval", "--model_args", "pretrained={d}/nope"], ["lm_eval"], "foreign-logs"),
    ]
    out = []
    fill = {"ckpt": str(fx["ckpt"]), "run": str(fx["run"]), "corpus": str(fx["corpus"]),
            "text": str(fx["text"]), "d": str(d)}
    for i, (argv, needles, *flags) in enumerate(rows):
        tail = argv
        for common in (T, G, L):  # the id names what differs from the command's usual form
            if argv[:len(common)] == common:
                tail = [argv[0]] + argv[len(common):]
                break
        slug = "-".join(Path(x).name if "{" in x else x.strip("-") for x in tail)[:60]
        out.append({"id": f"bad-{i:03d}-{slug or 'no-command'}",
                    "argv": [x.format(**fill) for x in argv], "needles": needles,
                    "foreign_logs": "foreign-logs" in flags})
    return out


class _Hang(BaseException):
    """Raised by SIGALRM in the batch child: an input ran for BATCH_LIMIT_S seconds."""


BATCH_LIMIT_S = 30


def _alarm(signum, frame):
    raise _Hang(f"still running after {BATCH_LIMIT_S} s")


def run_batch(path: Path) -> None:
    """Child mode: every input of the JSON list through ``main`` with its own stdio; a row is
    written after each input (a crash of the child loses nothing done before it)."""
    sys.path.insert(0, str(SRC))
    import logging
    from bytelm.cli.__main__ import main
    cases = json.loads(path.read_text())
    rows = []
    signal.signal(signal.SIGALRM, _alarm)
    done = path.with_suffix(".out.json")
    for c in cases:
        out_b, err_b = io.BytesIO(), io.BytesIO()
        so = io.TextIOWrapper(out_b, encoding="utf-8", errors="strict", write_through=True)
        se = io.TextIOWrapper(err_b, encoding="utf-8", errors="backslashreplace", write_through=True)
        si = io.TextIOWrapper(io.BytesIO(base64.b64decode(c.get("stdin", ""))), encoding="utf-8")
        old = sys.stdout, sys.stderr, sys.stdin
        root = logging.getLogger()
        for h in list(root.handlers):
            root.removeHandler(h)
        sys.stdout, sys.stderr, sys.stdin = so, se, si
        t = time.perf_counter()
        hang = False
        signal.alarm(BATCH_LIMIT_S)
        try:
            rc = main(list(c["argv"]))
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        except _Hang:
            rc, hang = None, True
        except BaseException:  # noqa: BLE001 - what escapes main() is the traceback a user sees
            traceback.print_exc(file=se)
            rc = 1
        finally:
            signal.alarm(0)
            sys.stdout, sys.stderr, sys.stdin = old
        rows.append({"rc": rc, "hang": hang, "out": out_b.getvalue().decode("utf-8", "replace"),
                     "err": err_b.getvalue().decode("utf-8", "replace"),
                     "seconds": time.perf_counter() - t})
        done.write_text(json.dumps(rows))


@case
def bad_input_table(a: Audit, fx: dict):
    d = a.tmp("bad-inputs")
    cases = bad_inputs(fx, d)
    spec = d / "cases.json"
    spec.write_text(json.dumps(cases))
    t = time.perf_counter()
    p = subprocess.run([PY, __file__, "--_batch", spec], env=a.env, cwd=d, capture_output=True,
                       timeout=900)
    done = spec.with_suffix(".out.json")
    rows = json.loads(done.read_text()) if done.exists() else []
    if p.returncode != 0:
        a.record("bad-input-table", "bad-input", f"the table stopped after {len(rows)} inputs",
                 "ran", "traceback", p.stderr.decode()[-500:])
    for c, row in zip(cases, rows):
        argv = a.argv(*c["argv"])
        r = Res(argv, row["rc"] if row["rc"] is not None else -1, row["out"].encode(),
                row["err"].encode(), row["seconds"])
        outcome, detail = clean_error(r, *c["needles"], allow_logs=False,
                                      foreign_logs=c["foreign_logs"])
        if row.get("hang"):
            outcome, detail = "silent-wrong", (f"accepted: still running after {BATCH_LIMIT_S} s "
                                               f"(stdout so far {r.out[-100:]!r})")
        elif outcome == "ok" and r.out:
            outcome, detail = "bad-message", f"{detail}; but printed {r.out[:120]!r} on stdout"
        a.record(c["id"], "bad-input", " ".join(c["argv"][:6]), "exit 2, one line, no stdout",
                 outcome, detail, r)
    print(f"   bad-input table: {len(cases)} inputs in {time.perf_counter() - t:.1f} s", flush=True)


# --- main ------------------------------------------------------------------------------------

def summarize(results: list[dict]) -> dict:
    by = {o: 0 for o in OUTCOMES}
    for r in results:
        by[r["outcome"]] += 1
    groups = {}
    for r in results:
        g = groups.setdefault(r["group"], {o: 0 for o in OUTCOMES})
        g[r["outcome"]] += 1
    return {"cases": len(results), "by_outcome": by,
            "by_group": {g: {k: v for k, v in c.items() if v} for g, c in groups.items()},
            "not_ok": [f"{r['id']}: {r['outcome']}: {r['detail'][:200]}" for r in results
                       if r["outcome"] != "ok"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--only", default="", help="comma-separated words: run cases whose function "
                                               "name contains one")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--_batch", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--_inspect", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._batch:
        run_batch(args._batch)
        return 0
    if args._inspect:  # used inside a mount namespace, where the checkpoint lives
        run = args._inspect
        info = ckpt_info(run / "ckpt" / "last")
        info["temps"] = temps(run)
        print(json.dumps(info))
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="bytelm-fault-audit-"))
    work.mkdir(parents=True, exist_ok=True)
    a = Audit(work)
    t0 = time.perf_counter()
    load0 = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else None
    fx = setup(a)
    print(f"setup: {fx['setup_s']:.1f} s (corpus + base run in {work})", flush=True)
    words = [w for w in args.only.split(",") if w]
    for fn in CASES:
        if words and not any(w in fn.__name__ for w in words):
            continue
        t = time.perf_counter()
        try:
            fn(a, fx)
        except Exception as e:  # noqa: BLE001 - a broken case is reported, the audit goes on
            a.record(fn.__name__, "audit", "the case itself failed", "-", "skipped",
                     f"audit error: {type(e).__name__}: {e} "
                     f"{traceback.format_exc().splitlines()[-3:]}")
        print(f"   [{fn.__name__}: {time.perf_counter() - t:.1f} s]", flush=True)
    load1 = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else None
    wall = time.perf_counter() - t0
    doc = {
        "command": "python benchmarks/fault_audit.py" + (f" --only {args.only}" if args.only else ""),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "loadavg_before": load0,
                    "loadavg_after": load1, "root": os.geteuid() == 0},
        "wall_s": round(wall, 1),
        "summary": summarize(a.results),
        "cases": a.results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, ensure_ascii=True) + "\n")
    s = doc["summary"]
    print(f"\n{s['cases']} cases in {wall:.0f} s: " +
          ", ".join(f"{k} {v}" for k, v in s["by_outcome"].items() if v))
    for line in s["not_ok"]:
        print("  -", line)
    print(f"wrote {args.out}")
    if not args.keep and args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
