# Issues #21 and #22 in one device call, from the repo root with .whl (fla-core) and .gpu-data
# (the English corpus) carried:
#   GIT_COMMIT=$(git rev-parse --short HEAD) bash benchmarks/gpu_decode_lm_eval.sh OUT
# 1. the GPU tests of the decoders (tests/models/test_gpu.py, hnet's GPU tests);
# 2. the local lm-evaluation-harness suite on every family's ~30M preset, each trained MIN
#    (default 1.5) minutes side by side on the one GPU (benchmarks/gpu_lm_eval.sh; scores of
#    briefly trained models: they show the harness path, not a ranking);
# 3. `bytelm bench generate --context 16384` (every family, batch 1 and 64, contexts 1K and
#    16K, the fastest exact decoder), alone on the GPU.
# Everything lands in OUT/results.tar (pack_results).
# Environment: TEST_S, LMEVAL_S, BENCH_S (seconds for each part; 0 skips it), MIN, LM_PRESETS
# (comma-separated, default every family's ~30M preset), GEN_PRESETS (space-separated, default:
# bench generate's own, one per family).
set -o pipefail
O=${1:?usage: gpu_decode_lm_eval.sh OUT}
mkdir -p "$O"
source benchmarks/gpu_env.sh || exit 1
export GIT_COMMIT=${GIT_COMMIT:-unknown}
T0=$(date +%s)
if [ "${TEST_S:-150}" != 0 ]; then
    timeout "${TEST_S:-150}" python3 -m pytest -q -rf --tb=short -p no:cacheprovider -m gpu \
        tests/models/test_gpu.py tests/models/test_hnet.py > "$O/pytest_gpu_decoders.log" 2>&1
    echo "pytest rc=$? $(tail -n 1 "$O/pytest_gpu_decoders.log") ($(( $(date +%s) - T0 )) s)"
fi
T1=$(date +%s)
if [ "${LMEVAL_S:-270}" != 0 ]; then
    MIN=${MIN:-1.5} TIMEOUT=${LMEVAL_S:-270} bash benchmarks/gpu_lm_eval.sh "$O/lm_eval" \
        "${LM_PRESETS:-transformer-30m,agiformer-31m,bsfin-35m,hnet-30m}"
    echo "lm_eval rc=$? ($(( $(date +%s) - T1 )) s)"
fi
T2=$(date +%s)
if [ "${BENCH_S:-170}" != 0 ]; then
    timeout "${BENCH_S:-170}" python3 -m bytelm bench generate --context 16384 \
        ${GEN_PRESETS:+--preset $GEN_PRESETS} --out "$O/bench_generate_fast.json" > "$O/bench_generate_fast.log" 2>&1
    echo "bench rc=$? ($(( $(date +%s) - T2 )) s)"
    tail -n 25 "$O/bench_generate_fast.log"
fi
echo "$GIT_COMMIT" > "$O/tree_commit.txt"
pack_results "$O"
