# Per-step learning of hnet variants on CPU (issue #19): a small hnet (2+2 byte blocks at 128,
# 4 main blocks at 256, context 256) for 400 steps of batch 16 on the first 8 MB of English
# Wikipedia, validation every 100 steps on 200 KB, one thread per run, fp32. Same steps, same
# data order: it compares what a step learns, not speed (the GPU job does that).
#   bash benchmarks/hnet_cpu_ablation.sh OUT      (about 5 minutes per run, two at a time;
#   runs already in OUT are kept, so a later round adds to an earlier one; ONLY="NAME ..." runs
#   only those, RESULT names the result file, e.g. ONLY="I_wider_bytes J_wide_chunk6"
#   RESULT=cpu_ablation_round3.json)
set -eo pipefail
O=${1:?usage: hnet_cpu_ablation.sh OUT}
D=${SHARED:-../shared}/data/en/text
mkdir -p "$O/text"
head -c 8000000 "$D/enwiki_train_00.txt" > "$O/text/enwiki_train_00.txt"
head -c 600000 "$D/enwiki_valid.txt" > "$O/text/enwiki_valid.txt"
head -c 300000 "$D/enwiki_test.txt" > "$O/text/enwiki_test.txt"
export PYTHONPATH="$PWD/src" OMP_NUM_THREADS=1
PY=${PY:-python}
$PY -m bytelm prepare "$O/text" --out "$O/en"
H="--model.d_byte=128 --model.byte_heads=2 --model.d_main=256 --model.main_layers=4 --model.main_heads=4"
run() {  # NAME PRESET [overrides]; a run whose summary exists is kept
    local n=$1 p=$2; shift 2
    [ -f "$O/runs/$n/summary.json" ] && return 0
    [ -n "$ONLY" ] && [[ " $ONLY " != *" $n "* ]] && return 0  # ONLY="I_wider_bytes J_..."
    $PY -m bytelm train --preset "$p" --data "$O/en" --train.out_dir "$O/runs/$n" --train.steps=400 \
        --train.batch_size=16 --model.context=256 --optim.lr=1.5e-3 --optim.betas=0.9,0.95 \
        --optim.weight_decay=0.1 --optim.grad_clip=1.0 --optim.warmup_steps=60 --train.eval_every=100 \
        --train.eval_bytes=200000 --train.log_every=50 --train.precision=fp32 "$@" > "$O/$n.log" 2>&1
}
run A_nores hnet-30m $H --model.byte_lr_mult=1 --model.residual_proj=false & run B_res hnet-30m $H --model.byte_lr_mult=1 & wait
run C_res_blr2 hnet-30m $H --model.byte_lr_mult=2 & run D_gpt transformer-30m --model.d_model=192 --model.n_layers=4 --model.n_heads=4 & wait
run E_res_muon hnet-30m $H --model.byte_lr_mult=1 --optim.name=muon & run F_gpt_muon transformer-30m --model.d_model=192 --model.n_layers=4 --model.n_heads=4 --optim.name=muon & wait
# round 2 (where the per-step deficit sits): byte stages 1.5x wider, or 3 + 3 deep, from C
run G_wide_bytes hnet-30m $H --model.byte_lr_mult=2 --model.d_byte=192 --model.byte_heads=3 &
run H_deep_bytes hnet-30m $H --model.byte_lr_mult=2 --model.enc_layers=3 --model.dec_layers=3 & wait
run I_wider_bytes hnet-30m $H --model.byte_lr_mult=2 --model.d_byte=256 --model.byte_heads=4 &
# round 3 (from I, byte stages 2x wider): buy the speed back with a longer target chunk (fewer
# main positions), or move a byte block from the encoder to the decoder
W="--model.byte_lr_mult=2 --model.d_byte=256 --model.byte_heads=4"
run J_wide_chunk6 hnet-30m $H $W --model.chunk_len=6 & wait
run K_wide_enc1_dec3 hnet-30m $H $W --model.enc_layers=1 --model.dec_layers=3 &
run L_wide_main_lr05 hnet-30m $H $W --model.main_lr_mult=0.5 & wait
# round 4: the two round-3 gains together (K + L), and with one more main block
E="--model.enc_layers=1 --model.dec_layers=3 --model.main_lr_mult=0.5"
run M_wide_e1d3_mlr05 hnet-30m $H $W $E &
run N_wide_e1d3_mlr05_main5 hnet-30m $H $W $E --model.main_layers=5 & wait
# round 5 (from M): window attention in the byte stages (the speed lever on a GPU), or byte
# stages 3x wide
run O_M_swa64 hnet-30m $H $W $E --model.byte_mixer=swa --model.window=64 &
run P_M_bytes384 hnet-30m $H $E --model.byte_lr_mult=2 --model.d_byte=384 --model.byte_heads=6 & wait
# round 6 (from M): is the byte stages' window worth less as a share of the context? O's 64 is a
# quarter of 256 and lost nothing; on the H100 a window of 128 (an eighth of 1,024) lost 0.08
run Q_M_swa32 hnet-30m $H $W $E --model.byte_mixer=swa --model.window=32 &
run R_M_swa16 hnet-30m $H $W $E --model.byte_mixer=swa --model.window=16 & wait
$PY benchmarks/collect_runs.py --out benchmarks/results/hnet/${RESULT:-cpu_ablation.json} --command "bash benchmarks/hnet_cpu_ablation.sh $O" "$O"/runs/*
