# Training and generation speed on the GPU (issue #8): run on the device machine from the repo
# root with .whl and .gpu-data carried:  bash benchmarks/gpu_perf.sh OUT_DIR
set -o pipefail
O=${1:?usage: gpu_perf.sh OUT_DIR}
source benchmarks/gpu_env.sh || exit 1
# equal work per step (65,536 bytes) at every length, so bytes/s compares lengths directly
timeout 300 python3 -m bytelm bench train --preset agiformer-31m --compile --bytes-per-step 65536 \
    --seq-len 1024 16384 65536 4096 --context 65536 --steps 10 --warmup 3 \
    --out "$O/bench_train_agiformer.json"
save_caches "$O"
timeout 120 python3 -m bytelm bench train --preset transformer-30m --compile \
    --bytes-per-step 65536 --seq-len 1024 16384 --context 16384 --steps 10 --warmup 3 \
    --out "$O/bench_train_transformer.json"
timeout 120 python3 -m bytelm bench generate --preset agiformer-31m transformer-30m \
    --context 16384 --contexts 1024 16384 --batch 1 64 --out "$O/bench_generate.json"
save_caches "$O"
