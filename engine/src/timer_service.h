// TimerService: fires durable timers when they fall due (invariant 8).
//
// One thread reads due rows from the Store's time index, hands them to the
// writer (which records TimerFired only for timers still pending and deletes
// the rows) and waits for that commit before looking again, so a row is never
// fired twice. It sleeps on the injected Clock until the earliest row is due
// or Nudge() reports new rows. Due rows left from downtime fire at start.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "aion/engine/engine.h"
#include "writer.h"

namespace aion {

class TimerService {
 public:
  TimerService(const EngineOptions& options, Writer* writer);
  ~TimerService();
  void Nudge();  // new timer rows were committed; any thread
  void Stop();   // idempotent

 private:
  void Loop();
  // Fires one round of due timers; false if there were none.
  bool FireDue();

  const EngineOptions options_;
  Writer* writer_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool nudged_ = false;    // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  // Timer thread only: the earliest due row of the last round, and whether
  // it was still due in this one.
  std::string last_first_due_;
  bool stuck_ = false;
  std::thread thread_;
};

}  // namespace aion
