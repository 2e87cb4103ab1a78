#!/usr/bin/env bash
# The tables of models/SMOLLM2.md: what each eviction method keeps of SmolLM2-135M-Instruct, a real
# pretrained model from PyPI, in its chat template.
#
#   scripts/smollm2_card.sh [all|train|eval|fidelity|tables] [OUT]     (default: all, build/smollm2)
#
# train:    Judge Q soft tokens for this model (query-aware and query-agnostic), trained by
#           `kvsieve train-judgeq` on chat prompts with training seeds (>= 1000000)
# eval:     the classic needle (Paul Graham haystack), passkey and RULER's retrieval tasks at
#           $LENGTHS tokens, $SAMPLES prompts per task and length, every method at $BUDGETS
#           tokens per head, query-aware and query-agnostic
# fidelity: KL and top-1 agreement with the full cache on public-domain text
# tables:   the tables (kvsieve report) and each method's paired difference from SnapKV
#
# Every step appends to resumable results files: run it again to continue where it stopped.
# Environment: THREADS, DEVICE (cpu|cuda|auto), LENGTHS, SAMPLES, BUDGETS, TASKS, MODES.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
OUT=${2:-build/smollm2}
MODEL=models/cache/SmolLM2-135M-Instruct.Q4_1.gguf
KV=${KVSIEVE:-build/kvsieve}
THREADS=${THREADS:-0}
DEVICE=${DEVICE:-cpu}
LENGTHS=${LENGTHS:-2048,4096,8192}
SAMPLES=${SAMPLES:-5}
BUDGETS=${BUDGETS:-64,128,256,512,1024}
TASKS=${TASKS:-niah,passkey,niah_single_1,niah_single_2,niah_multikey_1}
MODES=${MODES:-aware agnostic}
PG=../shared/data/haystack/paulgraham
PD=../shared/data/haystack/public-domain
AWARE=$OUT/smollm2.judgeq.gguf
AGNOSTIC=$OUT/smollm2.judgeq-agnostic.gguf
COMMON=(-m "$MODEL" -t "$THREADS" --device "$DEVICE")

[ -f "$MODEL" ] || scripts/get_smollm2.sh
[ -x "$KV" ] || BUILD_TARGET=kvsieve scripts/build.sh
for d in "$PG" "$PD"; do
  [ -d "$d" ] || { echo "smollm2_card: $d is missing (the haystacks come with ../shared/data)" >&2; exit 1; }
done
mkdir -p "$OUT"

if [ "$what" = all ] || [ "$what" = train ]; then
  # Training prompts: RULER's retrieval tasks in the chat template, seeds >= 1000000 (never
  # evaluated), public-domain haystack (the evaluation uses Paul Graham's essays).
  T=niah_single_1,niah_single_2,niah_multikey_1,niah_multikey_2,niah_multivalue,niah_multiquery
  $KV eval -m "$MODEL" --tasks $T --lengths 2048 --samples 4 --seed 1000000 --haystack "$PD" \
    --chat --print-samples > "$OUT/judgeq-train.jsonl"
  train() {  # OUT_FILE [--query-agnostic]
    $KV train-judgeq "${COMMON[@]}" --data "$OUT/judgeq-train.jsonl" --soft-tokens 32 --steps 150 \
      --lr 0.02 --response-tokens 32 --checkpoint-every 25 \
      --init-text " What is the special magic number mentioned in the provided text?" -o "$@"
  }
  # OUT.done marks a finished training; an interrupted one resumes from its checkpoint.
  for soft in "$AWARE" "$AGNOSTIC"; do
    [ -f "$soft.done" ] && continue
    flags=()
    [ "$soft" = "$AGNOSTIC" ] && flags+=(--query-agnostic)
    [ -f "$soft.state" ] && flags+=(--resume)
    train "$soft" "${flags[@]}"
    touch "$soft.done"
  done
fi

if [ "$what" = all ] || [ "$what" = eval ]; then
  for mode in $MODES; do
    flag=() soft=$AWARE
    [ "$mode" = agnostic ] && flag=(--query-agnostic) soft=$AGNOSTIC
    # Without a training of its own, the soft tokens shipped in models/ (the same files).
    [ -f "$soft" ] || soft=models/$(basename "$soft")
    judgeq=()
    [ -f "$soft" ] && judgeq=("judgeq:soft=$soft")
    $KV eval "${COMMON[@]}" "${flag[@]}" --chat --tasks "$TASKS" --lengths "$LENGTHS" \
      --samples "$SAMPLES" --haystack "$PG" --budgets "$BUDGETS" \
      --kv "streamingllm h2o snapkv pyramidkv adakv tova laq laq++ ${judgeq[*]}" \
      -o "$OUT/eval-$mode.jsonl"
  done
fi

if [ "$what" = all ] || [ "$what" = fidelity ]; then
  $KV eval "${COMMON[@]}" --tasks fidelity --lengths "$LENGTHS" --samples "$SAMPLES" --haystack "$PD" \
    --budgets "$BUDGETS" --kv "streamingllm h2o snapkv pyramidkv adakv tova laq laq++" \
    -o "$OUT/fidelity.jsonl"
fi

if [ "$what" = all ] || [ "$what" = tables ]; then
  for f in "$OUT"/eval-*.jsonl "$OUT/fidelity.jsonl"; do
    [ -f "$f" ] || continue
    $KV report "$f" --svg "$OUT/svg-$(basename "$f" .jsonl)" > "${f%.jsonl}.md"
  done
  python3 scripts/paired_gains.py "$OUT"/eval-*.jsonl --by-length > "$OUT/gains.md"
  echo "smollm2_card: tables in $OUT/*.md" >&2
fi
