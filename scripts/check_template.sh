#!/usr/bin/env bash
# Usage: scripts/check_template.sh <install-prefix>
# The out-of-tree check of examples/app-template against an installed Aion
# (issue 11): copies the template outside the source tree, configures it with
# only find_package(Aion) pointed at <install-prefix>, builds it, runs its unit
# test, then runs its worker against a real nats-server (configured with the
# mappings `aion nats-config` prints) and drives it with the installed `aion`
# CLI: start, signal, result. Stops only the processes it started, by PID.
set -euo pipefail
prefix="$(cd "${1:?usage: $0 <install-prefix>}" && pwd)"
src="$(cd "$(dirname "$0")/.." && pwd)"
aion="$prefix/bin/aion"

work="$(mktemp -d /tmp/aion-template.XXXXXX)"
nats_pid="" worker_pid=""
cleanup() {
  [ -n "$worker_pid" ] && kill -KILL "$worker_pid" 2>/dev/null || true
  [ -n "$nats_pid" ] && kill -TERM "$nats_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "check_template: FAIL: $*" >&2
  for log in "$work"/*.log; do [ -f "$log" ] && { echo "--- $log"; tail -40 "$log"; }; done >&2
  exit 1
}

echo "check_template: building the template in $work/app against $prefix"
cp -r "$src/examples/app-template" "$work/app"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$work/app" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_PREFIX_PATH="$prefix" "${launcher[@]}" >"$work/configure.log" 2>&1 ||
  fail "configure (see above)"
cmake --build "$work/build" >"$work/build.log" 2>&1 || fail "build"
ctest --test-dir "$work/build" --output-on-failure || fail "the template's unit test"

echo "check_template: running reminder-worker against nats-server"
"$aion" nats-config >"$work/mappings.conf" || fail "aion nats-config"
cat >"$work/nats.conf" <<CONF
jetstream { store_dir: "$work/js" }
include ./mappings.conf
CONF
nats_server="$(command -v nats-server || echo /usr/sbin/nats-server)"
"$nats_server" -c "$work/nats.conf" -a 127.0.0.1 -p -1 --ports_file_dir "$work" \
  >"$work/nats.log" 2>&1 &
nats_pid=$!
url=""
for _ in $(seq 100); do
  ports="$work/nats-server_$nats_pid.ports"
  if [ -s "$ports" ]; then
    url="$(grep -o 'nats://[0-9.]*:[0-9]*' "$ports" | head -1)"
    [ -n "$url" ] && break
  fi
  sleep 0.1
done
[ -n "$url" ] || fail "nats-server did not start"
export AION_NATS_URL="$url"

"$work/build/reminder-worker" --data "$work/data" >"$work/worker.log" 2>&1 &
worker_pid=$!
ready=0
for _ in $(seq 150); do
  kill -0 "$worker_pid" 2>/dev/null || fail "reminder-worker exited"
  # describe of an id nobody started exits 1 with not_found once the worker serves.
  out="$("$aion" describe template-ready-probe 2>&1 || true)"
  case "$out" in *not_found*) ready=1; break ;; esac
  sleep 0.2
done
[ "$ready" = 1 ] || fail "reminder-worker did not answer"

"$aion" start reminder r-1 --input '{"to":"ana","delay_ms":300}' --request-id r-1 ||
  fail "aion start"
"$aion" signal r-1 ack --input '{"by":"ana"}' || fail "aion signal"
result="$("$aion" --json result r-1)" || fail "aion result: $result"
echo "check_template: result $result"
echo "$result" | grep -q '"acknowledged":true' || fail "unexpected result: $result"
echo "$result" | grep -q 'Reminder for ana' || fail "unexpected result: $result"
history="$("$aion" history r-1)" || fail "aion history"
for event in TimerFired ActivityCompleted SignalReceived WorkflowCompleted; do
  echo "$history" | grep -q "$event" || fail "no $event in the history: $history"
done

kill -TERM "$worker_pid"
wait "$worker_pid" || fail "reminder-worker did not drain cleanly"
worker_pid=""
echo "check_template: PASS"
