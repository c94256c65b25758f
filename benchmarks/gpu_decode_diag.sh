# Issue #21's decode diagnostics, one device call from the repo root with .whl carried:
#   GIT_COMMIT=... timeout 590 bash benchmarks/gpu_decode_diag.sh $OUT
# 1. decode attention alone: sdpa with a bool mask vs two matmuls + masked softmax (B 1/64);
# 2. hnet's split CUDA-graph decoder against eager, step by step (decode_diag.py);
# 3. where a compiled decoding step goes (profile_decode.py) for transformer-30m (sdpa and
#    matmul cache reads) and hnet-30m, one and 64 streams.
set -o pipefail
O=${1:?usage: gpu_decode_diag.sh OUT}
source benchmarks/gpu_env.sh || exit 1
timeout 120 python3 benchmarks/decode_attention.py --out "$O/decode_attention_h100.json" 2>&1 | tail -20
timeout 180 python3 benchmarks/decode_diag.py --out "$O/decode_diag_h100.json" \
    --modes reduce-overhead,default,no-trees,fused 2>&1 | tail -25
for a in "transformer-30m 1 sdpa" "transformer-30m 64 sdpa" "transformer-30m 64 matmul" "hnet-30m 1 sdpa" "hnet-30m 64 sdpa"; do
    set -- $a
    timeout 60 python3 benchmarks/profile_decode.py --preset "$1" --batch "$2" --decode-attention "$3" \
        --prompt 512 --bytes 64 --profile 16 --decode compiled \
        --out "$O/profile_decode_compiled_${1}_b${2}_${3}_h100.json" 2>&1 | tail -14
done
pack_results "$O"
