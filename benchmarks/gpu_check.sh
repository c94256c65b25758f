# GPU correctness and op timings (issues #3, #8): run on the device machine from the repo root,
#   bash benchmarks/gpu_check.sh OUT_DIR
# with .whl (fla-core wheel) and .gpu-data (corpora, caches) carried; writes gpu_ops.json,
# bench_mixer.json, pytest_gpu.log and cache.tgz to OUT_DIR.
set -o pipefail
OUT_DIR=${1:?usage: gpu_check.sh OUT_DIR}
source benchmarks/gpu_env.sh || exit 1
# a test log starts with the commit and the command that wrote it
log_head() { echo "# commit ${GIT_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}," \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1): $*"; }
# 1. every Hebbian / SWA implementation against the fp32 references, grads included, + timings
timeout 170 python3 benchmarks/gpu_ops_check.py --out "$OUT_DIR/gpu_ops.json" --budget-s 110
save_caches "$OUT_DIR"
# 2. one mixing op alone, fwd+bwd, T = 1K..64K (bytelm bench mixer, issue #8)
timeout 170 python3 -m bytelm bench mixer --max-case-s 20 --out "$OUT_DIR/bench_mixer.json"
save_caches "$OUT_DIR"
# 3. the GPU tests: ops, and the model contracts on CUDA with the GPU kernels forced
log_head "python3 -m pytest -q -p no:cacheprovider -m gpu tests/ops" > "$OUT_DIR/pytest_gpu.log"
timeout 90 python3 -m pytest -q -p no:cacheprovider -m gpu tests/ops 2>&1 | tee -a "$OUT_DIR/pytest_gpu.log" | tail -15
log_head "BYTELM_IMPL=triton python3 -m pytest -q -p no:cacheprovider -m gpu tests/models/test_gpu.py" \
    >> "$OUT_DIR/pytest_gpu.log"
BYTELM_IMPL=triton timeout 80 python3 -m pytest -q -p no:cacheprovider -m gpu \
    tests/models/test_gpu.py 2>&1 | tee -a "$OUT_DIR/pytest_gpu.log" | tail -15
save_caches "$OUT_DIR"
