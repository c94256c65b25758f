# The local lm-evaluation-harness suite (issue #22) on the 30M-class models, one device call, from
# the repo root with .whl (fla-core wheel) and .gpu-data (the English corpus) carried:
#   bash benchmarks/gpu_lm_eval.sh OUT_DIR [PRESET[,PRESET...]]
# Every preset (default transformer-30m,agiformer-31m,bsfin-35m) trains MIN minutes (default 5)
# on English Wikipedia with the baseline's recipe (benchmarks/baseline.py, as gpu_run.sh), one GPU
# each, side by side (the GPUs of CUDA_VISIBLE_DEVICES, else all; more presets than GPUs share
# them), then benchmarks/lm_eval_suite.py scores its best checkpoint on the English test split:
# OUT_DIR/lm_eval_suite_PRESET.json (word perplexity through loglikelihood_rolling, the cloze
# tasks) beside OUT_DIR/run_PRESET_en_lmeval.json (the training record with bytelm eval's test
# bpb on the same bytes), and OUT_DIR/lm_eval_tasks/ (the tasks as lm_eval YAML + jsonl).
# Environment: MIN, TIMEOUT (seconds per preset, default 570), OPTS (extra training options).
# CPU dry run (no gpu_env, tiny model trained on small/en.txt, a minute or two): DRY=1 MIN=0.05 bash benchmarks/gpu_lm_eval.sh /tmp/o transformer-tiny
set -o pipefail
O=${1:?usage: gpu_lm_eval.sh OUT_DIR [PRESET[,PRESET...]]}
IFS=, read -ra PS <<< "${2:-transformer-30m,agiformer-31m,bsfin-35m}"
if [ -z "$DRY" ]; then source benchmarks/gpu_env.sh >/dev/null || exit 1; fi
source benchmarks/recipe.sh
MIN=${MIN:-5}
R=$(baseline_recipe 1000 | tr "\n" " ")  # one line: it goes into a bash -c string
SUITE=()
SRC=../shared/data/en/text
if [ -n "$DRY" ]; then
    SRC=../shared/data/small/en.txt  # the whole-split test eval of baseline.py takes minutes on a CPU
    R="$R --train.compile=false --train.batch_size=4 --train.eval_every=50"
    SUITE=(--max-docs 1 --cloze 8)
fi
if [ -n "$CUDA_VISIBLE_DEVICES" ]; then IFS=, read -ra GPUS <<< "$CUDA_VISIBLE_DEVICES"
else read -ra GPUS <<< "$(python3 -c "import torch; print(*range(max(torch.cuda.device_count(), 1)))")"; fi
mkdir -p "$O"
one() {  # one PRESET GPU: train, bytelm eval (test), the suite
    local N="$1_en_lmeval"
    CUDA_VISIBLE_DEVICES=$2 timeout "${TIMEOUT:-570}" bash -c "
        python3 benchmarks/baseline.py --name '$N' --preset '$1' --source '$SRC' \
            --minutes '$MIN' --out '$O' --result 'run_$N.json' -- $R $OPTS &&
        python3 benchmarks/lm_eval_suite.py runs/bench/run_$N/ckpt/best --out '$O/lm_eval_suite_$1.json' \
            --tasks-dir '$O/lm_eval_tasks' ${SUITE[*]}" > "$O/log_$1.txt" 2>&1
}
pids=()
for i in "${!PS[@]}"; do
    one "${PS[i]}" "${GPUS[i % ${#GPUS[@]}]}" &
    pids+=($!)
    sleep 2  # the first one prepares the corpus; the others find it (baseline.py skips a prepared one)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
tail -n 3 "$O"/log_*.txt
if [ -z "$DRY" ]; then pack_results "$O"; fi
exit $rc
