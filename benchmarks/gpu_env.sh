# Source this on the device machine from the repository root (see docs/benchmarks.md):
#   source benchmarks/gpu_env.sh
# - installs the carried fla-core wheel (.whl/) into /tmp/site (the machine has no registry),
#   and the tokenizers wheel when the machine has no tokenizers;
# - unpacks the carried corpora (.gpu-data/*.tar.xz) into ../shared/data, where the configs
#   and the CPU tests expect them (../shared does not travel);
# - restores the carried compile caches (.gpu-data/cache.tgz: Inductor + Triton), so kernels
#   are not compiled and tuned again; `save_caches DIR` writes them back for the next call
#   (xz, in 15 MB parts: the device returns files of at most 16 MiB).
# Runs started side by side (one per GPU) each source this file: the installing and unpacking
# happen once per carried content (a marker named after the carried files' names and sizes),
# under a lock, so no run reinstalls a package another one is importing.
_bytelm_setup() {
    local mark
    mark="/tmp/site/.bytelm_env_$(ls -l .whl .gpu-data 2>/dev/null | md5sum | cut -c1-12)"
    [ -f "$mark" ] && return 0
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/fla_core-*.whl || return 1
    # the BPE baseline of `bytelm kasgarli --bpe` needs tokenizers (abi3 wheel, if the machine lacks it)
    python3 -c "import tokenizers" 2>/dev/null || ! ls .whl/tokenizers-*.whl >/dev/null 2>&1 || \
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
            --target /tmp/site .whl/tokenizers-*.whl || return 1
    mkdir -p ../shared/data /tmp/ind
    for f in .gpu-data/*.tar.xz; do [ -f "$f" ] && tar xJf "$f" -C ../shared/data; done
    if ls .gpu-data/cache.tar.xz.* >/dev/null 2>&1; then
        cat .gpu-data/cache.tar.xz.* | xz -d | tar x -C /tmp
    elif [ -f .gpu-data/cache.tgz ]; then
        tar xzf .gpu-data/cache.tgz -C /tmp
    fi
    touch "$mark"
}
mkdir -p /tmp/site
(flock 9 && _bytelm_setup) 9>/tmp/bytelm_env.lock || return 1
export PYTHONPATH="$PWD/src:/tmp/site" PYTHONUNBUFFERED=1
export TORCHINDUCTOR_CACHE_DIR=/tmp/ind TRITON_CACHE_DIR=/tmp/ind/triton
# `score_last RUN METRICS EVAL`: a training run's logged validations (copied to METRICS and
# printed) beside `bytelm eval` of its ckpt/last on the same bytes, the first 256 KB of val
# (to EVAL); the BSFIN validation diagnoses (gpu_bsfin_val.sh, gpu_bsfin_budget.sh) use it
score_last() {
    cp "$1/metrics.jsonl" "$2"
    grep '"val"' "$1/metrics.jsonl" | cut -c1-120
    python3 -m bytelm eval "$1/ckpt/last" --split val --max-bytes 262144 --batch-size 64 \
        --json "$3" 2>&1 | tail -n 1
}
save_caches() { rm -f "$1"/cache.tar.xz.*; tar cf - -C /tmp ind | xz -T0 -3 | split -b 15M - "$1/cache.tar.xz."; }
# a device call returns at most 8 files from $OUT: `pack_results DIR` moves every file but the
# cache parts into DIR/results.tar (unpack here with `tar xf results.tar`)
pack_results() {
    (cd "$1" && find . -type f ! -name 'cache.tar.xz.*' ! -name results.tar ! -name .packed | sort > .packed &&
     tar cf results.tar -T .packed && xargs rm -f < .packed && rm -f .packed &&
     find . -mindepth 1 -type d -empty -delete)
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
