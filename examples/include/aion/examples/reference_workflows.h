// The reference workflows and activities the shipped aion-worker registers
// (DESIGN §7); the README tour, the tests and the benchmarks use them.
//   noop          returns its input.
//   timer_signal  input {"sleep_ms":N,"signal":"name"}: sleeps N ms, waits for
//                 that signal, returns {"slept_ms":N,"signal":<its input>}.
//   steps_signal  input {"steps":N,"remote":false}: N calls of the activity
//                 `echo` (local, or on task queue `echo` when remote), then
//                 waits for the signal `approve` (unless "approval":false);
//                 returns {"steps":N,"approved_by":<signal input, or null>}.
//   order         a saga, input {"sku","qty","card","approval_timeout_ms",
//                 "task_queue","hold_ms"}: reserve, charge, sleep hold_ms
//                 (default 0: no timer), wait for the signal
//                 `approve` within the timeout, ship. A failure or a cancel
//                 runs the compensations (refund, release) in reverse order.
//                 Query "stage": reserving, charging, holding, awaiting approval,
//                 shipping or compensating.
//   fanout        input {"children":N,"type":"noop","input":<any>,
//                 "policy":"terminate"|"request_cancel"|"abandon","await":true}:
//                 starts N child workflows of `type` with ids "<id>-1".."<id>-N"
//                 (any partition) and returns {"results":[<their outputs>]};
//                 with "await":false it waits for the signal `finish` instead
//                 and returns {"results":[]}, leaving open children to the
//                 parent-close policy.
#pragma once

#include "aion/engine/activity.h"
#include "aion/engine/registry.h"

namespace aion::examples {

Task<Json> Noop(Context& ctx, Json input);
Task<Json> TimerSignal(Context& ctx, Json input);
Task<Json> StepsSignal(Context& ctx, Json input);
Task<Json> Order(Context& ctx, Json input);
Task<Json> Fanout(Context& ctx, Json input);

// Registers every reference workflow; kInvalidArgument if one is already there.
Status RegisterReferenceWorkflows(WorkflowRegistry& registry);

// Registers the local activities the reference workflows use: echo, reserve,
// charge (fails non-retryably with type CardDeclined for card "declined"),
// ship, release, refund, and flaky (input {"fail_times":N}: attempts up to N
// fail with type Flaky). The Node.js example worker serves the same types.
Status RegisterReferenceActivities(ActivityRegistry& registry);

}  // namespace aion::examples
