// RunHost: the resident runs of an engine and the executor threads that
// drive them.
//
// Notify(id) is the mailbox marker: it only wakes; the run then reads what is
// durable in the Store (invariant 3). Each run has a wake state
// (idle -> queued -> running -> running+notified) changed with atomic CAS so a
// marker that arrives while the run is executing makes it execute again: no
// wakeup is lost under any interleaving and surplus wakes are harmless
// (invariant 7). Notify may be called from any thread; a run is executed by
// one executor at a time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <forward_list>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "aion/engine/engine.h"
#include "run_machine.h"
#include "work_counter.h"

namespace aion {

class RunHost {
 public:
  // Hands the commands a run issued to the writer, with the last input seq
  // its code has now run on (0 = none new), which the writer records.
  using CommandSink =
      std::function<void(const std::string& workflow_id, std::string_view run_id,
                         std::vector<IssuedCommand> commands, std::uint64_t ran_through)>;
  RunHost(const EngineOptions& options, CommandSink commands);
  ~RunHost();

  // Wakes the run of `workflow_id`, making it resident if it is not.
  void Notify(const std::string& workflow_id);
  using QueryCallback = std::function<void(Result<Payload>)>;
  // Queues a query for the run (made resident if it is not); `done` runs on
  // an executor once the run is caught up, or at once if the run is parked.
  void Query(const std::string& workflow_id, std::string name, Payload args, QueryCallback done);
  // Drops the resident state so the next Notify rebuilds the run by replay.
  void Rebuild(const std::string& workflow_id);
  // "" if the run is not parked; else why it is.
  std::string ParkedError(const std::string& workflow_id) const;
  bool IsResident(const std::string& workflow_id) const;
  std::size_t ResidentCount() const;
  // Wakes that queued a run, and executions that finished.
  const WorkCounter& work() const { return work_; }
  // Lets running executions finish, then joins the executors. Idempotent.
  void Stop();

 private:
  enum WakeState : int { kIdle, kQueued, kRunning, kRunningNotified };
  // Lives in its entry of runs_ (node-based: its address is stable), so a
  // resident run costs one allocation besides its machine's own state.
  struct Run {
    const std::string& workflow_id() const { return *id; }
    const std::string* id = nullptr;  // the key of its entry in runs_
    std::atomic<int> wake{kIdle};
    std::atomic<bool> rebuild{false};
    bool in_lru = false;  // guarded by RunHost::runs_mu_
    // Touched only by the executor that holds the run in kRunning*.
    std::optional<RunMachine> machine;
    struct PendingQuery {
      std::string name;
      Payload args;
      QueryCallback done;
    };
    // Newest first (TakeQueries gives them oldest first); one pointer, as
    // most runs never see a query. Guarded by RunHost::runs_mu_.
    std::forward_list<PendingQuery> queries;
    // Neighbours among idle resident runs (idle_oldest_ first); guarded by
    // runs_mu_. Intrusive: no list node per run.
    Run* lru_prev = nullptr;
    Run* lru_next = nullptr;
  };

  void ExecutorLoop();
  void Execute(Run& run);
  // Wakes `workflow_id`, queueing `query` (if any) for it first.
  void Wake(const std::string& workflow_id, Run::PendingQuery* query);
  void AnswerQueries(Run& run);
  // Brings the machine up to the durable history and sends its new commands.
  Status CatchUp(Run& run);
  void Park(Run& run, const Status& why);
  // An engine fault while running: park now, rebuild after a backoff, or
  // give up past the intensity limit (EngineOptions::supervision).
  void Supervise(Run& run, const Status& why);
  void RestartLoop();  // wakes runs whose backoff has passed
  // Frees a run whose work is done unless a marker arrived meanwhile.
  bool TryRetire(Run& run);
  // Marks the run idle unless a marker arrived meanwhile; evicts the least
  // recently used idle runs beyond EngineOptions::max_resident_runs.
  bool TryIdle(Run& run);
  void LruPushBack(Run& run);  // with runs_mu_
  void LruRemove(Run& run);    // with runs_mu_
  void Erase(Run& run);        // with runs_mu_: out of the LRU and runs_, freed
  // With runs_mu_: the run's pending queries, oldest first; none are left.
  static std::forward_list<Run::PendingQuery> TakeQueries(Run& run);

  const EngineOptions options_;
  CommandSink commands_;

  mutable std::mutex runs_mu_;
  std::unordered_map<std::string, Run> runs_;            // guarded by runs_mu_
  std::unordered_map<std::string, std::string> parked_;  // guarded by runs_mu_
  Run* idle_oldest_ = nullptr;                           // guarded by runs_mu_
  Run* idle_newest_ = nullptr;                           // guarded by runs_mu_
  // Engine faults per workflow: their times within the window.
  std::unordered_map<std::string, std::deque<Timestamp>> faults_;  // guarded by runs_mu_
  std::multimap<Timestamp, std::string> restarts_;                 // guarded by runs_mu_
  std::condition_variable restart_cv_;                             // with runs_mu_
  bool restart_stopping_ = false;                                  // guarded by runs_mu_
  std::thread restarter_;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Run*> queue_;  // guarded by queue_mu_
  bool stopping_ = false;   // guarded by queue_mu_
  WorkCounter work_;
  std::vector<std::thread> executors_;
};

}  // namespace aion
