// TaskQueueSink: the test environment's OutboxSink. It serves the activity
// tasks of every task queue with the environment's activities (mocks
// included) on the engine's outbox relay thread, the only caller, and
// delivers messages between workflows (child starts and results) to the
// engine as the relay does without a sink. Lifecycle events and cancel notes
// are accepted and dropped. The registry is borrowed.
#pragma once

#include <atomic>

#include "aion/engine/activity.h"
#include "aion/engine/engine.h"
#include "aion/engine/outbox_sink.h"

namespace aion::testing {

class TaskQueueSink final : public OutboxSink {
 public:
  explicit TaskQueueSink(const ActivityRegistry& activities) : activities_(activities) {}
  // The engine to report to; rows offered before it is set wait (kUnavailable).
  void SetEngine(Engine* engine) { engine_.store(engine); }
  Status Publish(const OutboxRow& row) override;

 private:
  // Records `m`; kUnavailable/kResourceExhausted mean it must be offered again.
  Status Deliver(Engine& engine, IngressMessage m);
  // Runs one attempt; its result as the ingress message a worker would send.
  IngressMessage RunTask(Engine& engine, const OutboxRow& row);

  const ActivityRegistry& activities_;
  std::atomic<Engine*> engine_{nullptr};
};

}  // namespace aion::testing
