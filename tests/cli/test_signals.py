"""SIGTERM and SIGHUP (a scheduler, docker stop, a closed terminal) end `bytelm train` the way
Ctrl-C does: one line, exit 128 + signal, the last checkpoint intact, no temporary folders."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("signame", ["SIGTERM"])
def test_train_stops_cleanly_on_sigterm(corpus, tmp_path, cli_cache, signame):
    run = tmp_path / "R"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "BYTELM_CACHE": str(cli_cache),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bytelm", "train", "--preset", "transformer-tiny", "--data", str(corpus),
         "--out", str(run), "--train.steps=100000", "--train.batch_size=2", "--train.eval_every=3",
         "--train.eval_bytes=256", "--train.progress=false", "--train.device=cpu"],
        env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (run / "ckpt" / "last" / "trainer_state.json").is_file():
            assert proc.poll() is None and time.time() < deadline, "training never checkpointed"
            time.sleep(0.05)
        proc.send_signal(getattr(signal, signame))
        err = proc.communicate(timeout=60)[1]
    finally:
        proc.kill()
    assert proc.returncode == 128 + getattr(signal, signame), err
    assert "Traceback" not in err and err.splitlines()[-1] == f"bytelm: stopped by {signame}"
    assert not [p for p in run.rglob("*") if ".tmp-" in p.name]
    from bytelm.train.checkpoint import load_training
    state = load_training(run / "ckpt" / "last")[0]
    assert state["step"] >= 3 and state["step"] % 3 == 0
