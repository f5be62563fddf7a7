// TestEnvironment: an in-process engine on a MemoryStore for testing
// workflows, with a virtual clock that skips ahead to the next timer whenever
// the engine is idle while a test waits (AwaitResult, Sleep), so a workflow
// that sleeps 30 days completes in milliseconds. Activities can be mocked by
// type. The registries are borrowed and must outlive the environment; every
// method may be called from any thread (time skips only inside the waits).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "aion/engine/activity.h"
#include "aion/engine/clock.h"
#include "aion/engine/engine.h"
#include "aion/engine/memory_store.h"
#include "aion/engine/payload.h"
#include "aion/engine/registry.h"
#include "aion/engine/status.h"

namespace aion::testing {

class TaskQueueSink;

struct TestEnvironmentOptions {
  Timestamp start_time_us = 1'700'000'000'000'000;  // the virtual clock's first reading
  int executor_threads = 2;
  int activity_threads = 4;
};

class TestEnvironment {
 public:
  // `activities` (may be null): the local activities the workflows call;
  // mocks replace them by type.
  explicit TestEnvironment(const WorkflowRegistry& workflows,
                           const ActivityRegistry* activities = nullptr,
                           TestEnvironmentOptions options = {});
  ~TestEnvironment();  // shuts the engine down
  TestEnvironment(const TestEnvironment&) = delete;
  TestEnvironment& operator=(const TestEnvironment&) = delete;

  // Runs `fn` (as ActivityRegistry::activity takes it: `Out(ActivityContext&,
  // In)`) for every local activity of `type`, replacing a registered one.
  // kInvalidArgument for a bad name, or once the engine runs (after the
  // first Start, Signal, Query or engine() call).
  template <typename Fn>
  Status MockActivity(std::string type, Fn fn) {
    ActivityRegistry converted;
    AION_RETURN_IF_ERROR(converted.activity(type, std::move(fn)));
    return MockActivityFn(std::move(type), *converted.Find(type));
  }
  Status MockActivityFn(std::string type, ActivityFn fn);

  // The new run's id; the engine's refusal otherwise (kAlreadyStarted,
  // kUnknownWorkflowType, kInvalidArgument, ...).
  Result<std::string> Start(std::string workflow_id, std::string workflow_type,
                            const Json& input = nullptr, std::string request_id = "");
  // kNotFound, kNotRunning, kInvalidArgument as the engine refuses it.
  Status Signal(std::string workflow_id, std::string signal_name, const Json& input = nullptr);
  // Asks a query of the live run (no time passes); the engine's errors.
  Result<Json> Query(std::string_view workflow_id, std::string name, const Json& args = nullptr,
                     std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // Waits, skipping virtual time from timer to timer whenever the engine is
  // idle, until the current run of `workflow_id` is terminal. `timeout` is
  // wall-clock time: kDeadlineExceeded after it (the message tells the
  // virtual time and whether any timer was left). kNotFound for an unknown id.
  Result<Outcome> AwaitResult(std::string_view workflow_id, std::chrono::milliseconds timeout);
  // Moves virtual time forward by `duration`, firing the timers that fall
  // due on the way in order, and returns once the engine is idle at the end.
  // kDeadlineExceeded if that takes longer than `timeout` of wall time.
  Status Sleep(Micros duration, std::chrono::milliseconds timeout = std::chrono::seconds(10));

  Result<std::vector<HistoryEvent>> History(std::string_view workflow_id);
  Result<Description> Describe(std::string_view workflow_id);
  Timestamp Now() const { return clock_.Now(); }

  // The engine itself (opened on first use), for everything else: cancel,
  // terminate, signal-with-start, List, OnClosed. Aborts if it cannot open.
  Engine& engine();

 private:
  // Opens the engine unless it runs; its error otherwise.
  Status Open();
  // Moves the clock to the earliest timer row if the engine is idle and that
  // row is due after now and no later than `limit`. True if it moved.
  bool SkipToNextTimer(Timestamp limit);
  // The earliest timer row's fire time, or 0 if there is none.
  Timestamp NextTimer();
  // NextTimer() if it is in (after, limit], else 0.
  Timestamp NextTimerIn(Timestamp after, Timestamp limit);

  const WorkflowRegistry& workflows_;
  const ActivityRegistry* activities_;
  const TestEnvironmentOptions options_;
  ManualClock clock_;
  MemoryStore store_;
  std::mutex mu_;
  std::map<std::string, ActivityFn> mocks_;  // guarded by mu_
  ActivityRegistry effective_;               // built once, when the engine opens
  std::unique_ptr<TaskQueueSink> sink_;      // serves task queues with effective_
  std::unique_ptr<Engine> engine_;           // guarded by mu_ until set
};

}  // namespace aion::testing
