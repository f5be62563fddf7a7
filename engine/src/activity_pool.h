// ActivityPool: runs local activity attempts on a bounded set of threads,
// never on an executor that runs workflow code.
//
// Run() queues an attempt the writer has recorded as started (or that
// recovery found started); its result goes back through `report` as an
// ingress message, so it is recorded like a remote worker's result. Cancel()
// sets the attempt's cancelled flag, which ActivityContext exposes; the
// activity stops cooperatively. All methods are thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "aion/engine/engine.h"
#include "work_counter.h"
#include "writer.h"

namespace aion {

class ActivityPool {
 public:
  using Report = std::function<void(IngressMessage)>;
  using HeartbeatSink = std::function<Status(ActivityHeartbeat)>;
  ActivityPool(const ActivityRegistry* registry, int threads, Report report,
               HeartbeatSink heartbeat);
  ~ActivityPool();

  void Run(LocalActivity attempt);
  void Cancel(const LocalActivity& attempt);
  // Cancels what runs, drops what waits (recovery re-runs it) and joins.
  void Stop();
  // Attempts queued, and attempts done with (reported, or dropped cancelled).
  const WorkCounter& work() const { return work_; }

 private:
  struct Attempt {
    LocalActivity activity;
    std::atomic<bool> cancelled{false};
  };
  static std::string KeyOf(const LocalActivity& a);
  void Loop();
  void Execute(Attempt& attempt);

  const ActivityRegistry* registry_;
  Report report_;
  HeartbeatSink heartbeat_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Attempt*> queue_;                                // guarded by mu_
  std::map<std::string, std::unique_ptr<Attempt>> attempts_;  // guarded by mu_: queued or running
  bool stopping_ = false;                                     // guarded by mu_
  WorkCounter work_;
  std::vector<std::thread> threads_;
};

}  // namespace aion
