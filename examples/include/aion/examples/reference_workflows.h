// The reference workflows the shipped aion-worker registers (DESIGN §7); the
// README tour, the tests and the benchmarks use them.
//   noop          returns its input.
//   timer_signal  input {"sleep_ms":N,"signal":"name"}: sleeps N ms, waits for
//                 that signal, returns {"slept_ms":N,"signal":<its input>}.
#pragma once

#include "aion/engine/registry.h"

namespace aion::examples {

Task<Json> Noop(Context& ctx, Json input);
Task<Json> TimerSignal(Context& ctx, Json input);

// Registers every reference workflow; kInvalidArgument if one is already there.
Status RegisterReferenceWorkflows(WorkflowRegistry& registry);

}  // namespace aion::examples
