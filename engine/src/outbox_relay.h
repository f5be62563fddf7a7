// OutboxRelay: publishes committed outbox rows, then has the writer delete
// them (invariant 4). At-least-once: a crash between publish and delete
// republishes the row with the same key, which receivers dedupe. Without a
// sink, rows addressed to workflows are delivered to this engine. One thread;
// Nudge() may be called from any thread.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>

#include "aion/engine/engine.h"
#include "writer.h"

namespace aion {

class OutboxRelay {
 public:
  OutboxRelay(const EngineOptions& options, Writer* writer);
  ~OutboxRelay();
  void Nudge();  // new rows were committed
  void Stop();   // idempotent

 private:
  void Loop();
  // Publishes and deletes one round of rows; false if there were none.
  bool RelayOnce();
  // The keys of the leading `rows` the sink accepted (OutboxSink::PublishBatch).
  std::vector<std::string> Publish(const std::vector<OutboxRow>& rows);
  // Without a sink: messages to workflows go to this engine's writer, other
  // rows are dropped. The keys of the rows done with, in order.
  std::vector<std::string> DeliverLocally(const std::vector<OutboxRow>& rows);
  // Waits for a nudge or `timeout`; false when stopping.
  bool Wait(std::chrono::milliseconds timeout);

  const EngineOptions options_;
  Writer* writer_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool nudged_ = true;     // guarded by mu_; starts true to republish after a crash
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace aion
