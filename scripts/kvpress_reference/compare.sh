#!/usr/bin/env bash
# kvsieve beside NVIDIA kvpress (from PyPI) with transformers on the CPU, on SmolLM2-135M-Instruct:
# the same prompts (chat template, Paul Graham haystack), the same dequantized weights, the
# context cut before the question is read (kvpress's pipeline), kvpress's presses and defaults.
#
#   scripts/kvpress_reference/compare.sh [OUT]        (default build/kvpress-compare)
#
# Needs python3 with torch, transformers, gguf and accelerate, and kvpress's package folder under
# third_party_ref/ (the wheel from `pip download kvpress==0.5.5 --no-deps`, unzipped there; it is
# imported without its __init__, see make_keep_sets.py). Environment: PYTHON, TASKS, LENGTH,
# SAMPLES, RATIOS, METHODS, THREADS. Both halves resume where they stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-build/kvpress-compare}
PYTHON=${PYTHON:-python3}
MODEL=models/cache/SmolLM2-135M-Instruct.Q4_1.gguf
TASKS=${TASKS:-niah_single_1,niah_single_2,niah_multikey_1,passkey}
LENGTH=${LENGTH:-2048}
SAMPLES=${SAMPLES:-4}
RATIOS=${RATIOS:-0.25,0.5,0.75}
METHODS=${METHODS:-snapkv,pyramidkv,streamingllm,tova}
THREADS=${THREADS:-0}
mkdir -p "$OUT"
[ -f "$MODEL" ] || scripts/get_smollm2.sh
SEL=(-m "$MODEL" --chat --tasks "$TASKS" --lengths "$LENGTH" --samples "$SAMPLES"
     --haystack ../shared/data/haystack/paulgraham)
build/kvsieve eval "${SEL[@]}" --print-samples > "$OUT/prompts.jsonl"
build/kvsieve eval "${SEL[@]}" -t "$THREADS" --query-agnostic --kv-preset kvpress --ratios "$RATIOS" \
  --kv "${METHODS//,/ }" -o "$OUT/kvsieve.jsonl"
$PYTHON scripts/kvpress_reference/compare_eval.py --kvpress third_party_ref --gguf "$MODEL" \
  --prompts "$OUT/prompts.jsonl" --methods "$METHODS" --ratios "$RATIOS" --threads "$THREADS" \
  --out "$OUT/kvpress.jsonl"
python3 scripts/kvpress_reference/compare_table.py "$OUT/kvsieve.jsonl" "$OUT/kvpress.jsonl" | tee "$OUT/table.md"
