# Short GPU measurements left by the CPU-side work of session 4 (issues #5, #8), one device call
# (~8 minutes), from the repo root with .whl and .gpu-data carried:  bash benchmarks/gpu_quick.sh OUT_DIR
# - AGIFORMER decoding, reference step vs the compiled fixed-shape decoder (CUDA graphs);
# - BSFIN's complex-linear map: real pairs (bf16) vs block matmul vs complex64;
# - BSFIN time to first byte after the one-step prefill.
set -o pipefail
O=${1:?usage: gpu_quick.sh OUT_DIR}
if [ -z "$DRY" ]; then source benchmarks/gpu_env.sh || exit 1; else save_caches() { :; }; fi
timeout 260 python3 -m bytelm bench generate --preset agiformer-31m --decode both \
    --contexts 1024 16384 --batch 1 64 --out "$O/bench_generate_static_h100.json"
timeout 90 python3 benchmarks/complex_repr.py --out "$O/complex_repr_h100.json"
timeout 90 python3 -m bytelm bench generate --preset bsfin-35m --contexts 1024 --batch 1 \
    --new-bytes 48 --decode-reps 2 --prefill-reps 1 --out "$O/bench_generate_bsfin_prefill_h100.json"
save_caches "$O"
