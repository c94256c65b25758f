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
# CPU dry run (no gpu_env): DRY=1 bash benchmarks/gpu_kasgarli.sh ntrex /tmp/o transformer-tiny 4
set -o pipefail
U="usage: gpu_kasgarli.sh bible|ntrex|mono OUT_DIR [PRESET] [STEPS]"
C=${1:?$U}
O=${2:?$U}
[ "$C" = bible ] || [ "$C" = ntrex ] || [ "$C" = mono ] || { echo "$U" >&2; exit 2; }
PRESET=${3:-transformer-small}
SRC=(--corpus "../shared/data/parallel/$C")
if [ "$C" = bible ]; then LANGS=eng,tur,hun,kor,est,jpn; STEPS=${4:-1500}
elif [ "$C" = mono ]; then LANGS=eng,tur; STEPS=${4:-1500}; SRC=(--mode monolingual)
else LANGS=aze,deu,eng,est,eus,fin,hun,jpn,kaz,kir,kor,tat,tuk,tur,uzb; STEPS=${4:-400}; fi
if [ -z "$DRY" ]; then source benchmarks/gpu_env.sh >/dev/null || exit 1; fi
timeout 560 python3 -m bytelm kasgarli "${SRC[@]}" --langs "$LANGS" \
    --preset "$PRESET" --steps "$STEPS" --evals 5 --bpe 1000,4000 --out "runs/kasgarli_$C" \
    --train.batch_size=32 --optim.lr=1e-3 --train.progress=false
rc=$?
mkdir -p "$O"
for f in json png; do
    [ -f "runs/kasgarli_$C/kasgarli.$f" ] && cp "runs/kasgarli_$C/kasgarli.$f" "$O/kasgarli_$C.$f"
done
exit $rc
