#!/usr/bin/env bash
# Packs what scripts/gpu_check.sh runs on a GPU machine: build/kvsieve and the
# test binary (stripped), the libraries of this machine they need that a CUDA
# image may lack (Highway, PCRE2, cpp-httplib and its Brotli), and ../shared/data's stories260K and texts.
# Writes .devpack/pack.tar.xz (ignored by git; a few MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/bin" "$T/lib" "$T/data" .devpack
cp "$BUILD/kvsieve" "$BUILD/tests/kvsieve_tests" "$T/bin/"
strip "$T/bin/"*
for lib in $(ldd "$BUILD/kvsieve" | awk '/libhwy|libpcre2|libcpp-httplib|libbrotli/ {print $3}'); do cp -L "$lib" "$T/lib/"; done
for d in stories260K text; do
  [ -d ../shared/data/$d ] && cp -r ../shared/data/$d "$T/data/"
done
# The device machine takes at most 64 MiB with the working tree: compress hard.
XZ_OPT=${XZ_OPT:--9e} tar -C "$T" -cJf .devpack/pack.tar.xz .
ls -la .devpack/pack.tar.xz
