# bsfin-35m on the baseline's benchmarks (issue #5), one device call per run, from the repo root
# with .whl and .gpu-data carried:
#   bash benchmarks/gpu_bsfin.sh {en|tr} {babylon|entropy-model} OUT_DIR [LM_CKPT]
# Same recipe, budgets (en 8.3 min, tr 5 min) and test protocol as baseline_{en,tr}.json;
# then the needle test on the best checkpoint (OUT_DIR/needle_bsfin_LANG_PATCHER); NEEDLE= (empty)
# skips it: English's 8.3-minute budget plus its test eval leave it no room in a 10-minute call.
# entropy-model: benchmarks/entropy_lm.py trains the patcher's LM (transformer-small, ~1 min)
# and fits its threshold to babylon's mean patch; with LM_CKPT it only fits. English needs
# LM_CKPT: its 8.3-minute budget leaves no room for the LM in a 10-minute call (train it in an
# earlier call with benchmarks/entropy_lm.py and bring runs/bench/elm_en/ckpt/best back).
# OPTS adds training/model options after the recipe and TAG suffixes the run and result names,
# e.g. the stability fix (benchmarks/bsfin_stability.py, results/ablations/bsfin_stability_cpu.json):
#   OPTS="--model.qk_norm=true --model.mem_norm=true" TAG=_qkmem NEEDLE= bash benchmarks/gpu_bsfin.sh en babylon OUT
# CPU dry run of the same commands (no gpu_env, tiny model, seconds):
#   DRY=1 PRESET=bsfin-tiny LM_PRESET=transformer-tiny LM_STEPS=20 MIN=0.05 bash benchmarks/gpu_bsfin.sh tr entropy-model /tmp/o
set -o pipefail
L=${1:?usage: gpu_bsfin.sh LANG PATCHER OUT_DIR [LM_CKPT]}
P=${2:?usage: gpu_bsfin.sh LANG PATCHER OUT_DIR [LM_CKPT]}
O=${3:?usage: gpu_bsfin.sh LANG PATCHER OUT_DIR [LM_CKPT]}
if [ -z "$DRY" ]; then source benchmarks/gpu_env.sh >/dev/null || exit 1; fi
if [ "$L" = en ]; then EV=1000; MIN=${MIN:-8.3}; else EV=500; MIN=${MIN:-5}; fi
source benchmarks/recipe.sh
R=$(baseline_recipe "$EV")
M=""
if [ "$P" = entropy-model ]; then
    timeout 150 python3 benchmarks/entropy_lm.py --bsfin-preset "${PRESET:-bsfin-35m}" --name "$L" --source "../shared/data/$L/text" \
        --out "$O" --steps "${LM_STEPS:-2000}" --preset "${LM_PRESET:-transformer-small}" ${4:+--lm-ckpt "$4"} \
        -- --train.batch_size=64 --train.eval_bytes=0 --optim.lr=2e-3 || exit 1
    M=$(cat "runs/bench/elm_$L/model_opts.txt")
fi
N=${NEEDLE-$L}
timeout "${TIMEOUT:-585}" python3 benchmarks/baseline.py --name "bsfin_${L}_${P}${TAG}" --preset "${PRESET:-bsfin-35m}" \
    --source "../shared/data/$L/text" --minutes "$MIN" --out "$O" --result "bsfin_${L}_${P}${TAG}.json" \
    ${N:+--needle "$N"} \
    -- $R $M $OPTS
