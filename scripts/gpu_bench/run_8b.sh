#!/usr/bin/env bash
# On the GPU machine: kvsieve's CUDA device beside transformers on a random-weight model of
# Llama-3.1-8B-Instruct's shape (make_shape_model.py), from binaries packed by scripts/gpu_pack.sh.
#   scripts/gpu_bench/run_8b.sh [PACK] [RESULTS_DIR]
# Prints transformers' figures (JSON) and kvsieve run's stderr figures: prefill at 8K (and with
# EXACT=1 also with --gpu-math exact) and 32K,
# decode after 32K with the full cache and cut to 1024 tokens per head (SnapKV), cut time.
set -uo pipefail
cd "$(dirname "$0")/../.."
PACK=${1:-.devpack/pack.tar.xz}
RES=${2:-${OUT:-/tmp}}
M=/tmp/llama8b-shape
source scripts/gpu_unpack.sh
KV="$W/bin/kvsieve"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
[ -f $M/config.json ] || python3 scripts/gpu_bench/make_shape_model.py --out $M
(while sleep 0.25; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; done) > "$RES/gpu_mem.txt" &
SAMPLER=$!
python3 scripts/gpu_bench/hf_bench.py --model $M --lengths 8192,32768 --decode 32 --reps 2 | tee "$RES/hf.json"
echo "hf peak MiB (nvidia-smi): $(sort -n "$RES/gpu_mem.txt" | tail -1)"; : > "$RES/gpu_mem.txt"
for job in "8192 tensor" ${EXACT:+"8192 exact"} "32768 tensor"; do
  set -- $job
  echo "== kvsieve prefill $1, --gpu-math $2"
  timeout ${KV_TIMEOUT:-240} "$KV" run -m $M --device cuda --gpu-math $2 --ids $M/ids_$1.npy -n 16 --ignore-eos --kv-type bf16 -b 2048 2>&1 | grep -v "^$" | tail -4
done
echo "== kvsieve 32768 + snapkv 1024"
timeout ${KV_TIMEOUT:-240} "$KV" run -m $M --device cuda --ids $M/ids_32768.npy -n 32 --ignore-eos --kv-type bf16 -b 2048 \
  --kv snapkv --kv-budget 1024 2>&1 | grep -v "^$" | tail -5
echo "kvsieve peak MiB (nvidia-smi): $(sort -n "$RES/gpu_mem.txt" | tail -1)"
kill $SAMPLER
