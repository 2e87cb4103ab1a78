#!/usr/bin/env bash
# Makes the Python environment kvsieve serve's tests and benchmark run in:
# a venv (default build/pyenv) with the official OpenAI client from PyPI.
# Safe to run again; exits non-zero (with a message) when PyPI is out of reach.
set -euo pipefail
cd "$(dirname "$0")/.."
ENV_DIR=${1:-build/pyenv}
if [ -x "$ENV_DIR/bin/python" ] && "$ENV_DIR/bin/python" -c "import openai" 2>/dev/null; then
  exit 0
fi
python3 -m venv "$ENV_DIR"
"$ENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check "openai>=1.0,<3" || {
  echo "serve_pyenv: could not install the openai package from PyPI into $ENV_DIR" >&2
  exit 1
}
