#!/usr/bin/env bash
# Configures and builds kvsieve (Release) into build/ (or $BUILD_DIR): every
# target, or only $BUILD_TARGET (e.g. BUILD_TARGET=kvsieve: the command line).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" ${BUILD_TARGET:+--target "$BUILD_TARGET"}
