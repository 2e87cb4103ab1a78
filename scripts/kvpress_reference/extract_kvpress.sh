#!/usr/bin/env bash
# Copies the minimal kvpress file closure that make_keep_sets.py imports out of an NVIDIA/kvpress
# git repository (a clone or a bare mirror) at a given commit into DEST/kvpress/ (default
# third_party_ref/, which .gitignore keeps out of the repository).
#
#   scripts/kvpress_reference/extract_kvpress.sh GIT_DIR [COMMIT] [DEST]
#
# GIT_DIR: e.g. a `git clone https://github.com/NVIDIA/kvpress` (pass its .git) or a bare mirror.
set -euo pipefail
GIT_DIR=${1:?usage: extract_kvpress.sh GIT_DIR [COMMIT] [DEST]}
COMMIT=${2:-8bb29b9c3078452a86d692f29123fa6c793e2b05}
DEST=${3:-third_party_ref}
FILES="LICENSE kvpress/utils.py kvpress/attention_patch.py"
for p in base_press scorer_press snapkv_press pyramidkv_press streaming_llm_press knorm_press \
         tova_press observed_attention_press adakv_press; do
  FILES="$FILES kvpress/presses/$p.py"
done
mkdir -p "$DEST/kvpress/presses"
for f in $FILES; do
  git --git-dir="$GIT_DIR" show "$COMMIT:$f" >"$DEST/$f"
done
git --git-dir="$GIT_DIR" rev-parse "$COMMIT^{commit}" >"$DEST/kvpress/COMMIT"
echo "kvpress $(cat "$DEST/kvpress/COMMIT") -> $DEST/kvpress ($(echo $FILES | wc -w) files)"
