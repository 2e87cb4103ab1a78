#!/bin/sh
# Copies what the GPU box needs from ../shared (which does not travel with the device tool)
# into scripts/train_model/.cache/ (ignored by git; pass it to the run tool's `carry`). ~4.7 MB.
set -e
here=$(cd "$(dirname "$0")" && pwd)
shared=${1:-$here/../../../shared}
c=$here/.cache
mkdir -p "$c/public-domain" "$c/paulgraham"
cp "$shared/data/tokenizers/llama-spm/tokenizer.model" "$c/"
cp "$shared/data/haystack/public-domain/frankenstein.txt" "$shared/data/haystack/public-domain/war-and-peace.txt" "$c/public-domain/"
cp "$shared/data/haystack/paulgraham/"*.txt "$c/paulgraham/"
du -sh "$c"
