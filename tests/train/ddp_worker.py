"""Run under ``torchrun --nproc_per_node=2`` by test_distributed.py (not a test module itself).

Usage: ddp_worker.py CORPUS OUT_ROOT RESULT_JSON PARALLEL [PARALLEL ...] [key=value ...]

For each PARALLEL strategy (ddp, fsdp) trains a Trainer in OUT_ROOT/<strategy> and records, on
rank 0, the per-step losses from metrics.jsonl and, from every rank, a checksum of the full
parameters (gathered with all_gather_object) so the test can assert the ranks stayed in sync.
"""
import json
import sys
from datetime import timedelta

import torch
import torch.distributed as dist

from bytelm.options import build_run_config
from bytelm.train.loop import Trainer
from bytelm.train.metrics import read_metrics


def full_params(model) -> dict[str, torch.Tensor]:
    out = {}
    for name, p in model.named_parameters():
        t = p.detach()
        if hasattr(t, "full_tensor"):  # FSDP2 DTensor shard
            t = t.full_tensor()
        out[name] = t.cpu().double()
    return out


def main() -> None:
    torch.set_num_threads(1)
    # a collective that deadlocks fails after 30 s instead of hanging the test (the trainer's
    # setup finds the group already initialised)
    dist.init_process_group("gloo", timeout=timedelta(seconds=30))
    corpus, out_root, result_path, *rest = sys.argv[1:]
    strategies = [a for a in rest if "=" not in a]
    extra = dict(a.split("=", 1) for a in rest if "=" in a)
    results = {}
    for strategy in strategies:
        overrides = {"data.path": corpus, "train.out_dir": f"{out_root}/{strategy}",
                     "train.device": "cpu", "train.progress": False, "train.parallel": strategy,
                     **extra}
        cfg = build_run_config("transformer-tiny", overrides)
        trainer = Trainer(cfg)
        summary = trainer.run()
        params = full_params(trainer.model)
        checksum = [float(sum(v.sum() for v in params.values())),
                    float(sum((v * v).sum() for v in params.values()))]
        sums = [None] * dist.get_world_size()
        dist.all_gather_object(sums, checksum)
        recs = read_metrics(cfg.train.out_dir) if trainer.info.is_main else []
        losses = [x for r in recs if r["kind"] == "train" for x in r["losses"]]
        vals = [r["bpb"] for r in recs if r["kind"] == "val"]
        results[strategy] = {"losses": losses, "val_bpb": vals, "checksums": sums,
                             "world_size": summary["world_size"], "steps": summary["steps"]}
        dist.barrier()
        if dist.get_rank() == 0:  # after every strategy, so one that fails keeps the others
            with open(result_path, "w") as f:
                json.dump(results, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
