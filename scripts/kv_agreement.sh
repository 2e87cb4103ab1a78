#!/usr/bin/env bash
# Greedy-continuation agreement of each KV eviction method with the full
# cache: the same prompt is continued greedily for N tokens with the full
# cache and with each method at each budget; prints, per method and budget,
# the share of positions where the tokens agree, the length of the common
# prefix, and the time the cut took relative to the prefill.
#
#   scripts/kv_agreement.sh MODEL PROMPT_FILE [N] [BUDGETS] [METHODS]
#   e.g. scripts/kv_agreement.sh stories260K.gguf prompt.txt 64 "32 64 128"
# PROMPT_FILE is text, or token ids when it ends in .npy (int32). METHODS are
# --kv specs separated by spaces (e.g. "snapkv laq++ judgeq:soft=s.gguf").
set -euo pipefail
model=${1:?usage: kv_agreement.sh MODEL PROMPT_FILE [N] [BUDGETS] [METHODS]}
prompt=${2:?usage: kv_agreement.sh MODEL PROMPT_FILE [N] [BUDGETS] [METHODS]}
n=${3:-64}
budgets=${4:-"32 64 128"}
methods=${5:-"streamingllm h2o snapkv pyramidkv adakv tova knorm random"}
kvsieve=${KVSIEVE:-$(dirname "$0")/../build/kvsieve}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [[ "$prompt" == *.npy ]]; then input=(--ids "$prompt"); else input=(-f "$prompt"); fi
"$kvsieve" run -m "$model" "${input[@]}" -n "$n" --ignore-eos --print-ids >"$tmp/full" 2>"$tmp/full.err"
prompt_tokens=$(sed -n 's/.*prompt \([0-9]*\) tokens.*/\1/p' "$tmp/full.err")
echo "prompt: $prompt_tokens tokens; $n generated tokens compared with the full cache"
printf '| method | budget | agreement | common prefix | cut + probes / prefill |\n|---|---|---|---|---|\n'
for m in $methods; do
  for b in $budgets; do
    if ! "$kvsieve" run -m "$model" "${input[@]}" -n "$n" --ignore-eos --print-ids --kv "$m" \
      --kv-budget "$b" >"$tmp/out" 2>"$tmp/err"; then
      printf '| %s | %d | %s |\n' "$m" "$b" "$(grep -o 'error: .*' "$tmp/err" | head -1)"
      continue
    fi
    # The cut, plus the probe source's own time (LAQ lookahead, Judge Q soft tokens).
    share=$(sed -n 's/.*compression [0-9.]* s (\([0-9.]*\)% of prefill).*/\1/p' "$tmp/err")
    probe=$(sed -n 's/.*probes [0-9.]* s (\([0-9.]*\)% of prefill).*/\1/p' "$tmp/err")
    if [ -n "$probe" ]; then share=$(awk -v a="$share" -v b="$probe" 'BEGIN { printf "%.1f", a + b }'); fi
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
