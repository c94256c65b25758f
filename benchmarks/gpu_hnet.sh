# The hierarchical model's GPU job (issue #19), one device call, from the repo root with
# .gpu-data/enwiki.tar.xz carried (tar of ../shared/data/en/text, xz):
#   MODE=survey RUNS="t=transformer-30m h=hnet-30m" bash benchmarks/gpu_hnet.sh $OUT
#   MODE=train MIN=2.5 RUNS="..." bash benchmarks/gpu_hnet.sh $OUT
# MODE=check runs the hnet GPU tests first (tests/models/test_hnet.py -m gpu) in any mode.
# Environment: RUNS (hnet_equal_time.py RUN specs), MIN (training minutes), EV (eval every),
# TAG (result file suffix), CHECK=1 (GPU tests first), SWA_PATHS=1 (benchmarks/hnet_swa_paths.py
# first: flex inside the compiled model against the eager blocked form), LMEVAL=1 (after training:
# benchmarks/lm_eval_suite.py on every run's best checkpoint, OUT/lm_eval_suite${TAG}.json).
set -o pipefail
O=${1:?usage: gpu_hnet.sh OUT}
mkdir -p ../shared/data /tmp/ind "$O"
[ -d ../shared/data/en/text ] || tar xJf .gpu-data/enwiki.tar.xz -C ../shared/data || exit 1
export PYTHONPATH="$PWD/src" PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=/tmp/ind TRITON_CACHE_DIR=/tmp/ind/triton
export GIT_COMMIT=${GIT_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
if [ -n "$CHECK" ]; then
    python3 -m pytest -q -p no:cacheprovider -m gpu tests/models/test_hnet.py 2>&1 | tee "$O/pytest_gpu_hnet${TAG}.log" | tail -3
fi
if [ -n "$SWA_PATHS" ]; then
    timeout 150 python3 benchmarks/hnet_swa_paths.py --out "$O/hnet_swa_paths${TAG}.json" 2>&1 | tail -4
fi
if [ "${MODE:-train}" = survey ]; then
    python3 benchmarks/hnet_equal_time.py --survey --out "$O" --result "survey${TAG}.json" $RUNS
else
    [ -f runs/en/meta.json ] || python3 -m bytelm prepare ../shared/data/en/text --out runs/en || exit 1
    python3 benchmarks/hnet_equal_time.py --data runs/en --out "$O" --minutes "${MIN:-2.5}" \
        --eval-every "${EV:-500}" --result "equal_time${TAG}.json" $RUNS
fi
if [ -n "$LMEVAL" ] && [ "${MODE:-train}" != survey ]; then
    CK=()
    for spec in $RUNS; do [ -d "runs/equal_time/${spec%%=*}/ckpt/best" ] && CK+=("runs/equal_time/${spec%%=*}/ckpt/best"); done
    [ ${#CK[@]} -gt 0 ] && timeout 120 python3 benchmarks/lm_eval_suite.py "${CK[@]}" --out "$O/lm_eval_suite${TAG}.json" 2>&1 | tail -3
fi
