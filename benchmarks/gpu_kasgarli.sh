# The Kasgarli cross-language test with its BPE baseline on the GPU (issue #7), one device call
# per corpus, from the repo root with .whl (fla + tokenizers wheels) and .gpu-data carried:
#   bash benchmarks/gpu_kasgarli.sh {bible|ntrex|mono} OUT_DIR [PRESET] [STEPS]
# bible: eng,tur,hun,kor,est,jpn (4-5 MB each); ntrex: the 15 NTREX languages (~0.3 MB each);
# mono: the seed's original form, English vs Turkish monolingual text of equal size (not
# content-controlled; needs corpora.tar.xz carried instead of extra.tar.xz).
# Every language trains PRESET (default transformer-small) for STEPS steps on bytes, and the
# same preset over BPE tokens (vocabularies 1000 and 4000) at the byte run's training FLOPs;
# all are scored in bits per byte of the same held-out lines. Results: OUT_DIR/kasgarli_CORPUS.json
# and .png. The run folder (runs/kasgarli_CORPUS) resumes finished languages if the machine
# is still warm for a second call.
# Environment: BATCH (sequences per step; default 32, ntrex 8: its 0.23 MB training splits give
# 400 x 8 x 512 bytes = 7 epochs), PAR (side-by-side processes, default 1: the languages are dealt
# round-robin to PAR processes, on the GPUs of CUDA_VISIBLE_DEVICES (else all) in turn, into
# the same run folder; parallel corpora only); a last process over all languages then reuses
# their runs and BPE baselines and writes the result).
# CPU dry run (no gpu_env): DRY=1 bash benchmarks/gpu_kasgarli.sh ntrex /tmp/o transformer-tiny 4
set -o pipefail
U="usage: gpu_kasgarli.sh bible|ntrex|mono OUT_DIR [PRESET] [STEPS]"
C=${1:?$U}
O=${2:?$U}
[ "$C" = bible ] || [ "$C" = ntrex ] || [ "$C" = mono ] || { echo "$U" >&2; exit 2; }
PRESET=${3:-transformer-small}
SRC=(--corpus "../shared/data/parallel/$C")
if [ "$C" = bible ]; then LANGS=eng,tur,hun,kor,est,jpn; STEPS=${4:-1500}; BATCH=${BATCH:-32}
elif [ "$C" = mono ]; then LANGS=eng,tur; STEPS=${4:-1500}; SRC=(--mode monolingual); BATCH=${BATCH:-32}
else LANGS=aze,deu,eng,est,eus,fin,hun,jpn,kaz,kir,kor,tat,tuk,tur,uzb; STEPS=${4:-400}; BATCH=${BATCH:-8}; fi
if [ -z "$DRY" ]; then source benchmarks/gpu_env.sh >/dev/null || exit 1; fi
PAR=${PAR:-1}
# monolingual sizes depend on the languages chosen (the smallest text), so mono runs them together
[ "$C" = mono ] && PAR=1
kas() {  # kas SECONDS LANGS
    timeout "$1" python3 -m bytelm kasgarli "${SRC[@]}" --langs "$2" --preset "$PRESET" --steps "$STEPS" \
        --evals 5 --bpe 1000,4000 --out "runs/kasgarli_$C" --train.batch_size="$BATCH" \
        --optim.lr=1e-3 --train.progress=false
}
START=$SECONDS
if [ "$PAR" -gt 1 ]; then
    mkdir -p runs
    # the GPUs this script may use: CUDA_VISIBLE_DEVICES as given, else every one there is
    if [ -n "$CUDA_VISIBLE_DEVICES" ]; then IFS=, read -ra GPUS <<< "$CUDA_VISIBLE_DEVICES"
    else read -ra GPUS <<< "$(python3 -c "import torch; print(*range(max(torch.cuda.device_count(), 1)))")"; fi
    IFS=, read -ra ALL <<< "$LANGS"
    for ((i = 0; i < PAR; i++)); do
        G=""; for ((j = i; j < ${#ALL[@]}; j += PAR)); do G="$G${G:+,}${ALL[j]}"; done
        [ -n "$G" ] && CUDA_VISIBLE_DEVICES=${GPUS[i % ${#GPUS[@]}]} kas 540 "$G" \
            > "runs/kasgarli_${C}_part$i.log" 2>&1 &
    done
    wait
fi
LEFT=$((560 - (SECONDS - START)))
kas $((LEFT > 10 ? LEFT : 10)) "$LANGS"
rc=$?
mkdir -p "$O"
for f in json png; do
    [ -f "runs/kasgarli_$C/kasgarli.$f" ] && cp "runs/kasgarli_$C/kasgarli.$f" "$O/kasgarli_$C.$f"
done
exit $rc
