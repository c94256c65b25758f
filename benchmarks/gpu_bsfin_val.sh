# Does bsfin's in-training validation score the model it trains? (issue #20's 2.5-minute job:
# bsfin-35m validated at 5.35 bpb at step 500 while `bytelm eval` of that checkpoint's weights
# gave 1.946 on the test split, hnet/equal_time_2.5min_seeds_h100.json). One device call, carry
# .whl and .gpu-diag (16 MB of English train, the whole valid and test split):
#   bash benchmarks/gpu_bsfin_val.sh OUT
# Trains bsfin-35m 160 steps compiled and eagerly, validating at 80 and 160 on the first 256 KB,
# then scores ckpt/last (step 160) on the same bytes with `bytelm eval`.
set -o pipefail
O=${1:?usage: gpu_bsfin_val.sh OUT}
mkdir -p "$O" /tmp/ensm
source benchmarks/gpu_env.sh >/dev/null || exit 1
tar xJf .gpu-diag/en_small.tar.xz -C /tmp/ensm || exit 1
python3 -m bytelm prepare /tmp/ensm/en_small --out /tmp/ensm/prep > /dev/null || exit 1
for c in ${COMPILE:-true false}; do
    timeout "${LIMIT:-200}" python3 -m bytelm train --preset bsfin-35m --data /tmp/ensm/prep --out "runs/bval_$c" \
        --train.steps=160 --train.compile=$c --train.eval_every=80 --train.eval_bytes=262144 \
        --train.progress=false --train.batch_size=64 --model.dropout=0.1 --optim.lr=1.5e-3 \
        --optim.warmup_steps=300 --eval.batch_size=64 --train.log_every=20 > "$O/train_$c.log" 2>&1
    echo "compile=$c train rc=$?"
    score_last "runs/bval_$c" "$O/metrics_$c.jsonl" "$O/eval_last_$c.json"
done
