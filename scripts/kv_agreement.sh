#!/usr/bin/env bash
# Greedy-continuation agreement of each KV eviction method with the full
# cache: the same prompt is continued greedily for N tokens with the full
# cache and with each method at each budget; prints, per method and budget,
# the share of positions where the tokens agree, the length of the common
# prefix, and the time the cut took relative to the prefill.
#
#   scripts/kv_agreement.sh MODEL PROMPT_FILE [N] [BUDGETS] [METHODS]
#   e.g. scripts/kv_agreement.sh stories260K.gguf prompt.txt 64 "32 64 128"
set -euo pipefail
model=${1:?usage: kv_agreement.sh MODEL PROMPT_FILE [N] [BUDGETS] [METHODS]}
prompt=${2:?usage: kv_agreement.sh MODEL PROMPT_FILE [N] [BUDGETS] [METHODS]}
n=${3:-64}
budgets=${4:-"32 64 128"}
methods=${5:-"streamingllm h2o snapkv pyramidkv adakv tova knorm random"}
kvsieve=${KVSIEVE:-$(dirname "$0")/../build/kvsieve}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$kvsieve" run -m "$model" -f "$prompt" -n "$n" --ignore-eos --print-ids >"$tmp/full" 2>"$tmp/full.err"
prompt_tokens=$(sed -n 's/.*prompt \([0-9]*\) tokens.*/\1/p' "$tmp/full.err")
echo "prompt: $prompt_tokens tokens; $n generated tokens compared with the full cache"
printf '| method | budget | agreement | common prefix | cut / prefill |\n|---|---|---|---|---|\n'
for m in $methods; do
  for b in $budgets; do
    "$kvsieve" run -m "$model" -f "$prompt" -n "$n" --ignore-eos --print-ids --kv "$m" \
      --kv-budget "$b" >"$tmp/out" 2>"$tmp/err"
    share=$(sed -n 's/.*compression [0-9.]* s (\([0-9.]*\)% of prefill).*/\1/p' "$tmp/err")
    awk -v m="$m" -v b="$b" -v n="$n" -v share="$share" '
      NR == FNR { for (i = 1; i <= NF; i++) full[i] = $i; next }
      { same = 0; prefix = -1
        for (i = 1; i <= n; i++) {
          if ($i == full[i]) same++; else if (prefix < 0) prefix = i - 1
        }
        if (prefix < 0) prefix = n
        printf "| %s | %d | %.2f | %d | %s%% |\n", m, b, same / n, prefix, share }' \
      "$tmp/full" "$tmp/out"
  done
done
