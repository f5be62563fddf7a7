// Checks of a workflow history's shape that the activity integration tests
// share (tests/worker/activity_crash_test.cc, tests/examples/node_e2e_test.cc):
// every activity's attempts are numbered 1..n and each attempt ends once;
// one start and one terminal event per run. Header-only; needs the history
// protobufs (aion::engine) only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "aion/history.pb.h"

namespace aion::testing {

// What one activity of a history came to.
struct ActivitySummary {
  std::string type;
  std::string task_queue;
  std::uint64_t scheduled_seq = 0;
  std::uint32_t attempts = 0;        // ActivityStarted events (1..attempts)
  std::uint32_t retried = 0;         // non-final Failed/TimedOut
  std::string outcome;               // completed, failed, timed_out, cancelled, "" (pending)
  history::Payload result;           // completed
  history::ActivityFailure failure;  // the final failure
};

namespace activity_history_detail {
inline std::string Str(std::uint64_t v) { return std::to_string(v); }
}  // namespace activity_history_detail

// Walks `events` (one run, in seq order) and fills `*out` by activity id.
// Returns "" or the first rule broken:
// - an activity is scheduled once, before any other event naming it;
// - ActivityStarted numbers attempts 1, 2, ... and attempt k+1 starts only
//   after attempt k failed or timed out with a retry time (retry_at_us > 0);
// - every outcome (Completed / Failed / TimedOut) names the attempt that is
//   running, at most one per attempt, never after the final one or after an
//   ActivityCancelRequested (which also comes at most once, before any final
//   outcome);
// - with `require_settled`, every activity ended: a final outcome
//   (Completed, or Failed/TimedOut with retry_at_us 0) or a cancel request.
inline std::string CheckActivityAttempts(const std::vector<history::HistoryEvent>& events,
                                         bool require_settled,
                                         std::map<std::string, ActivitySummary>* out = nullptr) {
  using activity_history_detail::Str;
  struct State {
    ActivitySummary s;
    bool attempt_open = false;  // the current attempt started and has no outcome yet
    bool final = false;
    bool cancelled = false;
  };
  std::map<std::string, State> acts;
  auto find = [&](const std::string& id, const history::HistoryEvent& e, State** st) {
    auto it = acts.find(id);
    if (it == acts.end()) {
      return "seq " + Str(e.seq()) + " names activity " + id + " that was not scheduled before";
    }
    *st = &it->second;
    return std::string();
  };
  // An outcome of attempt `attempt` of `id` at event `e`.
  auto outcome = [&](const std::string& id, std::uint32_t attempt, const history::HistoryEvent& e,
                     State** st) {
    std::string p = find(id, e, st);
    if (!p.empty()) return p;
    State& a = **st;
    const std::string where =
        "seq " + Str(e.seq()) + " (activity " + id + " attempt " + Str(attempt) + "): ";
    if (a.cancelled) return where + "outcome after ActivityCancelRequested";
    if (a.final) return where + "outcome after the final one";
    if (attempt != a.s.attempts) {
      return where + "outcome for an attempt that is not the current one (" + Str(a.s.attempts) +
             ")";
    }
    if (!a.attempt_open) return where + "second outcome for the attempt";
    a.attempt_open = false;
    return std::string();
  };
  for (const auto& e : events) {
    State* st = nullptr;
    std::string p;
    switch (e.attributes_case()) {
      case history::HistoryEvent::kActivityScheduled: {
        const auto& s = e.activity_scheduled();
        if (acts.count(s.activity_id())) {
          return "seq " + Str(e.seq()) + " schedules activity " + s.activity_id() + " again";
        }
        State& a = acts[s.activity_id()];
        a.s.type = s.activity_type();
        a.s.task_queue = s.options().task_queue();
        a.s.scheduled_seq = e.seq();
        break;
      }
      case history::HistoryEvent::kActivityStarted: {
        const auto& s = e.activity_started();
        p = find(s.activity_id(), e, &st);
        if (!p.empty()) return p;
        const std::string where = "seq " + Str(e.seq()) + " (activity " + s.activity_id() +
                                  " attempt " + Str(s.attempt()) + "): ";
        if (s.attempt() != st->s.attempts + 1) {
          return where + "started after attempt " + Str(st->s.attempts) + " (not consecutive)";
        }
        if (st->attempt_open)
          return where + "started while attempt " + Str(st->s.attempts) + " ran";
        if (st->final || st->cancelled) return where + "started after the activity ended";
        st->s.attempts = s.attempt();
        st->attempt_open = true;
        break;
      }
      case history::HistoryEvent::kActivityCompleted: {
        const auto& c = e.activity_completed();
        p = outcome(c.activity_id(), c.attempt(), e, &st);
        if (!p.empty()) return p;
        st->final = true;
        st->s.outcome = "completed";
        st->s.result = c.result();
        break;
      }
      case history::HistoryEvent::kActivityFailed: {
        const auto& f = e.activity_failed();
        p = outcome(f.activity_id(), f.attempt(), e, &st);
        if (!p.empty()) return p;
        if (f.retry_at_us() > 0) {
          ++st->s.retried;
        } else {
          st->final = true;
          st->s.outcome = "failed";
          st->s.failure = f.failure();
        }
        break;
      }
      case history::HistoryEvent::kActivityTimedOut: {
        const auto& t = e.activity_timed_out();
        p = outcome(t.activity_id(), t.attempt(), e, &st);
        if (!p.empty()) return p;
        if (t.retry_at_us() > 0) {
          ++st->s.retried;
        } else {
          st->final = true;
          st->s.outcome = "timed_out";
        }
        break;
      }
      case history::HistoryEvent::kActivityCancelRequested: {
        const auto& c = e.activity_cancel_requested();
        p = find(c.activity_id(), e, &st);
        if (!p.empty()) return p;
        if (st->cancelled) return "seq " + Str(e.seq()) + " cancels " + c.activity_id() + " again";
        if (st->final) {
          return "seq " + Str(e.seq()) + " cancels " + c.activity_id() + " after its final outcome";
        }
        st->cancelled = true;
        st->s.outcome = "cancelled";
        break;
      }
      default:
        break;
    }
  }
  for (auto& [id, a] : acts) {
    if (require_settled && !a.final && !a.cancelled) {
      return "activity " + id + " (" + a.s.type + ") never ended: " + Str(a.s.attempts) +
             " attempt(s) started, no final outcome and no cancel request";
    }
    if (out != nullptr) (*out)[id] = a.s;
  }
  return "";
}

inline bool IsTerminal(const history::HistoryEvent& e) {
  switch (e.attributes_case()) {
    case history::HistoryEvent::kWorkflowCompleted:
    case history::HistoryEvent::kWorkflowFailed:
    case history::HistoryEvent::kWorkflowCancelled:
    case history::HistoryEvent::kWorkflowTerminated:
    case history::HistoryEvent::kWorkflowContinuedAsNew:
      return true;
    default:
      return false;
  }
}

// One run from start to end: seqs 1..n, every event of `run_id`, exactly one
// WorkflowStarted (the first event) and exactly one terminal event (the
// last). Returns "" or what is wrong.
inline std::string CheckSingleClosedRun(const std::vector<history::HistoryEvent>& events,
                                        const std::string& run_id) {
  using activity_history_detail::Str;
  if (events.empty()) return "empty history";
  int starts = 0, terminals = 0;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    if (e.seq() != i + 1) return "seq " + Str(e.seq()) + " at position " + Str(i + 1);
    if (e.run_id() != run_id) return "seq " + Str(e.seq()) + " of another run " + e.run_id();
    if (e.has_workflow_started()) ++starts;
    if (IsTerminal(e)) ++terminals;
  }
  if (starts != 1 || !events.front().has_workflow_started()) {
    return Str(starts) + " WorkflowStarted events (must be exactly one, first)";
  }
  if (terminals != 1 || !IsTerminal(events.back())) {
    return Str(terminals) + " terminal events (must be exactly one, last)";
  }
  return "";
}

}  // namespace aion::testing
