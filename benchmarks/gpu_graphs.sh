# AGIFORMER's graph breaks on the GPU (issue #8), one device call (~5 minutes), from the repo root
# with .whl and .gpu-data carried:  bash benchmarks/gpu_graphs.sh OUT_DIR
# 1. the GPU tests of the Hebbian memory, both paths (fla's chunk_gla; the custom ops of
#    BYTELM_HEBBIAN_OP=custom) and compiled == eager;
# 2. the training profile of agiformer-31m (batch 64 x 1,024, compiled) with each path: compiled
#    regions per step, GPU idle share, MFU (benchmarks/profile_train.py);
# 3. the training benchmark of the custom path at 1K and 16K (bytelm bench train; fla's path:
#    train_speed/bench_train_agiformer_h100.json);
# 0. first, BSFIN's decode step profile (benchmarks/profile_decode.py, ~1 minute).
# If (1) passes and (2) shows fewer regions and less idle time, make custom the default
# (src/bytelm/ops/hebbian/triton.py) and rerun agiformer-31m on the baseline's benchmarks.
set -o pipefail
O=${1:?usage: gpu_graphs.sh OUT_DIR}
source benchmarks/gpu_env.sh || exit 1
# a test log starts with the commit and the command that wrote it
log_head() { echo "# commit ${GIT_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}," \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1): $*"; }
timeout 90 python3 benchmarks/profile_decode.py --preset bsfin-35m --prompt 900 --bytes 64 \
    --profile 16 --out "$O/profile_decode_bsfin_h100.json" 2>&1 | grep -v Warn | tail -22
log_head "python3 -m pytest -q -p no:cacheprovider -m gpu tests/ops/test_hebbian.py" \
    "tests/models/test_agiformer_compile.py" > "$O/pytest_gpu_hebbian.log"
timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu tests/ops/test_hebbian.py \
    tests/models/test_agiformer_compile.py 2>&1 | tail -15 | tee -a "$O/pytest_gpu_hebbian.log"
for P in fla custom; do
    BYTELM_HEBBIAN_OP=$P timeout 100 python3 benchmarks/profile_train.py --preset agiformer-31m \
        --batch 64 --seq-len 1024 --compile --steps 5 --warmup 3 \
        --out "$O/profile_train_agiformer_${P}_h100.json" 2>&1 | grep -v Warn | head -3
done
for P in custom; do
    BYTELM_HEBBIAN_OP=$P timeout 150 python3 -m bytelm bench train --preset agiformer-31m --compile \
        --bytes-per-step 65536 --seq-len 1024 16384 --context 16384 --steps 10 --warmup 3 \
        --out "$O/bench_train_agiformer_${P}_h100.json"
done
pack_results "$O"
