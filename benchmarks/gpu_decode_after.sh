# Issue #21 after the in-place cache write (index_put_) and the bf16 caches: one device call
# from the repo root with .whl carried, about 330 s:
#   GIT_COMMIT=$(git rev-parse HEAD) timeout 590 bash benchmarks/gpu_decode_after.sh $OUT
# 1. the decoders' GPU tests (tests/models/test_gpu.py: static decoders of every family, hnet's
#    single stream fused and split with the fixed reference);
# 2. where a compiled step goes now (profile_decode.py, bf16 caches): transformer-30m 1 and 64
#    streams, hnet-30m 1 and 64;
# 3. `bytelm bench generate --context 16384` for transformer-30m and hnet-30m (1K/16K, 1/64
#    streams), the README-facing numbers, against generate/bench_generate_fast_transformer_hnet_h100.json.
set -o pipefail
O=${1:?usage: gpu_decode_after.sh OUT}
source benchmarks/gpu_env.sh || exit 1
mkdir -p "$O"
# the device's copy of .git may lag the working tree: pass GIT_COMMIT from here
export GIT_COMMIT=${GIT_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu tests/models/test_gpu.py -rxXs 2>&1 \
    | tee "$O/pytest_gpu_decoders_after.log" | grep -E "passed|failed|FAILED|XPASS|XFAIL"
for a in "transformer-30m 1" "transformer-30m 64" "hnet-30m 1" "hnet-30m 64"; do
    set -- $a
    timeout 60 python3 benchmarks/profile_decode.py --preset "$1" --batch "$2" --decode-attention sdpa \
        --prompt 512 --bytes 64 --profile 16 --decode compiled \
        --out "$O/profile_decode_compiled_${1}_b${2}_sdpa_bf16cache_h100.json" 2>&1 | grep -E "summary|step median" | head -2
done
timeout 170 python3 -m bytelm bench generate --context 16384 --preset transformer-30m hnet-30m \
    --out "$O/bench_generate_after_h100.json" > "$O/bench_generate_after.log" 2>&1
echo "bench rc=$?"; tail -n 12 "$O/bench_generate_after.log"
echo "$GIT_COMMIT" > "$O/tree_commit.txt"
pack_results "$O"
