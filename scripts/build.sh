#!/usr/bin/env bash
# Usage: scripts/build.sh [build-dir] [extra cmake args...]
# Installs the dependencies (scripts/setup.sh), configures with Ninja
# (RelWithDebInfo unless the extra args say otherwise) and builds everything.
# Executables land in <build-dir>/bin (default build/bin). AION_BUILD_TARGETS
# (space-separated) builds only those targets, e.g. "aion-worker aion".
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${1:-build}"
shift || true

scripts/setup.sh
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
targets=()
for t in ${AION_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$dir" "${targets[@]}"
