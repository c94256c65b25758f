# One model on one of the baseline's benchmarks with the baseline's recipe (benchmarks/recipe.sh),
# one device call, from the repo root with .whl and .gpu-data (corpora) carried:
#   bash benchmarks/gpu_run.sh PRESET {en|tr} OUT_DIR
# Environment: MIN (default: the baseline's budget, en 8.3, tr 5 minutes), TIMEOUT (seconds for
# the whole run, default 585: English at 8.3 minutes needs all of it; at 575 one was cut off
# before its test pass; a cut-off run returns OUT_DIR/metrics_NAME.jsonl), OPTS (extra
# --key=value options), TAG (suffix of the run and result names), NEEDLE (en|tr: then the needle
# test with its no-needle control on the best checkpoint, OUT_DIR/needle_PRESET_LANG_TAG/).
# Result: OUT_DIR/run_PRESET_LANG_TAG.json (the same fields as baseline_*.json).
# Examples:
#   the needle on an English 31M-class model (8.3 minutes plus the needle do not fit a
#   10-minute call, so 5 minutes): MIN=5 NEEDLE=en TAG=_5min bash benchmarks/gpu_run.sh agiformer-31m en OUT
#   AGIFORMER without its encoder norm (docs/agiformer.md): OPTS="--model.encoder_norm=false" TAG=_noencnorm bash benchmarks/gpu_run.sh agiformer-31m en OUT
# CPU dry run (no gpu_env, tiny model, seconds):
#   DRY=1 MIN=0.05 NEEDLE=en bash benchmarks/gpu_run.sh transformer-tiny en /tmp/o
set -o pipefail
U="usage: gpu_run.sh PRESET {en|tr} OUT_DIR"
P=${1:?$U}
L=${2:?$U}
O=${3:?$U}
[ "$L" = en ] || [ "$L" = tr ] || { echo "$U" >&2; exit 2; }
if [ -z "$DRY" ]; then source benchmarks/gpu_env.sh >/dev/null || exit 1; fi
source benchmarks/recipe.sh
if [ "$L" = en ]; then EV=1000; MIN=${MIN:-8.3}; else EV=500; MIN=${MIN:-5}; fi
R=$(baseline_recipe "$EV")
[ -n "$DRY" ] && R="$R --train.compile=false --train.batch_size=4 --train.eval_every=50"
N="${P}_${L}${TAG}"
timeout "${TIMEOUT:-585}" python3 benchmarks/baseline.py --name "$N" --preset "$P" \
    --source "../shared/data/$L/text" --minutes "$MIN" --out "$O" --result "run_$N.json" \
    ${NEEDLE:+--needle "$NEEDLE"} -- $R $OPTS
rc=$?
# a run cut off by the time limit (rc 124) still returns its curve: the metrics log of the run
if [ $rc -ne 0 ] && [ -f "runs/bench/run_$N/metrics.jsonl" ]; then
    mkdir -p "$O" && cp "runs/bench/run_$N/metrics.jsonl" "$O/metrics_$N.jsonl"
fi
if [ -z "$DRY" ]; then pack_results "$O"; fi
exit $rc
