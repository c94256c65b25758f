# Short GPU measurements (issues #5, #8), one device call (< 10 minutes), from the repo root with
# .whl and .gpu-data carried:  bash benchmarks/gpu_quick.sh OUT_DIR   (most important first)
# - the English patcher LM of BSFIN's entropy-model run (benchmarks/entropy_lm.py, the Turkish
#   recipe), its weights saved in bf16 to OUT/elm_en (small enough to carry to the next call);
# - AGIFORMER decoding, reference step vs the compiled fixed-shape decoder (CUDA graphs), batch 1;
# - where agiformer-31m's training step goes (benchmarks/profile_train.py, torch.profiler);
# - flex sliding-window attention at T = 64K with the block-index mask (peak memory);
# - batch-64 decoding; BSFIN's complex-linear map (pairs / block / complex64); BSFIN time to
#   first byte after the one-step prefill; the Transformer's training profile for comparison.
# CPU dry run: DRY=1 LM_PRESET=transformer-tiny LM_STEPS=5 bash benchmarks/gpu_quick.sh /tmp/q
set -o pipefail
O=${1:?usage: gpu_quick.sh OUT_DIR}
if [ -z "$DRY" ]; then source benchmarks/gpu_env.sh || exit 1; else save_caches() { :; }; pack_results() { :; }; fi
mkdir -p "$O"
timeout 150 python3 benchmarks/entropy_lm.py --name en --source ../shared/data/en/text --out "$O" \
    --steps "${LM_STEPS:-2000}" --preset "${LM_PRESET:-transformer-small}" \
    -- --train.batch_size=64 --train.eval_bytes=0 --optim.lr=2e-3 &&
python3 - "$O/elm_en" <<'PY'
import shutil, sys
from pathlib import Path
from safetensors.torch import load_file, save_file
src, dst = Path("runs/bench/elm_en/ckpt/best"), Path(sys.argv[1])
dst.mkdir(parents=True, exist_ok=True)
shutil.copy(src / "config.json", dst / "config.json")
save_file({k: v.bfloat16().contiguous() for k, v in load_file(src / "model.safetensors").items()},
          dst / "model.safetensors")
PY
if [ -n "$DRY" ]; then exit 0; fi
timeout 150 python3 -m bytelm bench generate --preset agiformer-31m --decode both \
    --contexts 1024 16384 --batch 1 --out "$O/bench_generate_static_h100.json"
timeout 120 python3 benchmarks/profile_train.py --preset agiformer-31m --batch 64 --seq-len 1024 \
    --compile --steps 5 --warmup 3 --out "$O/profile_train_agiformer_h100.json"
timeout 60 python3 -m bytelm bench mixer --T 16384 65536 --B 4 --H 8 --D 64 --ops swa \
    --impls chunk triton --window 512 --out "$O/bench_mixer_swa64k_h100.json"
save_caches "$O"
timeout 90 python3 -m bytelm bench generate --preset agiformer-31m --decode both \
    --contexts 1024 16384 --batch 64 --out "$O/bench_generate_static_b64_h100.json"
timeout 50 python3 benchmarks/complex_repr.py --out "$O/complex_repr_h100.json"
timeout 60 python3 -m bytelm bench generate --preset bsfin-35m --contexts 1024 --batch 1 \
    --new-bytes 48 --decode-reps 2 --prefill-reps 1 --out "$O/bench_generate_bsfin_prefill_h100.json"
timeout 80 python3 benchmarks/profile_train.py --preset transformer-30m --batch 64 --seq-len 1024 \
    --compile --steps 5 --warmup 3 --out "$O/profile_train_transformer_h100.json"
pack_results "$O"
