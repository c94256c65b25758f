# The Kasgarli cross-language test with its BPE baseline on the GPU (issue #7), one device call
# per corpus, from the repo root with .whl (fla + tokenizers wheels) and .gpu-data carried:
#   bash benchmarks/gpu_kasgarli.sh {bible|ntrex|mono} OUT_DIR [PRESET[,PRESET...]] [STEPS]
# bible: eng,tur,hun,kor,est,jpn (4-5 MB each); ntrex: the 15 NTREX languages (~0.3 MB each);
# mono: the seed's original form, English vs Turkish monolingual text of equal size (not
# content-controlled; needs corpora.tar.xz carried instead of extra.tar.xz).
# Every language trains PRESET (default transformer-small) for STEPS steps on bytes, and a
# Transformer preset also over BPE tokens (vocabularies 1000 and 4000) at the byte run's training
# FLOPs; all are scored in bits per byte of the same held-out lines. Results:
# OUT_DIR/kasgarli_CORPUS.json and .png. With several presets (e.g. the three families,
# transformer-30m,agiformer-31m,bsfin-35m, which share a 1,024-byte context and so the byte
# budget), each gets OUT_DIR/kasgarli_CORPUS_PRESET.json and benchmarks/kasgarli_families.py sets
# them side by side in OUT_DIR/kasgarli_CORPUS_families.json and .png. The run folders
# (runs/kasgarli_CORPUS[_PRESET]) resume finished languages if the machine is still warm.
# Environment: BATCH (sequences per step; default 32, ntrex 8: its 0.23 MB training splits give
# 400 x 8 x 512 bytes = 7 epochs), OPTS (extra --key=value options for every run, e.g.
# --train.compile=true), PAR (side-by-side processes per preset, default 1: the languages are
# dealt round-robin to PAR processes, all jobs on the GPUs of CUDA_VISIBLE_DEVICES (else all) in
# turn, into the same run folder; parallel corpora only); a last process per preset over all
# languages then reuses their runs and BPE baselines and writes the result. LIMIT (seconds,
# default 560) bounds the whole script after its setup; side-by-side processes get LIMIT - 20.
# RUNS (default runs) is the folder of the run folders: give side-by-side scripts different ones.
# CPU dry run (no gpu_env): DRY=1 bash benchmarks/gpu_kasgarli.sh ntrex /tmp/o transformer-tiny 4
set -o pipefail
U="usage: gpu_kasgarli.sh bible|ntrex|mono OUT_DIR [PRESET[,PRESET...]] [STEPS]"
C=${1:?$U}
O=${2:?$U}
[ "$C" = bible ] || [ "$C" = ntrex ] || [ "$C" = mono ] || { echo "$U" >&2; exit 2; }
IFS=, read -ra PS <<< "${3:-transformer-small}"
SRC=(--corpus "../shared/data/parallel/$C")
if [ "$C" = bible ]; then LANGS=eng,tur,hun,kor,est,jpn; STEPS=${4:-1500}; BATCH=${BATCH:-32}
elif [ "$C" = mono ]; then LANGS=eng,tur; STEPS=${4:-1500}; SRC=(--mode monolingual); BATCH=${BATCH:-32}
else LANGS=aze,deu,eng,est,eus,fin,hun,jpn,kaz,kir,kor,tat,tuk,tur,uzb; STEPS=${4:-400}; BATCH=${BATCH:-8}; fi
if [ -z "$DRY" ]; then source benchmarks/gpu_env.sh >/dev/null || exit 1; fi
PAR=${PAR:-1}
LIMIT=${LIMIT:-560}
RUNS=${RUNS:-runs}
# monolingual sizes depend on the languages chosen (the smallest text), so mono runs them together
[ "$C" = mono ] && PAR=1
name() {  # the result name of preset $1: kasgarli_CORPUS with one preset, else _PRESET added
    if [ ${#PS[@]} -eq 1 ]; then echo "kasgarli_$C"; else echo "kasgarli_${C}_$1"; fi
}
kas() {  # kas SECONDS PRESET LANGS
    local bpe=()
    [[ $2 == transformer-* ]] && bpe=(--bpe 1000,4000)
    timeout "$1" python3 -m bytelm kasgarli "${SRC[@]}" --langs "$3" --preset "$2" \
        --steps "$STEPS" --evals 5 "${bpe[@]}" --out "$RUNS/$(name "$2")" \
        --train.batch_size="$BATCH" --optim.lr=1e-3 --train.progress=false $OPTS
}
START=$SECONDS
if [ "$PAR" -gt 1 ] || [ ${#PS[@]} -gt 1 ]; then
    mkdir -p "$RUNS"
    # the GPUs this script may use: CUDA_VISIBLE_DEVICES as given, else every one there is
    if [ -n "$CUDA_VISIBLE_DEVICES" ]; then IFS=, read -ra GPUS <<< "$CUDA_VISIBLE_DEVICES"
    else read -ra GPUS <<< "$(python3 -c "import torch; print(*range(max(torch.cuda.device_count(), 1)))")"; fi
    IFS=, read -ra ALL <<< "$LANGS"
    k=0
    for P in "${PS[@]}"; do
        for ((i = 0; i < PAR; i++)); do
            G=""; for ((j = i; j < ${#ALL[@]}; j += PAR)); do G="$G${G:+,}${ALL[j]}"; done
            [ -z "$G" ] && continue
            CUDA_VISIBLE_DEVICES=${GPUS[k % ${#GPUS[@]}]} kas $((LIMIT - 20)) "$P" "$G" \
                > "$RUNS/$(name "$P")_part$i.log" 2>&1 &
            k=$((k + 1))
        done
    done
    wait
fi
rc=0
mkdir -p "$O"
for P in "${PS[@]}"; do
    LEFT=$((LIMIT - (SECONDS - START)))
    kas $((LEFT > 10 ? LEFT : 10)) "$P" "$LANGS" || rc=$?
    for f in json png; do
        [ -f "$RUNS/$(name "$P")/kasgarli.$f" ] && cp "$RUNS/$(name "$P")/kasgarli.$f" "$O/$(name "$P").$f"
    done
done
if [ ${#PS[@]} -gt 1 ] && [ $rc -eq 0 ]; then
    python3 benchmarks/kasgarli_families.py $(for P in "${PS[@]}"; do echo "$O/$(name "$P").json"; done) \
        --out "$O/kasgarli_${C}_families.json" || rc=$?
fi
exit $rc
