#!/usr/bin/env bash
# The main job: installs what is missing, builds, and generates text with a model.
#   scripts/demo.sh [MODEL] [extra `kvsieve run` options]
# kvsieve does not ship a model of its own yet. Without MODEL, the demo uses
# llama2.c's stories260K from ../shared/data when it is there (converting it to
# GGUF first); otherwise it asks for a model path.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
KV=build/kvsieve
MODEL=${1:-}
[ $# -gt 0 ] && shift
if [ -z "$MODEL" ]; then
  S=../shared/data/stories260K
  if [ -f "$S/stories260K.bin" ]; then
    MODEL=build/stories260K.gguf
    [ -f "$MODEL" ] || $KV convert --llama2c "$S/stories260K.bin" --tokenizer "$S/tok512.bin" -o "$MODEL"
    echo "demo: no model given; using llama2.c's stories260K ($MODEL)" >&2
    echo "demo: $KV run -m $MODEL -p 'Once upon a time' -n 200" >&2
    $KV run -m "$MODEL" -p "Once upon a time" -n 200
    # What eviction keeps: next-token fidelity to the full cache on real text.
    rm -f build/demo_results.jsonl
    echo "demo: comparing KV eviction methods on stories260K (fidelity to the full cache)" >&2
    $KV eval -m "$MODEL" --tasks fidelity --lengths 400 --samples 4 \
      --haystack "../shared/data/text/tinystories_sample.txt" \
      --kv "streamingllm h2o snapkv pyramidkv laq++" --budgets 64,128 -o build/demo_results.jsonl
    $KV report build/demo_results.jsonl --svg build/demo_plots
    echo "demo: results in build/demo_results.jsonl, charts in build/demo_plots/" >&2
    exit 0
  else
    echo "demo: kvsieve does not ship a model yet. Give one: scripts/demo.sh MODEL.gguf|HF_FOLDER [options]" >&2
    exit 2
  fi
fi
[ $# -gt 0 ] || set -- -p "The capital of France is" -n 64
echo "demo: $KV run -m $MODEL $*" >&2
$KV run -m "$MODEL" "$@"
