// Writer: the single writer of every workflow the engine owns (invariant 1).
//
// One thread takes queued work (ingress batches, commands of runs, due timers,
// published outbox rows), turns all of it into one WriteBatch, commits it
// (group commit) and only then runs the post-commit effects: ingress
// callbacks (acks), markers to runs, close notifications. A commit that fails
// transiently is retried unchanged with backoff; nothing is acknowledged
// before it succeeds (invariants 2, 3, 10). Deletions of published outbox
// rows are the exception to "commit now": nobody waits on them, so they ride
// along with the next commit (or go alone after a short deferral). Submit*
// may be called from any thread; everything else runs on the writer thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "aion/engine/engine.h"
#include "run_machine.h"
#include "work_counter.h"

namespace aion {

// A local activity attempt to run, or to stop, after the commit.
struct LocalActivity {
  std::string workflow_id;
  records::ActivityTaskRow task;
};

// What a successful commit asks the rest of the engine to do.
struct CommitEffects {
  std::vector<LocalActivity> local_tasks;
  std::vector<LocalActivity> local_cancels;
  std::vector<std::string> wake;  // runs with new inputs or a recorded terminal event
  std::vector<std::pair<std::string, Outcome>> closed;
  bool timers_added = false;
  bool outbox_added = false;
  std::vector<std::string> rebuild;  // runs whose commands were refused: rebuild from the store
};

class Writer {
 public:
  using EffectsSink = std::function<void(const CommitEffects&)>;
  // `first_outbox_position`: OpenOutboxPositions' answer for the store.
  Writer(const EngineOptions& options, std::uint64_t first_outbox_position, EffectsSink effects);
  ~Writer();

  void SubmitIngress(std::vector<IngressMessage> batch, IngressCallback done);
  // `ran_through`: the last input seq the run's code has run on (0 = no
  // news); without commands it rides along with the next commit (Defer).
  void SubmitCommands(std::string workflow_id, std::string run_id,
                      std::vector<IssuedCommand> commands, std::uint64_t ran_through = 0);
  // `done` runs after the commit (or with an error if it failed for good).
  void SubmitDueTimers(std::vector<TimerRow> due, std::function<void(Status)> done);
  void SubmitOutboxPublished(std::vector<std::string> keys, std::function<void(Status)> done);
  void SubmitHeartbeat(ActivityHeartbeat heartbeat, std::function<void(Status)> done);

  // From now on refuses new work (its callbacks get kUnavailable) and stops
  // retrying failed commits; the thread still handles what is queued.
  void BeginStop();
  // BeginStop, then waits for the queue to drain and joins. Idempotent.
  void Stop();
  // Queued work items (not deferred deletions) and those fully handled.
  const WorkCounter& work() const { return work_; }

 private:
  struct IngressWork {
    std::vector<IngressMessage> batch;
    IngressCallback done;
  };
  struct CommandWork {
    std::string workflow_id;
    std::string run_id;
    std::vector<IssuedCommand> commands;
    std::uint64_t ran_through = 0;
  };
  struct TimerWork {
    std::vector<TimerRow> due;
    std::function<void(Status)> done;
  };
  struct OutboxWork {
    std::vector<std::string> keys;
    std::function<void(Status)> done;
  };
  struct HeartbeatWork {
    ActivityHeartbeat heartbeat;
    std::function<void(Status)> done;
  };
  using Work = std::variant<IngressWork, CommandWork, TimerWork, OutboxWork, HeartbeatWork>;
  class BatchBuilder;

  void Enqueue(Work work);
  // Waits until there is work to commit now: queued work, stopping, or
  // deferred deletions that waited long enough or piled up. Requires mu_.
  void WaitForWork(std::unique_lock<std::mutex>& lock);
  // Adds `work` (a deletion, or a progress note without commands) to
  // deferred_. Requires mu_.
  void Defer(Work work);
  // Puts `work` back among the deferred deletions, unless stopping (false).
  bool Redefer(OutboxWork& work);
  void Loop();
  void HandleBatch(std::deque<Work> items);
  // Commits `item` on its own, and an ingress batch one message at a time.
  void HandleAlone(Work item);
  Status CommitWithRetry(const WriteBatch& batch);

  const EngineOptions options_;
  EffectsSink effects_;
  // Bounds records_ to options_.max_cached_records: a cached record costs
  // ~600 B, a whole parked run ~2 KB (bench/README.md, memory per idle run).
  void TrimRecordCache();

  // Records of workflows as of the last successful commit, some of them; the
  // others are read from the store when needed. Writer thread only.
  std::unordered_map<std::string, WorkflowRecord> records_;
  std::uint64_t next_outbox_position_;  // writer thread only: the next row's key

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Work> queue_;  // guarded by mu_
  // Deletions of published outbox rows: nobody waits for them, so they wait
  // to ride along with the next commit (saving a synced commit of their
  // own) for at most kDeletionDeferral. Guarded by mu_.
  static constexpr auto kDeletionDeferral = std::chrono::milliseconds(20);
  static constexpr std::size_t kMaxDeferredDeletions = 16;  // the relay's limit
  std::deque<Work> deferred_;
  std::chrono::steady_clock::time_point deferred_since_;  // guarded by mu_
  bool stopping_ = false;                                 // guarded by mu_
  WorkCounter work_;
  std::thread thread_;
};

}  // namespace aion
