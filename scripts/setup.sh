#!/usr/bin/env bash
# Installs the Debian 12 packages Aion needs to build, test and run, and the npm
# packages of the Node.js activity worker example.
# Idempotent; skips apt when everything is already installed.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libnats-dev nats-server liblmdb-dev lmdb-utils
  libprotobuf-dev protobuf-compiler
  libspdlog-dev libboost-test-dev libcli11-dev nlohmann-json3-dev libjemalloc-dev
  dpkg-dev file  # cpack -G DEB: dpkg-shlibdeps, and file to find the executables
  adduser        # the aion package's postinst, when CI installs it
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
apt_install() {
  echo "setup: installing $*"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Node.js >= 18 and npm for the activity worker in examples/activity-worker-node.
command -v node >/dev/null || missing+=(nodejs)
if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
# Debian's nodejs comes without npm; a nodejs from elsewhere (NodeSource)
# bundles npm and conflicts with Debian's npm package.
if ! command -v npm >/dev/null; then
  if dpkg-query -W -f='${Version}' nodejs 2>/dev/null | grep -qv nodesource; then
    apt_install npm
  else
    echo "setup: node is installed without npm, and Debian's npm does not fit this node: install npm" >&2
    exit 1
  fi
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
  echo "setup: Node.js >= 18 needed, found $(node --version)" >&2
  exit 1
fi
# The example worker's npm packages, reinstalled only when package-lock.json
# (or the node version) changed since the last install.
node_dir="$(cd "$(dirname "$0")/.." && pwd)/examples/activity-worker-node"
stamp="$node_dir/node_modules/.aion-setup-stamp"
want="$(node --version) $(sha256sum <"$node_dir/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: npm ci in examples/activity-worker-node"
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$want" >"$stamp"
fi
echo "setup: dependencies present"
