// Reading histories: what kind an event is, a one-line description of it, and
// the status a history implies. Pure functions; safe from any thread.
#pragma once

#include <string>
#include <vector>

#include "aion/engine/store.h"

namespace aion {

// Inputs come from outside workflow code (WorkflowStarted, SignalReceived,
// TimerFired, activity attempts and outcomes, cancel requests, termination,
// children closing);
// every other event is a command the code issued.
bool IsInputEvent(const HistoryEvent& e);
// Inputs, and command-shaped events the engine recorded itself (caused_by 0,
// e.g. the timer cancels of a termination): replay applies them, never
// matches them against the code's commands.
bool IsEngineRecorded(const HistoryEvent& e);
// Completed, failed, cancelled, terminated (or timed out).
bool IsTerminalEvent(const HistoryEvent& e);
// The status a terminal event gives its run (UNSPECIFIED for others).
WorkflowStatus StatusOfTerminal(const HistoryEvent& e);
// The failure message, cancel message or termination reason ("" otherwise).
std::string TerminalMessage(const HistoryEvent& e);
// "start_to_close", "schedule_to_close", "heartbeat".
std::string TimeoutKindName(history::TimeoutKind kind);
// "completed", "failed", "cancelled", "terminated", "timed_out", "start_failed".
std::string ChildStatusName(history::ChildStatus status);
// The child status a closed run's status gives (UNSPECIFIED for running and
// continued-as-new, which do not close a child).
history::ChildStatus ChildStatusOf(WorkflowStatus closed);
// "TimerStarted(id=#1, fire_at_us=...)": for errors, logs and the CLI.
std::string DescribeEvent(const HistoryEvent& e);
// The status of the last run in `history` (RUNNING until its terminal event;
// UNSPECIFIED for an empty history). The writer keeps WorkflowRecord.status
// equal to this.
WorkflowStatus StatusFromHistory(const std::vector<HistoryEvent>& history);
// "running", "completed", "failed", ...: the enum name without its prefix.
std::string WorkflowStatusName(WorkflowStatus status);

}  // namespace aion
