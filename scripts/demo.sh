#!/usr/bin/env bash
# THE demo: builds Aion, starts a dev worker (its own nats-server, a fresh temp
# data dir, ports chosen at run time), runs the reference workflows end to end
# through the `aion` CLI and checks every result. Exits 0 only if all checks
# passed and the worker shut down cleanly on SIGINT.
#   scripts/demo.sh            build in build/ (RelWithDebInfo) and run
#   AION_BUILD_DIR=dir scripts/demo.sh   use another build directory
set -uo pipefail
cd "$(dirname "$0")/.."

build_dir="${AION_BUILD_DIR:-build}"
AION_BUILD_TARGETS="aion-worker aion" scripts/build.sh "$build_dir" || exit 1
bin="$PWD/$build_dir/bin"
aion="$bin/aion"

work="$(mktemp -d -t aion-demo.XXXXXX)"
worker_pid=""
events_pid=""
node_pid=""
checks=0
failures=0

# True while <pid> runs (an exited but not yet reaped child does not count).
alive() {
  local state=""
  [ -r "/proc/$1/stat" ] && read -r _ _ state _ <"/proc/$1/stat"
  [ -n "$state" ] && [ "$state" != Z ]
}

# SIGINT to the worker, up to 20 s for a clean exit, then SIGKILL. Sets worker_rc.
stop_worker() {
  kill -INT "$worker_pid" 2>/dev/null
  for _ in $(seq 1 100); do
    alive "$worker_pid" || break
    sleep 0.2
  done
  if alive "$worker_pid"; then
    echo "demo: the worker ignored SIGINT for 20 s; killing it" >&2
    kill -KILL "$worker_pid"
  fi
  worker_rc=0
  wait "$worker_pid" || worker_rc=$?
  worker_pid=""
}

cleanup() {
  [ -n "$events_pid" ] && kill "$events_pid" 2>/dev/null
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null
  [ -n "$worker_pid" ] && stop_worker
  rm -rf "$work"
}
trap cleanup EXIT

bold="" plain=""
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
fail() {
  echo "demo: FAILED: $*" >&2
  failures=$((failures + 1))
}

# Shows an argument the way a user would type it.
shell_word() {
  if [[ "$1" =~ ^[A-Za-z0-9_.:/=@+,-]+$ ]]; then printf '%s' "$1"; else printf "'%s'" "$1"; fi
}

# expect <exit code> <text>... -- <aion args>...
# Prints the command and its output, then checks the exit code and that every
# <text> appears in the output.
expect() {
  local want_rc="$1" needles=()
  shift
  while [ "$1" != "--" ]; do needles+=("$1"); shift; done
  shift
  local shown="" a
  for a in "$@"; do shown+=" $(shell_word "$a")"; done
  echo "\$ aion$shown"
  local out rc
  out="$("$aion" "$@" 2>&1)"
  rc=$?
  [ -n "$out" ] && printf '%s\n' "$out"
  checks=$((checks + 1))
  if [ "$rc" != "$want_rc" ]; then
    fail "aion$shown exited $rc, expected $want_rc"
    return
  fi
  for a in "${needles[@]}"; do
    [[ "$out" == *"$a"* ]] || fail "aion$shown did not print: $a"
  done
}

# Runs `aion <args>` quietly until it exits with <rc>, for up to <seconds>.
wait_for_rc() {
  local want_rc="$1" seconds="$2"
  shift 2
  local deadline=$((SECONDS + seconds))
  while [ $SECONDS -lt $deadline ]; do
    "$aion" "$@" >/dev/null 2>&1
    [ $? = "$want_rc" ] && return 0
    sleep 0.2
  done
  return 1
}

say "starting aion-worker --dev (data dir $work/data)"
"$bin/aion-worker" --dev --data "$work/data" >"$work/worker.log" 2>&1 &
worker_pid=$!
url=""
for _ in $(seq 1 150); do
  url="$(grep -o 'nats://127\.0\.0\.1:[0-9]\+' "$work/worker.log" | head -n 1)"
  [ -n "$url" ] && break
  alive "$worker_pid" || break
  sleep 0.2
done
if [ -z "$url" ]; then
  cat "$work/worker.log" >&2
  echo "demo: FAILED: the worker did not report its NATS URL" >&2
  exit 1
fi
export AION_NATS_URL="$url"
echo "worker pid $worker_pid, NATS at $AION_NATS_URL"
# Ready when a request for an unknown workflow gets an answer (not_found, exit 1).
if ! wait_for_rc 1 30 describe demo-readiness-probe; then
  cat "$work/worker.log" >&2
  echo "demo: FAILED: the worker did not answer requests within 30s" >&2
  exit 1
fi

# Lifecycle events, printed at the end: what an event-driven consumer would see.
"$aion" sub 'aion.evt.>' >"$work/events.log" 2>&1 &
events_pid=$!
sleep 0.3

say "1. noop: start, record, run, return the input"
expect 0 'output {"hello":"world"}' -- start noop demo-noop --input '{"hello":"world"}' \
  --request-id demo-noop-1 --wait
say "   the same start again (same request id) is recognised, nothing new happens"
expect 0 'duplicate' -- start noop demo-noop --input '{"hello":"world"}' --request-id demo-noop-1

say "2. timer_signal: a durable 2 s timer, then a signal"
expect 0 'started demo-timer' -- start timer_signal demo-timer --input '{"sleep_ms":2000,"signal":"go"}'
expect 0 'status          running' -- describe demo-timer
sleep 2.5
expect 0 'signaled demo-timer' -- signal demo-timer go --input '{"by":"demo"}'
expect 0 '"slept_ms":2000' -- result demo-timer --timeout 10s
expect 0 'TimerFired' 'SignalReceived' 'WorkflowCompleted' -- history demo-timer
say "   the run is closed: more signals are refused, the history stays as it is"
expect 1 'not_running' -- signal demo-timer go

say "3. raw JSON on the wire (what 'nats pub' would send)"
expect 0 'published to aion.wf.demo-raw.start' -- pub aion.wf.demo-raw.start \
  '{"workflow_type":"noop","input":{"via":"raw json"},"request_id":"demo-raw-1"}'
wait_for_rc 0 10 result demo-raw --timeout 1s
expect 0 'status          completed' -- describe demo-raw
expect 0 '"via":"raw json"' -- history demo-raw

say "4. the order saga with local activities: reserve, charge, wait for approval, ship"
expect 0 'started demo-order' -- start order demo-order --input '{"sku":"A1","qty":2,"card":"visa"}'
wait_for_rc 0 10 history demo-order
sleep 0.5
say "   a query asks the live run, without recording anything"
expect 0 'awaiting approval' -- query demo-order stage
expect 0 'signaled demo-order' -- signal demo-order approve --input '{"by":"ana"}'
expect 0 '"status":"shipped"' -- result demo-order --timeout 10s
expect 0 'ActivityScheduled' 'ActivityStarted' 'activity_type=ship' 'ActivityCompleted' -- history demo-order
say "   a declined card: the reservation is released (compensation) and the run fails"
expect 0 'started demo-declined' -- start order demo-declined --input '{"sku":"B2","card":"declined"}'
expect 1 'failure card declined' -- result demo-declined --timeout 10s
expect 0 'activity_type=release' 'WorkflowFailed' -- history demo-declined
say "   cancel while it waits for approval: refund and release run, the run ends cancelled"
expect 0 'started demo-cancel' -- start order demo-cancel --input '{"sku":"C3","card":"visa"}'
sleep 1
expect 0 'cancel requested for demo-cancel' -- cancel demo-cancel --reason 'changed my mind'
expect 1 'cancelled demo-cancel' -- result demo-cancel --timeout 10s
expect 0 'activity_type=refund' 'activity_type=release' 'WorkflowCancelled' -- history demo-cancel

say "5. child workflows: a fanout of three noop children, then one that abandons its children"
expect 0 'started demo-fan' -- start fanout demo-fan --input '{"children":3,"type":"noop","input":"hi"}'
expect 0 '{"results":["hi","hi","hi"]}' -- result demo-fan --timeout 10s
expect 0 'ChildWorkflowScheduled' 'ChildWorkflowClosed' -- history demo-fan
expect 0 'parent          demo-fan' -- describe demo-fan-2
expect 0 'started demo-fan-abandon' -- start fanout demo-fan-abandon \
  --input '{"children":1,"type":"timer_signal","input":{"sleep_ms":0},"await":false,"policy":"abandon"}'
wait_for_rc 0 10 describe demo-fan-abandon-1
expect 0 'signaled demo-fan-abandon' -- signal demo-fan-abandon finish
expect 0 'completed demo-fan-abandon' -- result demo-fan-abandon --timeout 10s
expect 0 'status          running' -- describe demo-fan-abandon-1
expect 0 'signaled demo-fan-abandon-1' -- signal demo-fan-abandon-1 go
expect 0 'completed demo-fan-abandon-1' -- result demo-fan-abandon-1 --timeout 10s

node_dir="$PWD/examples/activity-worker-node"
if command -v node >/dev/null && [ -d "$node_dir/node_modules/nats" ]; then
  say "6. the same saga on task queue 'orders', served by the Node.js activity worker"
  node "$node_dir/worker.js" --nats "$AION_NATS_URL" --queue orders,echo >"$work/node.log" 2>&1 &
  node_pid=$!
  for _ in $(seq 1 50); do grep -q '^ready' "$work/node.log" && break; sleep 0.2; done
  expect 0 'started demo-remote' -- start order demo-remote \
    --input '{"sku":"D4","qty":1,"card":"visa","task_queue":"orders"}'
  wait_for_rc 0 10 history demo-remote
  expect 0 'signaled demo-remote' -- signal demo-remote approve --input '{"by":"bo"}'
  expect 0 '"status":"shipped"' -- result demo-remote --timeout 10s
  expect 0 'started demo-steps' -- start steps_signal demo-steps --input '{"steps":3,"remote":true}'
  sleep 1
  expect 0 'signaled demo-steps' -- signal demo-steps approve --input '"cy"'
  expect 0 '"steps":3' -- result demo-steps --timeout 10s
  kill "$node_pid" 2>/dev/null
  wait "$node_pid" 2>/dev/null
  node_pid=""
else
  say "6. (skipped: node or examples/activity-worker-node/node_modules missing; run scripts/setup.sh)"
fi

say "7. bad input is not lost and does not block anything: it goes to aion.dlq with its reason"
"$aion" sub 'aion.dlq.>' --count 1 --timeout 15s >"$work/dlq.log" 2>&1 &
dlq_pid=$!
sleep 0.3
expect 0 'published' -- pub aion.wf.demo-bad.start '{"workflow_type":"no-such-type"}'
wait "$dlq_pid"
cat "$work/dlq.log"
checks=$((checks + 1))
grep -q 'dead letter start \[unknown_workflow_type\]' "$work/dlq.log" ||
  fail "no dead letter for demo-bad on aion.dlq"

say "8. errors are explicit (exit codes: 1 server error, 2 bad input)"
expect 1 'not_found' -- describe no-such-workflow
expect 2 'invalid character' -- start noop 'bad id!'
expect 2 'not valid JSON' -- start noop demo-x --input '{oops'

say "lifecycle events seen on aion.evt.>"
sleep 0.5
kill "$events_pid" 2>/dev/null
wait "$events_pid" 2>/dev/null
events_pid=""
cat "$work/events.log"
checks=$((checks + 1))
grep -q 'completed noop demo-noop' "$work/events.log" || fail "no completed event for demo-noop"

say "stopping the worker (SIGINT to pid $worker_pid)"
stop_worker
checks=$((checks + 1))
[ "$worker_rc" = 0 ] || fail "aion-worker exited with $worker_rc after SIGINT"

echo
if [ "$failures" -ne 0 ]; then
  echo "--- worker log (last 40 lines) ---" >&2
  tail -n 40 "$work/worker.log" >&2
  echo "demo: $failures of $checks checks FAILED" >&2
  exit 1
fi
echo "demo: all $checks checks passed"
