# Time to 1.60 and 1.50 validation bpb on English (issue #20 item 4): `bytelm bench speedrun`
# over every family, AdamW for all and Muon for the baseline and the hierarchical family, in ONE
# device call, from the repo root with .whl and .gpu-data (corpora.tar.xz) carried:
#   bash benchmarks/gpu_speedrun.sh OUT_DIR
# Six runs, one after another in one process: transformer-30m, agiformer-31m, bsfin-35m,
# hnet-30m x adamw, + transformer-30m and hnet-30m x muon. The cap is per run and counts the
# whole run (compilation and validations included; = train.time_budget_min, so the LR schedule
# spans it): CAP=1.25 minutes x 6 = 450 s, plus about 8 s per run outside the cap (model build,
# the budget's validation timing, teardown) and about 40 s of setup (unpacking, `bytelm prepare`)
# = about 540 s, inside a 10-minute call with a margin; `timeout` stops the job at 570 s and the
# JSON (rewritten after every run) keeps the finished rows. A run that reaches 1.50 stops there.
# Recipe: the baseline's (benchmarks/recipe.sh, batch 64 x 1024, compiled, bf16), every run the
# same; validation every EV=250 steps on the first EB=1 MiB of enwiki_valid (batch 64 windows).
# Environment: CAP (minutes per run), EV, EB, RUNS (presets, comma-separated), MUON_RUNS
# (presets also run with muon), TARGETS, TAG (result name suffix), OPTS (more --set KEY=VALUE),
# LIMIT (seconds for the whole job, default 570).
# Result: OUT_DIR/speedrun${TAG}.json (device, torch, git commit, date, exact command, one row
# per run, the markdown table) and OUT_DIR/speedrun${TAG}.log.
# CPU dry run (no gpu_env, tiny presets on shared/data/small/en.txt, uncompiled, a minute):
#   DRY=1 bash benchmarks/gpu_speedrun.sh /tmp/o
set -o pipefail
O=${1:?usage: gpu_speedrun.sh OUT_DIR}
mkdir -p "$O"
if [ -z "$DRY" ]; then
    source benchmarks/gpu_env.sh >/dev/null || exit 1
else
    export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
fi
export GIT_COMMIT=${GIT_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
PY=${PYTHON:-python3}
source benchmarks/recipe.sh
# the recipe as --set options, less what the speedrun sets itself (validation cadence and size)
SETS=()
for kv in $(baseline_recipe 1); do
    case "$kv" in --train.eval_every=*|--train.eval_bytes=*) continue ;; esac
    SETS+=(--set "${kv#--}")
done
# (the recipe sets eval.batch_size=64)
if [ -z "$DRY" ]; then
    RUNS=${RUNS:-transformer-30m,agiformer-31m,bsfin-35m,hnet-30m}
    MUON_RUNS=${MUON_RUNS-transformer-30m,hnet-30m}
    CAP=${CAP:-1.25} EV=${EV:-250} EB=${EB:-1048576} TARGETS=${TARGETS:-1.60,1.50}
    DATA=runs/en
    [ -f $DATA/meta.json ] || $PY -m bytelm prepare ../shared/data/en/text --out $DATA >/dev/null || exit 1
else
    RUNS=${RUNS:-transformer-tiny,agiformer-tiny,bsfin-tiny,hnet-tiny}
    MUON_RUNS=${MUON_RUNS-transformer-tiny,hnet-tiny}
    CAP=${CAP:-0.08} EV=${EV:-20} EB=${EB:-4096} TARGETS=${TARGETS:-7.0,4.5}
    DATA=$O/data_small_en
    [ -f $DATA/meta.json ] || $PY -m bytelm prepare ../shared/data/small/en.txt --out $DATA >/dev/null || exit 1
    SETS+=(--set train.compile=false --set train.batch_size=4 --set eval.batch_size=8
           --set train.log_every=10 --set optim.warmup_steps=10)
fi
for kv in $OPTS; do SETS+=(--set "$kv"); done
# every preset with adamw, the MUON_RUNS presets also with muon (PRESET:muon): one table
ALL=$RUNS
for m in ${MUON_RUNS//,/ }; do ALL="$ALL,$m:muon"; done
N=speedrun${TAG}
timeout "${LIMIT:-570}" $PY -m bytelm bench speedrun --data "$DATA" --runs "$ALL" --optims adamw \
    --targets "$TARGETS" --cap-min "$CAP" --eval-every "$EV" --eval-bytes "$EB" \
    --work "runs/speedrun${TAG}_$(date +%Y%m%d-%H%M%S)" --out "$O/$N.json" "${SETS[@]}" \
    2>&1 | tee "$O/$N.log" | grep -v '^INFO'
