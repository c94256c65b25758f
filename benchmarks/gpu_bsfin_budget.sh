# BSFIN's in-training validation under a time budget, before and after the fix of ComplexLinear's
# block-matrix cache (issue #20's open fault), one device call (~3 minutes) with .whl and
# .gpu-diag carried (with .gpu-diag/interference_old.py = `git show 61107cd:src/bytelm/models/bsfin/
# interference.py`, the file before the fix):  bash benchmarks/gpu_bsfin_budget.sh OUT
# 0. whether fused AdamW on CUDA bumps parameters' version counters (the cache's stamp);
# 1. bsfin-35m eager, 0.75-minute budget, validation every 60 steps on 256 KB, with
#    src/bytelm/models/bsfin/interference.py before the fix, then as in the working tree; each
#    run's last checkpoint scored by `bytelm eval` on the same bytes.
set -o pipefail
O=${1:?usage: gpu_bsfin_budget.sh OUT}
mkdir -p "$O" /tmp/ensm
source benchmarks/gpu_env.sh >/dev/null || exit 1
python3 - <<'PY' | tee "$O/fused_adamw_version.txt"
import torch
for kw in ({"fused": True}, {"foreach": True}):
    p = torch.nn.Parameter(torch.randn(8, 8, device="cuda"))
    opt = torch.optim.AdamW([p], lr=1e-2, **kw)
    p.grad = torch.randn_like(p)
    v = p._version
    opt.step()
    print(f"cuda AdamW {kw}: version {v} -> {p._version}, torch {torch.__version__}")
PY
[ -d /tmp/ensm/prep ] || { tar xJf .gpu-diag/en_small.tar.xz -C /tmp/ensm &&
    python3 -m bytelm prepare /tmp/ensm/en_small --out /tmp/ensm/prep > /dev/null; } || exit 1
F=src/bytelm/models/bsfin/interference.py
cp "$F" /tmp/interference_new.py
for v in old new; do
    if [ $v = old ]; then cp .gpu-diag/interference_old.py "$F" || exit 1; else cp /tmp/interference_new.py "$F"; fi
    timeout 150 python3 -m bytelm train --preset bsfin-35m --data /tmp/ensm/prep --out "runs/bbud_$v" \
        --train.time_budget_min=0.75 --train.steps=1000000 --train.compile=false \
        --train.eval_every=60 --train.eval_bytes=262144 --train.progress=false \
        --train.batch_size=64 --model.dropout=0.1 --optim.lr=1.5e-3 --optim.warmup_steps=300 \
        --eval.batch_size=64 --train.log_every=20 > "$O/train_budget_$v.log" 2>&1
    echo "$v: train rc=$?"
    score_last "runs/bbud_$v" "$O/metrics_budget_$v.jsonl" "$O/eval_budget_last_$v.json"
done
cp /tmp/interference_new.py "$F"
