// Reading histories: what kind an event is, a one-line description of it, and
// the status a history implies. Pure functions; safe from any thread.
#pragma once

#include <string>
#include <vector>

#include "aion/engine/store.h"

namespace aion {

// Inputs come from outside workflow code (WorkflowStarted, SignalReceived,
// TimerFired); every other event is a command the code issued.
bool IsInputEvent(const HistoryEvent& e);
bool IsTerminalEvent(const HistoryEvent& e);
// "TimerStarted(id=#1, fire_at_us=...)": for errors, logs and the CLI.
std::string DescribeEvent(const HistoryEvent& e);
// The status of the last run in `history` (RUNNING until its terminal event;
// UNSPECIFIED for an empty history). The writer keeps WorkflowRecord.status
// equal to this.
WorkflowStatus StatusFromHistory(const std::vector<HistoryEvent>& history);
// "running", "completed", "failed", ...: the enum name without its prefix.
std::string WorkflowStatusName(WorkflowStatus status);

}  // namespace aion
