#!/usr/bin/env bash
# Judge Q on the shipped model, end to end: train its two soft-token files
# (the recipe of models/README.md) and measure them against SnapKV on held-out
# prompts, in both placements. Run it again after the model changes.
#   scripts/judgeq_study.sh train     write models/kvsieve-tiny.judgeq{,-agnostic}.gguf (~6 min on 2 cores)
#   scripts/judgeq_study.sh measure   task scores and keep-set overlap (~12 min on 2 cores)
#   scripts/judgeq_study.sh all       both
# Results: build/judgeq-study/ (the training prompts judgeq-train.jsonl, eval results, report and
# overlap tables); the tables are printed as they come.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-}
case "$what" in
  train | measure | all) ;;
  *)
    echo "usage: scripts/judgeq_study.sh train|measure|all" >&2
    exit 2
    ;;
esac
KV=build/kvsieve
[ -x $KV ] || scripts/build.sh
MODEL=models/kvsieve-tiny.gguf
AWARE=models/kvsieve-tiny.judgeq.gguf
AGNOSTIC=models/kvsieve-tiny.judgeq-agnostic.gguf
TASKS=niah_single_1,niah_single_2,niah_multikey_1,niah_multikey_2,niah_multivalue,vt
TRAIN_HAY=../shared/data/haystack/public-domain  # never the evaluation haystack
EVAL_HAY=../shared/data/haystack/paulgraham
for d in "$TRAIN_HAY" "$EVAL_HAY"; do
  [ -d "$d" ] || { echo "judgeq_study: $d is missing (../shared must sit beside the repository)" >&2; exit 1; }
done
OUT=build/judgeq-study
mkdir -p $OUT

if [ "$what" != measure ]; then
  # Training prompts: seeds >= 1,000,000 (evaluation uses seeds below).
  { $KV eval -m $MODEL --tasks $TASKS --lengths 2048 --samples 4 --seed 1000000 --haystack $TRAIN_HAY --print-samples
    $KV eval -m $MODEL --tasks $TASKS --lengths 4096 --samples 2 --seed 1000100 --haystack $TRAIN_HAY --print-samples
  } > $OUT/judgeq-train.jsonl
  for placement in aware agnostic; do
    flag=() out=$AWARE
    [ $placement = agnostic ] && flag=(--query-agnostic) out=$AGNOSTIC
    echo "judgeq_study: training $out" >&2
    $KV train-judgeq -m $MODEL --data $OUT/judgeq-train.jsonl --soft-tokens 32 --steps 400 --lr 0.02 \
      --response-tokens 32 --init-text " What is the special magic number mentioned in the provided text?" \
      "${flag[@]}" --targets $OUT/targets-$placement -o $out
  done
fi

if [ "$what" != train ]; then
  # Task scores: 10 held-out prompts per task at 4096 tokens.
  for placement in aware agnostic; do
    flag=() soft=$AWARE
    [ $placement = agnostic ] && flag=(--query-agnostic) soft=$AGNOSTIC
    rm -f $OUT/eval-$placement.jsonl
    $KV eval -m $MODEL "${flag[@]}" --tasks $TASKS --lengths 4096 --samples 10 --haystack $EVAL_HAY \
      --kv "snapkv judgeq:soft=$soft" --budgets 64,128,256 -o $OUT/eval-$placement.jsonl
    $KV report $OUT/eval-$placement.jsonl | tee $OUT/report-$placement.md
  done
  # Keep-set overlap: 8 held-out prompts per task at 2048 tokens, with the
  # methods' default pooling and without it (kernel=1), each paired with SnapKV.
  $KV eval -m $MODEL --tasks $TASKS --lengths 2048 --samples 8 --seed 0 --haystack $EVAL_HAY --print-samples \
    > $OUT/held.jsonl
  for placement in aware agnostic; do
    flag=() soft=$AWARE
    [ $placement = agnostic ] && flag=(--query-agnostic) soft=$AGNOSTIC
    for k in default 1; do
      spec="snapkv judgeq:soft=$soft"
      [ $k = 1 ] && spec="snapkv:kernel=1 judgeq:soft=$soft,kernel=1"
      $KV judgeq-overlap -m $MODEL --data $OUT/held.jsonl "${flag[@]}" --response-tokens 32 --kv "$spec" \
        | tee $OUT/overlap-$placement-kernel-$k.md
    done
  done
  echo "judgeq_study: tables in $OUT/" >&2
fi
