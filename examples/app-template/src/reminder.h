// The reminder workflow: the one workflow of this template app.
//
// Input {"to": "ana", "delay_ms": 1000, "ack_timeout_ms": 86400000}: sleeps
// `delay_ms` on a durable timer, has the local activity `compose` write the
// reminder, then waits up to `ack_timeout_ms` for the signal `ack`. Returns
// {"text": ..., "acknowledged": true|false, "ack": <the signal's input or null>}.
// Query "state": "waiting", "composing", "awaiting ack" or "done".
#pragma once

#include <aion/engine/activity.h>
#include <aion/engine/registry.h>

namespace reminder {

aion::Task<aion::Json> Remind(aion::Context& ctx, aion::Json input);

// The local activity `compose`: input {"to": ...}, returns the reminder text.
std::string Compose(aion::ActivityContext& ctx, aion::Json input);

// Registers the workflow and its activity; the registries keep the first
// error, which aion::worker::Main reports at startup.
void Register(aion::WorkflowRegistry& workflows, aion::ActivityRegistry& activities);

}  // namespace reminder
