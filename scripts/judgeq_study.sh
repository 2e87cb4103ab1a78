#!/usr/bin/env bash
# Judge Q on the shipped model, end to end: train its two soft-token files
# (the recipe of models/README.md) and measure them against SnapKV on held-out
# prompts, in both placements. Run it again after the model changes.
#   scripts/judgeq_study.sh train     write models/kvsieve-tiny.judgeq{,-agnostic}.gguf (~7 min on 2 cores)
#   scripts/judgeq_study.sh measure   task scores (20 prompts per task at 4K) and keep-set overlap (~25 min)
#   scripts/judgeq_study.sh all       both
#   scripts/judgeq_study.sh validate  how the number of soft tokens was chosen: 8/16/32/64/128 per
#                                     placement, keep-set overlap on validation prompts (~40 min)
# Results: build/judgeq-study/ (the training prompts judgeq-train.jsonl, eval results, report and
# overlap tables, gains.md); the tables are printed as they come.
# Seeds: training >= 1,000,000 (public-domain haystack); validation 500-507 and held-out
# evaluation 0-19 (Paul Graham haystack), so the choice made on validation is not scored on it.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-}
case "$what" in
  train | measure | all | validate) ;;
  *)
    echo "usage: scripts/judgeq_study.sh train|measure|all|validate" >&2
    exit 2
    ;;
esac
KV=build/kvsieve
[ -x $KV ] || scripts/build.sh
MODEL=models/kvsieve-tiny.gguf
AWARE=models/kvsieve-tiny.judgeq.gguf
AGNOSTIC=models/kvsieve-tiny.judgeq-agnostic.gguf
# Soft tokens per placement, chosen with `validate`: more of them help query-agnostic (the soft
# tokens must stand for a question they cannot see); fewer help query-aware, where the
# question itself sits just before them.
M_AWARE=16
M_AGNOSTIC=64
TASKS=niah_single_1,niah_single_2,niah_multikey_1,niah_multikey_2,niah_multivalue,vt
TRAIN_HAY=../shared/data/haystack/public-domain  # never the evaluation haystack
EVAL_HAY=../shared/data/haystack/paulgraham
for d in "$TRAIN_HAY" "$EVAL_HAY"; do
  [ -d "$d" ] || { echo "judgeq_study: $d is missing (../shared must sit beside the repository)" >&2; exit 1; }
done
OUT=build/judgeq-study
mkdir -p $OUT

# train_soft PLACEMENT M OUT_FILE: the card's recipe; targets are cached per placement.
train_soft() {
  local flag=()
  [ "$1" = agnostic ] && flag=(--query-agnostic)
  echo "judgeq_study: training $3 ($2 soft tokens, query-$1)" >&2
  $KV train-judgeq -m $MODEL --data $OUT/judgeq-train.jsonl --soft-tokens "$2" --steps 400 --lr 0.02 \
    --response-tokens 32 --init-text " What is the special magic number mentioned in the provided text?" \
    "${flag[@]}" --targets $OUT/targets-"$1" -o "$3"
}

# held_prompts SEED FILE: 8 prompts per task at 2048 tokens from SEED on.
held_prompts() {
  $KV eval -m $MODEL --tasks $TASKS --lengths 2048 --samples 8 --seed "$1" --haystack $EVAL_HAY --print-samples > "$2"
}

if [ "$what" = train ] || [ "$what" = all ] || [ "$what" = validate ]; then
  { $KV eval -m $MODEL --tasks $TASKS --lengths 2048 --samples 4 --seed 1000000 --haystack $TRAIN_HAY --print-samples
    $KV eval -m $MODEL --tasks $TASKS --lengths 4096 --samples 2 --seed 1000100 --haystack $TRAIN_HAY --print-samples
  } > $OUT/judgeq-train.jsonl
fi

if [ "$what" = validate ]; then
  mkdir -p $OUT/validate
  held_prompts 500 $OUT/validate/val.jsonl
  for placement in aware agnostic; do
    flag=() spec=snapkv
    [ $placement = agnostic ] && flag=(--query-agnostic)
    for m in 8 16 32 64 128; do
      train_soft $placement $m $OUT/validate/$placement-m$m.gguf
      spec="$spec judgeq:soft=$OUT/validate/$placement-m$m.gguf"
    done
    $KV judgeq-overlap -m $MODEL --data $OUT/validate/val.jsonl "${flag[@]}" --response-tokens 32 --kv "$spec" \
      | tee $OUT/validate/overlap-$placement.md
  done
  echo "judgeq_study: validation tables in $OUT/validate/" >&2
  exit 0
fi

if [ "$what" != measure ]; then
  train_soft aware $M_AWARE $AWARE
  train_soft agnostic $M_AGNOSTIC $AGNOSTIC
fi

if [ "$what" != train ]; then
  # Task scores: 20 held-out prompts per task at 4096 tokens (120 per cell).
  for placement in aware agnostic; do
    flag=() soft=$AWARE
    [ $placement = agnostic ] && flag=(--query-agnostic) soft=$AGNOSTIC
    rm -f $OUT/eval-$placement.jsonl
    $KV eval -m $MODEL "${flag[@]}" --tasks $TASKS --lengths 4096 --samples 20 --haystack $EVAL_HAY \
      --kv "snapkv judgeq:soft=$soft" --budgets 64,128,256 -o $OUT/eval-$placement.jsonl
    $KV report $OUT/eval-$placement.jsonl | tee $OUT/report-$placement.md
  done
  # Judge Q's gain over SnapKV per placement, and agnostic minus aware, each paired prompt by
  # prompt (mean ± standard error over the prompts, in points).
  python3 - $OUT/eval-aware.jsonl $OUT/eval-agnostic.jsonl <<'EOF' | tee $OUT/gains.md
import json, math, sys
from collections import defaultdict

def scores(path):
    s = defaultdict(dict)
    for line in open(path):
        r = json.loads(line)
        s[(r["method"], r["budget"])][(r["task"], r["seed"])] = 100.0 * r["score"]
    return s

def mean_se(x):
    m = sum(x) / len(x)
    v = sum((a - m) ** 2 for a in x) / (len(x) - 1) if len(x) > 1 else 0.0
    return m, math.sqrt(v / len(x))

aw, ag = scores(sys.argv[1]), scores(sys.argv[2])
print("| budget | gain, query-aware | gain, query-agnostic | agnostic - aware | prompts |")
print("|---|---:|---:|---:|---:|")
for b in sorted({b for (m, b) in aw if m == "judgeq"}):
    keys = sorted(set(aw[("judgeq", b)]) & set(aw[("snapkv", b)]) & set(ag[("judgeq", b)]) & set(ag[("snapkv", b)]))
    g_aw = [aw[("judgeq", b)][k] - aw[("snapkv", b)][k] for k in keys]
    g_ag = [ag[("judgeq", b)][k] - ag[("snapkv", b)][k] for k in keys]
    cells = [mean_se(g_aw), mean_se(g_ag), mean_se([y - x for x, y in zip(g_aw, g_ag)])]
    print(f"| {b} | " + " | ".join(f"{m:+.1f} ± {se:.1f}" for m, se in cells) + f" | {len(keys)} |")
print("\ngain: Judge Q's score minus SnapKV's on the same prompt; agnostic - aware: the two gains' difference"
      " on the same prompt; mean ± standard error over prompts, in points.")
EOF
  # Keep-set overlap: 8 held-out prompts per task at 2048 tokens, with the
  # methods' default pooling and without it (kernel=1), each paired with SnapKV.
  held_prompts 0 $OUT/held.jsonl
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
