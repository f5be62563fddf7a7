#!/usr/bin/env bash
# Installs the Debian 12 packages Aion needs to build, test and run.
# Idempotent; skips apt when everything is already installed.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libnats-dev nats-server liblmdb-dev lmdb-utils
  libprotobuf-dev protobuf-compiler
  libspdlog-dev libboost-test-dev libcli11-dev nlohmann-json3-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: dependencies present"
