#!/usr/bin/env bash
# scripts/check_install.sh <build-dir>
#
# Checks what an already built <build-dir> installs and packages; builds
# nothing of Aion itself.
#   1. cmake --install into <build-dir>/install-prefix: the file list against
#      packaging/expected-files-*.txt, every "aion/..." include of an installed
#      header is installed too, the versions printed, the nats-server fragment
#      accepted by nats-server -t, and packaging/smoke built against the prefix
#      twice (find_package(Aion CONFIG), pkg-config aion) and run.
#      The prefix stays for later stages; its path is printed as
#      "AION_INSTALL_PREFIX=<dir>".
#   2. cpack -G DEB into <build-dir>/packages: each package's file list
#      (dpkg-deb -c) and control fields.
#   3. As root only: apt-get install both packages, check the installed
#      commands, the user the postinst creates, pkg-config and the smoke
#      program against /usr; then purge them, and whatever their installation
#      pulled in, and the user if it was new, leaving the machine as found.
# Prints one line per check and "check_install: PASS|FAIL ..." last; exits 1
# if any check failed.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ $# -ne 1 ] || [ ! -f "$1/CMakeCache.txt" ]; then
  echo "usage: $0 <configured and built build-dir>" >&2
  exit 2
fi
build="$(cd "$1" && pwd)"
prefix="$build/install-prefix"
work="$build/check-install"
start=$SECONDS
checks=0
failures=0

indent() { sed 's/^/    /'; }
pass() { checks=$((checks + 1)); echo "check_install: ok   $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "check_install: FAIL $*"; }
# check <description> <command...>: runs the command, its output indented on failure.
check() {
  local what="$1" out
  shift
  if out=$("$@" 2>&1); then pass "$what"; else fail "$what"; indent <<<"$out"; fi
}
cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }

version="$(cache_value CMAKE_PROJECT_VERSION)"
libdir="$(cache_value CMAKE_INSTALL_LIBDIR)"
if [ -z "$version" ] || [ -z "$libdir" ]; then
  echo "check_install: $build/CMakeCache.txt has no CMAKE_PROJECT_VERSION or CMAKE_INSTALL_LIBDIR" >&2
  exit 1
fi
deb_version="$version-1"  # CPACK_DEBIAN_PACKAGE_RELEASE 1
rm -rf "$work" "$prefix"
mkdir -p "$work"

# expected <list> [sed expression]: the patterns of packaging/expected-files-<list>.txt,
# with @LIBDIR@ filled in and the sed expression applied.
expected() {
  grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$root/packaging/expected-files-$1.txt" |
    sed -e "s|@LIBDIR@|$libdir|g" -e "${2:-}"
}

# compare_files <patterns-file> <files-file>: every file matches a pattern and
# every pattern a file (bash glob patterns, * also matches /).
compare_files() {
  local -a patterns files
  local f p matched ok=0
  mapfile -t patterns <"$1"
  mapfile -t files <"$2"
  for f in "${files[@]}"; do
    matched=0
    for p in "${patterns[@]}"; do
      # shellcheck disable=SC2053  # $p is a pattern on purpose
      if [[ $f == $p ]]; then matched=1; break; fi
    done
    if [ $matched = 0 ]; then echo "not expected: $f"; ok=1; fi
  done
  for p in "${patterns[@]}"; do
    matched=0
    for f in "${files[@]}"; do
      # shellcheck disable=SC2053
      if [[ $f == $p ]]; then matched=1; break; fi
    done
    if [ $matched = 0 ]; then echo "missing: $p"; ok=1; fi
  done
  return $ok
}

# The "aion/..." headers the installed headers include must be installed too.
includes_resolve() {
  local inc dir="$1/include" ok=0
  while read -r inc; do
    [ -f "$dir/$inc" ] || { echo "$inc is included but not installed"; ok=1; }
  done < <(grep -rhoE '^#include ["<]aion/[^">]+[">]' "$dir" | sed -E 's/^#include ["<]//; s/[">]$//' | sort -u)
  [ "$(find "$dir" -name '*.h' | wc -l)" -gt 0 ] || { echo "no headers under $dir"; ok=1; }
  return $ok
}

# first_line_is <expected> <command...>
first_line_is() {
  local want="$1" got
  shift
  got="$("$@" 2>&1 | head -1)"
  [ "$got" = "$want" ] || { echo "$* printed '$got', expected '$want'"; return 1; }
}

# nats_accepts <fragment>: nats-server -t accepts a config that includes the
# mappings fragment (nats-server resolves includes relative to the including
# file only).
nats_accepts() {
  local conf="$work/nats-test.conf"
  grep -q '^mappings' "$1" || { echo "$1 has no mappings block"; return 1; }
  printf 'listen: 127.0.0.1:-1\ninclude %s\n' "$(realpath --relative-to="$work" "$1")" >"$conf"
  nats-server -t -c "$conf"
}

# unit_verifies <unit-file>: systemd-analyze verify has nothing to say (it
# exits 0 on unknown keys and bad values, but prints them).
unit_verifies() {
  local out
  if out="$(systemd-analyze verify "$1" 2>&1)" && [ -z "$out" ]; then return 0; fi
  echo "$out"
  return 1
}
# verify_unit <unit-file>: that check, when systemd-analyze exists.
verify_unit() {
  if command -v systemd-analyze >/dev/null; then
    check "systemd-analyze verify $1" unit_verifies "$1"
  else
    echo "check_install: skipped systemd-analyze verify (not installed)"
  fi
}

# depends_has <deb> <text>...: the package's Depends field contains each text.
depends_has() {
  local deb="$1" d depends
  shift
  depends="$(dpkg-deb -f "$deb" Depends)"
  for d in "$@"; do
    grep -qF -- "$d" <<<"$depends" || { echo "no '$d' in Depends: $depends"; return 1; }
  done
}

# conffiles_are <deb> <path>...: exactly these conffiles.
conffiles_are() {
  local deb="$1" got want
  shift
  got="$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | sort)"
  want="$(printf '%s\n' "$@" | sort)"
  [ "$got" = "$want" ] || { echo "conffiles: $got"; return 1; }
}

# maintainer_scripts_executable <deb> <script>...: each is in the package, mode 0755.
maintainer_scripts_executable() {
  local deb="$1" listing script
  shift
  listing="$(dpkg-deb --ctrl-tarfile "$deb" | tar -tv)"
  for script in "$@"; do
    grep -qE "^-rwxr-xr-x .* \./$script\$" <<<"$listing" ||
      { echo "$script missing or not mode 0755:"; echo "$listing"; return 1; }
  done
}

# smoke_cmake <name> [cmake args]: configures, builds and runs packaging/smoke.
smoke_cmake() {
  local dir="$work/smoke-$1"
  shift
  cmake -S "$root/packaging/smoke" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" &&
    cmake --build "$dir" &&
    first_line_is "aion_smoke $version: ok" "$dir/aion_smoke"
}

# smoke_pkgconfig <name> [PKG_CONFIG_PATH]: builds packaging/smoke/main.cc with
# the flags of pkg-config aion, runs it.
smoke_pkgconfig() {
  local exe="$work/smoke-$1-pkgconfig" flags
  flags="$(PKG_CONFIG_PATH="${2:-}" pkg-config --cflags --libs aion)" || return 1
  # shellcheck disable=SC2086  # flags are words
  c++ -std=c++20 -o "$exe" "$root/packaging/smoke/main.cc" $flags &&
    first_line_is "aion_smoke $version: ok" "$exe"
}

# found_in <cmake-build-dir> <dir>: find_package found Aion in <dir>.
found_in() {
  grep -qx "Aion_DIR:PATH=$2" "$1/CMakeCache.txt" ||
    { grep '^Aion_DIR' "$1/CMakeCache.txt"; echo "expected Aion_DIR $2"; return 1; }
}

# --- 1. cmake --install into the prefix ----------------------------------------
echo "check_install: version $version, libdir $libdir, build $build"
if out=$(cmake --install "$build" --prefix "$prefix" 2>&1); then
  pass "cmake --install --prefix $prefix"
else
  fail "cmake --install --prefix $prefix"
  indent <<<"$out"
fi
{ expected aion "s|^/usr/|$prefix/|; s|^/etc/|$prefix/etc/|"
  expected aion-dev "s|^/usr/|$prefix/|"; } >"$work/expected-prefix.txt"
(find "$prefix" -type f -o -type l 2>/dev/null || true) | sort >"$work/files-prefix.txt"
check "installed files match packaging/expected-files-*.txt" \
  compare_files "$work/expected-prefix.txt" "$work/files-prefix.txt"
check "installed headers include only installed headers" includes_resolve "$prefix"
check "the unit runs $prefix/bin/aion-worker with $prefix/etc/default/aion-worker" \
  grep -qzE "EnvironmentFile=$prefix/etc/default/aion-worker.*ExecStart=$prefix/bin/aion-worker" \
  "$prefix/lib/systemd/system/aion-worker.service"
verify_unit "$prefix/lib/systemd/system/aion-worker.service"
check "aion --version" first_line_is "aion $version" "$prefix/bin/aion" --version
check "aion-worker --version" first_line_is "aion-worker $version" "$prefix/bin/aion-worker" --version
check "nats-server -t accepts etc/aion/nats-mappings.conf" \
  nats_accepts "$prefix/etc/aion/nats-mappings.conf"
check "pkg-config --modversion aion (prefix)" \
  first_line_is "$version" env PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" pkg-config --modversion aion
check "smoke program: find_package(Aion) against the prefix" \
  smoke_cmake prefix -DCMAKE_PREFIX_PATH="$prefix"
check "smoke program: found $prefix/$libdir/cmake/Aion" \
  found_in "$work/smoke-prefix" "$prefix/$libdir/cmake/Aion"
check "smoke program: pkg-config aion against the prefix" \
  smoke_pkgconfig prefix "$prefix/$libdir/pkgconfig"
echo "AION_INSTALL_PREFIX=$prefix"

# --- 2. cpack -G DEB ----------------------------------------------------------------
rm -rf "$build/packages"
if out=$(cd "$build" && cpack -G DEB 2>&1); then
  pass "cpack -G DEB"
else
  fail "cpack -G DEB"
  indent <<<"$out"
fi
arch="$(dpkg --print-architecture)"
deb_runtime="$build/packages/aion_${deb_version}_${arch}.deb"
deb_dev="$build/packages/aion-dev_${deb_version}_${arch}.deb"
for pkg in aion aion-dev; do
  deb="$build/packages/${pkg}_${deb_version}_${arch}.deb"
  if [ ! -f "$deb" ]; then
    fail "$pkg: no $deb"
    continue
  fi
  expected "$pkg" >"$work/expected-$pkg.txt"
  dpkg-deb -c "$deb" | awk '{print $6}' | grep -v '/$' | sed 's|^\./|/|' | sort >"$work/files-$pkg.txt"
  check "$pkg: files match packaging/expected-files-$pkg.txt" \
    compare_files "$work/expected-$pkg.txt" "$work/files-$pkg.txt"
  check "$pkg: version $deb_version" first_line_is "$deb_version" dpkg-deb -f "$deb" Version
done
if [ -f "$deb_runtime" ]; then
  # dpkg-shlibdeps found the shared libraries the executables link.
  check "aion: Depends has adduser and the shared libraries (shlibdeps)" \
    depends_has "$deb_runtime" adduser libnats liblmdb libprotobuf libspdlog
  check "aion: Recommends nats-server" first_line_is nats-server dpkg-deb -f "$deb_runtime" Recommends
  check "aion: conffiles /etc/default/aion-worker, /etc/aion/nats-mappings.conf" \
    conffiles_are "$deb_runtime" /etc/default/aion-worker /etc/aion/nats-mappings.conf
  check "aion: postinst, prerm, postrm are executable" \
    maintainer_scripts_executable "$deb_runtime" postinst prerm postrm
fi
if [ -f "$deb_dev" ]; then
  check "aion-dev: Depends has aion (= $deb_version) and the -dev packages" \
    depends_has "$deb_dev" "aion (= $deb_version)" libprotobuf-dev libnats-dev liblmdb-dev \
    libspdlog-dev nlohmann-json3-dev pkg-config
fi

# --- 3. install the packages (root only) ----------------------------------------------
packages_installed=0
user_existed=1
before_pkgs="$work/packages-before.txt"
installed_packages() {
  dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 ~ /^.i/ {print $2}' | sort
}
cleanup() {
  [ $packages_installed = 1 ] || return 0
  packages_installed=0
  local -a new
  installed_packages >"$work/packages-after.txt"
  mapfile -t new < <(comm -13 "$before_pkgs" "$work/packages-after.txt" | grep -vx -e aion -e aion-dev)
  if DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq aion aion-dev "${new[@]}" \
       >"$work/purge.log" 2>&1; then
    pass "apt-get purge aion aion-dev ${new[*]}"
  else
    fail "apt-get purge aion aion-dev ${new[*]}"
    indent <"$work/purge.log"
  fi
  if [ $user_existed = 0 ] && getent passwd aion >/dev/null; then
    userdel aion
    if getent group aion >/dev/null; then groupdel aion; fi
  fi
}
trap cleanup EXIT

if [ "$(id -u)" != 0 ]; then
  echo "check_install: skipped installing the packages (not root)"
elif [ ! -f "$deb_runtime" ] || [ ! -f "$deb_dev" ]; then
  fail "installing the packages: not built"
elif dpkg-query -W -f='${db:Status-Abbrev}\n' aion aion-dev 2>/dev/null | grep -q '^ii'; then
  fail "installing the packages: aion or aion-dev is installed already; not touching it"
else
  installed_packages >"$before_pkgs"
  getent passwd aion >/dev/null || user_existed=0
  packages_installed=1
  # The packages' Depends come from the archive: fresh package lists first.
  apt-get update -qq >/dev/null 2>&1 || true
  if out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
             "$deb_runtime" "$deb_dev" 2>&1); then
    pass "apt-get install aion aion-dev"
    check "aion --version (/usr/bin)" first_line_is "aion $version" /usr/bin/aion --version
    check "aion-worker --version (/usr/bin)" \
      first_line_is "aion-worker $version" /usr/bin/aion-worker --version
    check "postinst created the system user aion" \
      bash -c "getent passwd aion | grep -q ':/var/lib/aion-worker:'"
    check "the unit runs /usr/bin/aion-worker with /etc/default/aion-worker" \
      grep -qzE "EnvironmentFile=/etc/default/aion-worker.*ExecStart=/usr/bin/aion-worker" \
      /usr/lib/systemd/system/aion-worker.service
    verify_unit /usr/lib/systemd/system/aion-worker.service
    check "nats-server -t accepts /etc/aion/nats-mappings.conf" \
      nats_accepts /etc/aion/nats-mappings.conf
    check "pkg-config --modversion aion (/usr)" first_line_is "$version" pkg-config --modversion aion
    check "smoke program: find_package(Aion) from the packages" smoke_cmake system
    check "smoke program: found /usr/$libdir/cmake/Aion" \
      found_in "$work/smoke-system" "/usr/$libdir/cmake/Aion"
  else
    fail "apt-get install aion aion-dev"
    indent <<<"$out"
  fi
  cleanup
fi

summary="$((checks - failures)) of $checks checks passed in $((SECONDS - start))s"
if [ $failures = 0 ]; then
  echo "check_install: PASS ($summary)"
else
  echo "check_install: FAIL ($summary)"
  exit 1
fi
