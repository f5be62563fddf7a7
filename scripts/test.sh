#!/usr/bin/env bash
# THE test command. Stages, each in its own build directory:
#   1. build/       RelWithDebInfo build, the whole CTest suite
#      then install+packages: scripts/check_install.sh on that build (no
#      rebuild): cmake --install into build/install-prefix, cpack -G DEB,
#      the file lists, and as root installing and removing the packages;
#      then app template: scripts/check_template.sh builds examples/app-template
#      outside the tree against build/install-prefix, runs its unit test and
#      its worker against a real nats-server through the aion CLI
#   2. build-asan/  AddressSanitizer + UBSan build (-DAION_SANITIZE=ON), the whole suite
#   3. build-tsan/  ThreadSanitizer build (-DAION_TSAN=ON), tests labelled "concurrency"
# The sanitizer builds are Debug: they compile much faster than optimised ones on
# 2 cores, and the sanitizers find the same bugs.
# Tests labelled "soak" run only with AION_SOAK=1. Prints one summary line per
# stage and exits non-zero if any stage failed. Later stages run even after a
# failure so one run reports everything.
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh || exit 1

ctest_filter=()
[ "${AION_SOAK:-0}" = "1" ] || ctest_filter=(-LE soak)

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"

# ThreadSanitizer in GCC 12 cannot map its shadow memory when the kernel uses
# high mmap randomisation (vm.mmap_rnd_bits > 28); running without ASLR avoids
# that. Containers may forbid it, in which case we run as is.
tsan_prefix=()
if setarch "$(uname -m)" -R true 2>/dev/null; then tsan_prefix=(setarch "$(uname -m)" -R); fi

summary=()
failed=0
passed_total=0
failed_total=0

# Adds the counts of ctest's "N% tests passed, F tests failed out of T" line.
count_tests() {
  local line
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$1" 2>/dev/null | tail -1)
  [[ $line =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]] || return 0
  failed_total=$((failed_total + BASH_REMATCH[1]))
  passed_total=$((passed_total + BASH_REMATCH[2] - BASH_REMATCH[1]))
}

# stage <name> <build-dir> <ctest args> -- <cmake args>
stage() {
  local name="$1" dir="$2"
  shift 2
  local ctest_args=()
  while [ "$1" != "--" ]; do ctest_args+=("$1"); shift; done
  shift
  local start=$SECONDS result=PASS
  echo "=== test.sh: stage $name ($dir) ==="
  built=0
  if ! cmake -S . -B "$dir" -G Ninja "$@" >"$dir/configure.log" 2>&1; then
    cat "$dir/configure.log"
    result="FAIL (configure, see $dir/configure.log)"
  elif ! cmake --build "$dir" ${build_target:+--target "$build_target"}; then
    result="FAIL (build)"
  else
    built=1  # for the install+packages stage, which reuses this build
    if ! (cd "$dir" && "${ctest_args[@]}") 2>&1 | tee "$dir/ctest.log"; then
      result="FAIL (tests)"
    fi
  fi
  count_tests "$dir/ctest.log"
  [ "$result" = PASS ] || failed=1
  summary+=("test.sh: stage $name: $result in $((SECONDS - start))s")
  echo "${summary[-1]}"
}

# built_stage <name> <log> <command...>: a stage on stage 1's build (no rebuild).
built_stage() {
  local name="$1" log="$2" start=$SECONDS result=PASS
  shift 2
  echo "=== test.sh: stage $name ==="
  if [ "$built" != 1 ]; then
    result="FAIL (nothing built)"
  elif ! "$@" 2>&1 | tee "$log"; then
    result="FAIL (see $log)"
  fi
  [ "$result" = PASS ] || failed=1
  summary+=("test.sh: stage $name: $result in $((SECONDS - start))s")
  echo "${summary[-1]}"
}

mkdir -p build build-asan build-tsan
stage "build+ctest" build \
  ctest --output-on-failure -j2 "${ctest_filter[@]}" -- \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo
built_stage "install+packages" build/check_install.log scripts/check_install.sh build
built_stage "app template (out of tree)" build/check_template.log \
  scripts/check_template.sh build/install-prefix
stage "asan+ubsan" build-asan \
  ctest --output-on-failure -j2 "${ctest_filter[@]}" -- \
  -DCMAKE_BUILD_TYPE=Debug -DAION_SANITIZE=ON -DAION_BUILD_BENCH=OFF
build_target=aion_concurrency_tests stage "tsan (concurrency)" build-tsan \
  "${tsan_prefix[@]}" ctest --output-on-failure -j2 -L concurrency "${ctest_filter[@]}" -- \
  -DCMAKE_BUILD_TYPE=Debug -DAION_TSAN=ON -DAION_BUILD_BENCH=OFF

echo "=== test.sh summary ==="
printf '%s\n' "${summary[@]}"
echo "test.sh: $([ "$failed" = 0 ] && echo PASS || echo FAIL) in ${SECONDS}s"
echo "tests: ${passed_total} passed, ${failed_total} failed"
exit "$failed"
