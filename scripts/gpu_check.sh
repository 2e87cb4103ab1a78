#!/usr/bin/env bash
# Runs the CUDA device's tests on a GPU machine from binaries built elsewhere
# (scripts/gpu_pack.sh packs them with the libraries they need that such a
# machine may lack, and stories260K). Prints the device, runs every test whose
# name has "Cuda" and every device-parameterized test on "cuda", then a
# compute-sanitizer memcheck of a short subset.
#   scripts/gpu_check.sh [PACK.tar.xz] [gtest filter]
set -uo pipefail
cd "$(dirname "$0")/.."
PACK=${1:-.devpack/pack.tar.xz}
FILTER=${2:-*Cuda*:*/cuda}
source scripts/gpu_unpack.sh
export KVSIEVE_FIXTURES="$PWD/tests/fixtures" KVSIEVE_BINARY="$W/bin/kvsieve" KVSIEVE_SHARED_DATA="$W/data"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$W/bin/kvsieve" version
"$W/bin/kvsieve_tests" --gtest_filter="$FILTER" --gtest_brief=0 2>&1 | grep -v "^\[       OK \]\|^\[ RUN      \]"
rc=${PIPESTATUS[0]}
if [ "${MEMCHECK:-1}" = 1 ] && command -v compute-sanitizer >/dev/null; then
  MC_LOG=${OUT:-/tmp}/memcheck.log
  compute-sanitizer --tool memcheck --leak-check no --error-exitcode 9 --print-limit 20 \
    "$W/bin/kvsieve_tests" --gtest_filter="${MEMCHECK_FILTER:-Cuda.*:*llama3_f32*Cuda*:*Cuda*llama3_f32*:*ApiBatch*/cuda}" \
    > "$MC_LOG" 2>&1
  echo "memcheck exit: $? (log: $MC_LOG); the first errors, with the test that was running:"
  grep -E "^\[ RUN|^========= (Invalid|Program hit|Error|    at )" "$MC_LOG" | grep -B1 "^=========" | head -40
  tail -3 "$MC_LOG"
fi
exit "$rc"
