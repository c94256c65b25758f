# The needle test on an English 31M-class model (issue #7), one device call per preset, from
# the repo root with .whl and .gpu-data (corpora) carried:
#   bash benchmarks/gpu_needle.sh PRESET OUT_DIR [MINUTES]
# Trains PRESET (e.g. transformer-30m, agiformer-31m, bsfin-35m) on the English benchmark with
# the baseline's recipe for MINUTES (default 5: the baseline's 8.3 plus the needle do not fit a
# 10-minute call, so this is a shorter run than baseline_en.json and says so in its name),
# scores the test split, then runs `bytelm needle --lang en` (with its no-needle control) on
# the best checkpoint: OUT_DIR/needle_train_PRESET_en.json and OUT_DIR/needle_needle_PRESET_en/.
# CPU dry run (no gpu_env, tiny model, seconds):
#   DRY=1 MIN=0.05 bash benchmarks/gpu_needle.sh transformer-tiny /tmp/o
set -o pipefail
P=${1:?usage: gpu_needle.sh PRESET OUT_DIR [MINUTES]}
O=${2:?usage: gpu_needle.sh PRESET OUT_DIR [MINUTES]}
MIN=${3:-${MIN:-5}}
if [ -z "$DRY" ]; then source benchmarks/gpu_env.sh >/dev/null || exit 1; fi
source benchmarks/recipe.sh
R=$(baseline_recipe 500)
[ -n "$DRY" ] && R="$R --train.compile=false --train.batch_size=4"
timeout "${TIMEOUT:-580}" python3 benchmarks/baseline.py --name "needle_${P}_en" --preset "$P" \
    --source ../shared/data/en/text --minutes "$MIN" --out "$O" \
    --result "needle_train_${P}_en.json" --needle en -- $R
rc=$?
if [ -z "$DRY" ]; then pack_results "$O"; fi
exit $rc
