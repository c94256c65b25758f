"""benchmarks/profile_train.py on CPU (agiformer-tiny, one profiled step): the JSON's fields are
present and consistent (ops counted, shares summing to 1, gpu_* null on CPU), the table prints,
and kernel names fall into the intended categories."""
import json
import math
from types import SimpleNamespace

import pytest

from tests.scripts import load_benchmark


@pytest.fixture(scope="module")
def profile_train():
    return load_benchmark("profile_train")


def _pos(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_profile_train_cpu(profile_train, tmp_path, capsys, one_thread):
    out = tmp_path / "prof.json"
    profile_train.main(["--preset", "agiformer-tiny", "--device", "cpu", "--batch", "2",
                        "--seq-len", "32", "--steps", "1", "--warmup", "0", "--top", "10",
                        "--out", str(out)])
    printed = capsys.readouterr().out
    res = json.loads(out.read_text())
    assert res["command"].startswith("python benchmarks/profile_train.py --preset agiformer-tiny")
    assert res["git_commit"] and res["device"] == "cpu" and res["device_name"]
    assert res["kernel_source"].startswith("cpu")
    assert (res["preset"], res["batch"], res["seq_len"], res["profiled_steps"]) == (
        "agiformer-tiny", 2, 32, 1)
    for key in ("gpu_busy_ms_per_step", "gpu_idle_fraction", "launch_calls_per_step", "mfu",
                "peak_tflops"):
        assert res[key] is None, key
    for key in ("wall_ms_per_step", "profiled_wall_ms_per_step", "busy_ms_per_step",
                "kernels_per_step", "mean_kernel_us", "flops_per_byte", "model_tflops",
                "bytes_per_s"):
        assert _pos(res[key]), (key, res[key])
    assert res["idle_fraction"] < 1 and math.isfinite(res["loss"])
    # agiformer-tiny's step has matmuls, many small ops and many distinct ones
    assert res["kernels_per_step"] > 100 and res["distinct_kernels"] > 10
    assert 0 < res["matmul_time_share"] < 1
    cats = res["categories"]
    assert set(cats) == set(profile_train.CATEGORIES)
    assert sum(c["share_of_busy"] for c in cats.values()) == pytest.approx(1, abs=1e-6)
    assert sum(c["us_per_step"] for c in cats.values()) == pytest.approx(
        res["busy_ms_per_step"] * 1e3, rel=1e-6)
    assert sum(c["calls_per_step"] for c in cats.values()) == pytest.approx(res["kernels_per_step"])
    top = res["top_kernels"]
    assert len(top) == 10 and all(len(r["name"]) <= 120 for r in top)
    assert [r["total_us_per_step"] for r in top] == sorted(
        (r["total_us_per_step"] for r in top), reverse=True)
    assert 0 < sum(r["share_of_busy"] for r in top) <= 1 + 1e-9
    for r in top:
        assert r["mean_us_per_call"] == pytest.approx(r["total_us_per_step"] / r["calls_per_step"])
    assert "matmuls take" in res["summary"] and "matmul/gemm" in printed
    assert top[0]["name"] in printed


@pytest.mark.parametrize("name, cat", [
    ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64", "matmul/gemm"),
    ("nvjet_tst_128x64_64x8_2x1_v_bz_TNT", "matmul/gemm"),
    ("void cutlass::Kernel2<cutlass_80_wmma_tensorop_bf16_s161616gemm_bf16_32x32_128x2_tn>",
     "matmul/gemm"),
    ("aten::mm", "matmul/gemm"), ("aten::addmm", "matmul/gemm"), ("aten::bmm", "matmul/gemm"),
    ("triton_tem_fused_mm_0", "matmul/gemm"),
    ("triton_poi_fused_addmm_gelu_3", "triton fused"),
    ("triton_red_fused__log_softmax_7", "triton fused"),
    ("void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64>>", "flash/attention"),
    ("fmha_cutlassF_bf16_aligned_64x64_rf_sm80", "flash/attention"),
    ("aten::_scaled_dot_product_flash_attention_for_cpu", "flash/attention"),
    ("chunk_gla_fwd_kernel_o", "fla/chunk"), ("fused_recurrent_fwd_kernel", "fla/chunk"),
    ("Memcpy HtoD (Pageable -> Device)", "memcpy/memset"), ("Memset (Device)", "memcpy/memset"),
    ("void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>>",
     "elementwise/other"),
    ("void at::native::(anonymous namespace)::multi_tensor_apply_kernel<FusedAdamMathFunctor>",
     "elementwise/other"),
])
def test_category(profile_train, name, cat):
    assert profile_train.category(name) == cat


def test_kernel_events_skip_annotations(profile_train):
    """On CUDA the kernels are the device events, less the record_function ranges the
    profiler mirrors on the GPU timeline (ProfilerStep#, Optimizer.step#...)."""
    def ev(name, device, us, annotation=False, self_us=None):
        return SimpleNamespace(name=name, device_type=SimpleNamespace(name=device),
                               time_range=SimpleNamespace(elapsed_us=lambda: us),
                               self_cpu_time_total=self_us if self_us is not None else us,
                               is_user_annotation=annotation)
    events = [ev("ProfilerStep*", "CUDA", 900), ev("Optimizer.step#AdamW.step", "CUDA", 50, True),
              ev("nvjet_sm90_tst_256x128", "CUDA", 40), ev("triton_poi_fused_add_0", "CUDA", 5),
              ev("aten::mm", "CPU", 30, self_us=20), ev("cudaLaunchKernel", "CPU", 3),
              ev("Torch-Compiled Region: 0/0", "CPU", 100)]
    assert profile_train.kernel_events(events, cuda=True) == [("nvjet_sm90_tst_256x128", 40),
                                                               ("triton_poi_fused_add_0", 5)]
    assert profile_train.kernel_events(events, cuda=False) == [("aten::mm", 20)]
    assert profile_train.launch_calls(events) == (1, 3)
    assert profile_train.compiled_regions(events) == 1
