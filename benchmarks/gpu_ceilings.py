"""Measures the two hardware ceilings on this GPU: bf16 matmul rate and device copy bandwidth.

Prints JSON; imported by the other benchmark scripts so every result file carries them. A thin
wrapper: the measurement lives in ``bytelm.bench.ceilings`` (also used by ``bytelm bench``).
"""
import json

import torch


def measure() -> dict:
    """The ceilings under the key names of the earlier result files ({"device": "cpu"} on CPU)."""
    if not torch.cuda.is_available():
        return {"device": "cpu"}
    from bytelm.bench.ceilings import measure as measure_ceilings
    c = measure_ceilings("cuda")
    return {"device": c["device_name"], "torch": c["torch"],
            "bf16_matmul_tflops_measured": c["matmul_tflops_measured"],
            "copy_tb_per_s_measured": c["copy_tb_per_s_measured"]}


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
