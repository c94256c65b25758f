# fla's two kernels for the Hebbian memory on the GPU (issue #20, item 2), one device call
# (~5 minutes), from the repo root with .whl carried:  bash benchmarks/gpu_hebbian_kernels.sh OUT
# The custom ops run chunk_gla (the scalar decay broadcast over K; the default) or
# chunk_simple_gla (the scalar decay as it is), BYTELM_HEBBIAN_KERNEL=gla|simple_gla:
# 1. the GPU tests of every path against the fp32 references (outputs, state, every gradient);
# 2. benchmarks/gpu_ops_check.py --ops hebbian: errors and fwd+bwd times of both at T 1K-16K;
# 3. `bytelm bench train` of agiformer-31m (batch 64 x 1,024, CUDA graphs) with each kernel.
set -o pipefail
O=${1:?usage: gpu_hebbian_kernels.sh OUT}
mkdir -p "$O"
source benchmarks/gpu_env.sh || exit 1
export GIT_COMMIT=${GIT_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
echo "# commit $GIT_COMMIT, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nvidia-smi --query-gpu=name \
    --format=csv,noheader | head -1): python3 -m pytest -q -p no:cacheprovider -m gpu" \
    "tests/ops/test_hebbian.py -k ${PYTEST_K:-triton}" > "$O/pytest_gpu_hebbian_kernels.log"
timeout 170 python3 -m pytest -q -p no:cacheprovider -m gpu tests/ops/test_hebbian.py -k "${PYTEST_K:-triton}" \
    2>&1 | tail -15 | tee -a "$O/pytest_gpu_hebbian_kernels.log"
timeout 150 python3 benchmarks/gpu_ops_check.py --ops hebbian --budget-s "${OPS_BUDGET:-100}" \
    --out "$O/gpu_ops_hebbian_kernels.json" 2>&1 | grep -v Warn | tail -24
for K in gla simple_gla; do
    BYTELM_HEBBIAN_KERNEL=$K timeout 120 python3 -m bytelm bench train --preset agiformer-31m \
        --compile --compile-mode reduce-overhead --out "$O/bench_train_agiformer_$K.json" 2>&1 \
        | grep -v Warn | tail -4
done
