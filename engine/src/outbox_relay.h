// OutboxRelay: publishes committed outbox rows, then has the writer delete
// them (invariant 4). At-least-once: a crash between publish and delete
// republishes the row with the same msg_id, which receivers dedupe. Without a
// sink, rows addressed to workflows are delivered to this engine.
//
// Keys are commit positions, so the relay reads on after the last key it
// published (cursor_) and never waits for a round's deletion: the deletion
// rides with the writer's next group commit (at most kMaxDeletesInFlight
// rounds await it). After a refusal the relay reads from the start again,
// skipping the rows it published whose deletion is still pending, so each
// row is published once unless a publish or deletion fails. One thread;
// Nudge() may be called from any thread.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "aion/engine/engine.h"
#include "writer.h"

namespace aion {

class OutboxRelay {
 public:
  OutboxRelay(const EngineOptions& options, Writer* writer);
  ~OutboxRelay();
  void Nudge();  // new rows were committed
  // Idempotent. Waits for the deletions already handed to the writer, so the
  // writer must still be running (or already stopped: it then refuses them).
  void Stop();

 private:
  enum class Round {
    kMore,     // published a round; there may be more
    kIdle,     // nothing new to publish
    kRefused,  // the sink or the store refused: retry after a backoff
  };
  void Loop();
  // Publishes one round of rows and hands their deletion to the writer.
  Round RelayOnce();
  // Reads the next rows after cursor_, leaving out those awaiting deletion.
  // `more` is set when the read stopped at its limit, not at the end.
  Result<std::vector<OutboxRow>> ReadNew(bool* more);
  // The keys of the leading `rows` the sink accepted (OutboxSink::PublishBatch).
  std::vector<std::string> Publish(const std::vector<OutboxRow>& rows);
  // Without a sink: messages to workflows go to this engine's writer, other
  // rows are dropped. The keys of the rows done with, in order.
  std::vector<std::string> DeliverLocally(const std::vector<OutboxRow>& rows);
  // Hands the deletion of `keys` to the writer without waiting for it.
  void SubmitDeletion(std::vector<std::string> keys);
  // Whether a deletion failed since the last call.
  bool TakeDeletionFailure();
  // Waits for a nudge or `timeout`; false when stopping.
  bool Wait(std::chrono::milliseconds timeout);

  const EngineOptions options_;
  Writer* writer_;
  std::string cursor_;  // relay thread only: the next read starts after it ("": the start)
  std::mutex mu_;
  std::condition_variable cv_;
  bool nudged_ = true;     // guarded by mu_; starts true to republish after a crash
  bool stopping_ = false;  // guarded by mu_
  // Published keys whose deletion has not been seen committed by a read yet.
  std::unordered_set<std::string> awaiting_deletion_;  // guarded by mu_
  // Keys whose deletion committed (or failed) since the last read.
  std::vector<std::string> deletion_done_;  // guarded by mu_
  int deletions_in_flight_ = 0;             // guarded by mu_
  bool deletion_failed_ = false;            // guarded by mu_; back off before republishing
  std::thread thread_;
};

}  // namespace aion
