#!/usr/bin/env bash
# Writes the keep-set goldens of tests/fixtures/kept/: for every case of
# cases.txt and every model (the seven tests/fixtures/hf models, and
# stories260K when ../shared/data has it), the positions each layer and head
# kept (`kvsieve run --dump-kept`) and the 8 token ids generated after the cut.
# test_kv_goldens.cpp runs the same cases with the kvsieve it tests and wants
# them identical. The goldens are made by a kvsieve built from a chosen commit
# (the one before a change to the core), so that a refactor proves it keeps
# what every method kept:
#   scripts/kept_goldens.sh BUILD/kvsieve AVX3 tests/fixtures/kept
# Each head's keep set is written compactly, "budget:ranges" ("48:0-3,40,467-510"),
# heads separated by ' ', layers by ' | '.
# TARGET is the SIMD target the binary ran on (`kvsieve version` prints it);
# the test compares exactly only on that target (f32 sums differ by target).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$1 TARGET=$2 OUT=$3
CASES=tests/fixtures/kept/cases.txt
SHARED=../shared/data
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"

models=(llama2-f32 llama3-f32 llama3-bf16 mistral-f32 mistral-bf16 qwen2-f32 qwen2-bf16)
[ -f "$SHARED/stories260K/stories260K.bin" ] && models+=(stories260K)

for name in "${models[@]}"; do
  if [ "$name" = stories260K ]; then
    model=$TMP/stories260K.gguf
    "$BIN" convert --llama2c "$SHARED/stories260K/stories260K.bin" \
      --tokenizer "$SHARED/stories260K/tok512.bin" -o "$model" 2>/dev/null
    head -c 600 "$SHARED/text/tinystories_sample.txt" > "$TMP/prompt.txt"
    prompt=(-f "$TMP/prompt.txt")
    "$BIN" judgeq-init -m "$model" -p "Once upon a time there was" --count 8 -o "$TMP/soft.gguf" 2>/dev/null
  else
    model=tests/fixtures/hf/$name
    prompt=(--ids "$model/ids.npy")
    "$BIN" judgeq-init -m "$model" --ids "$model/ids.npy" --count 8 -o "$TMP/soft.gguf" 2>/dev/null
  fi
  out=$OUT/$name.jsonl
  printf '{"target":"%s","model":"%s"}\n' "$TARGET" "$name" > "$out.tmp"
  while read -r case args; do
    case "$case" in ''|'#'*) continue ;; esac
    if [ "${case#text:}" != "$case" ]; then
      [ "$name" = stories260K ] || continue
      case=${case#text:}
    fi
    args=${args//\{soft\}/$TMP/soft.gguf}
    eval "set -- $args"
    ids=$("$BIN" run -m "$model" "${prompt[@]}" -n 8 --print-ids -t ${GOLDEN_THREADS:-2} "$@" --dump-kept "$TMP/kept.json" 2>/dev/null)
    printf '{"case":"%s","ids":"%s","kept":%s}\n' "$case" "$(echo $ids)" "$(tr -d '\n' < "$TMP/kept.json")" >> "$out.tmp"
  done < "$CASES"
  python3 scripts/compact_kept.py < "$out.tmp" > "$out"
  rm "$out.tmp"
  echo "kept_goldens: $out ($(($(wc -l < "$out") - 1)) cases)" >&2
done
