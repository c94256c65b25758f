"""DDP and FSDP2 on CPU (gloo, 2 processes under torchrun) against a single-process run.

Two ranks with batch_size b see exactly the rows of one process with batch_size 2b (the sampler
slices each global batch), so losses and weights must agree up to float reduction order.
"""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bytelm.options import build_run_config
from bytelm.train.loop import train

from tests.conftest import threads
from tests.train._helpers import ckpt_weights, step_losses
from tests.train.conftest import BASE

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("ddp_worker.py")
STEPS = 6
# eval_bytes=300 makes a single validation batch: rank 1 gets none, the case where a collective
# inside the forward (DDP buffer broadcast, FSDP all-gather) used to deadlock
COMMON = {"train.steps": STEPS, "train.eval_every": 3, "train.eval_bytes": 300,
          "train.log_every": 1, "optim.warmup_steps": 2}
B = 2  # per-rank batch


@pytest.fixture(scope="module")
def runs(corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    with threads(1):
        ref = build_run_config("transformer-tiny", {**BASE, **COMMON, "data.path": str(corpus),
                                                    "train.out_dir": str(root / "single"),
                                                    "train.batch_size": 2 * B})
        summary = train(ref)
    overrides = [f"{k}={v}" for k, v in {**COMMON, "train.batch_size": B, "train.seed": BASE["train.seed"],
                                          "eval.batch_size": BASE["eval.batch_size"]}.items()]
    result = root / "result.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(WORKER), str(corpus), str(root), str(result), "ddp", "fsdp", *overrides]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.terminate()  # torchrun passes SIGTERM on to its workers (SIGKILL would orphan them)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out = ""
        out = "TIMEOUT (a collective deadlocked?)\n" + (out or "")
    results = json.loads(result.read_text()) if result.is_file() else {}
    return {"root": root, "single": summary, "results": results, "rc": proc.returncode, "log": out}


def _get(runs, strategy):
    if strategy not in runs["results"]:
        pytest.fail(f"{strategy} run failed (rc={runs['rc']}):\n{runs['log'][-4000:]}")
    return runs["results"][strategy]


def _assert_matches_single(runs, strategy):
    res = _get(runs, strategy)
    single = runs["root"] / "single"
    assert res["world_size"] == 2 and res["steps"] == STEPS
    ref_losses = [v for _, v in step_losses(single)]
    assert len(res["losses"]) == len(ref_losses) == STEPS
    assert res["losses"] == pytest.approx(ref_losses, rel=1e-5, abs=0)
    ref_val = [r["bpb"] for r in map(json.loads, (single / "metrics.jsonl").read_text().splitlines())
               if r["kind"] == "val"]
    assert res["val_bpb"] == pytest.approx(ref_val, rel=1e-5)
    # the two ranks hold the same parameters (checksums gathered with all_gather_object)
    (s0, q0), (s1, q1) = res["checksums"]
    assert (s0, q0) == (s1, q1)
    # the checkpoint written by rank 0 (full state dict) matches the single-process weights
    a = ckpt_weights(single / "ckpt" / "last")
    b = ckpt_weights(runs["root"] / strategy / "ckpt" / "last")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-5, msg=f"{strategy}: {k}")
    state = json.loads((runs["root"] / strategy / "ckpt" / "last" / "trainer_state.json").read_text())
    assert state["step"] == STEPS and state["world_size"] == 2
    assert state["sampler"]["batch_index"] == STEPS


def test_ddp_matches_single_process(runs):
    _assert_matches_single(runs, "ddp")


def test_fsdp2_matches_single_process_and_ddp(runs):
    _assert_matches_single(runs, "fsdp")
    assert _get(runs, "fsdp")["losses"] == pytest.approx(_get(runs, "ddp")["losses"], rel=1e-5)
