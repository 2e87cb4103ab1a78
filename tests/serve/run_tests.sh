#!/usr/bin/env bash
# ctest's entry to the serve tests (tests/serve/test_serve.py): runs them
# with the venv's python (scripts/serve_pyenv.sh makes it; scripts/test.sh
# calls that). Exit 77 (ctest: skipped) when the OpenAI client is missing.
set -uo pipefail
PYENV=$1 BINARY=$2
HERE=$(cd "$(dirname "$0")" && pwd)
if ! "$PYENV/bin/python" -c "import openai" 2>/dev/null; then
  echo "serve tests skipped: no OpenAI client in $PYENV (run scripts/serve_pyenv.sh $PYENV; it needs PyPI)"
  exit 77
fi
export KVSIEVE_BINARY=$BINARY KVSIEVE_SOURCE_DIR=$HERE/../..
exec "$PYENV/bin/python" -m unittest -v "${@:3}" test_serve 2>&1
