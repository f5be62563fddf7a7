// MapResizeGate: lets many LMDB transactions run at once, or one map resize
// alone (mdb_env_set_mapsize requires that no transaction of this process is
// active).
//
// A shared/exclusive lock that prefers the resize: once a resize waits, new
// shared entries wait too, so a steady stream of readers cannot starve it.
// Not reentrant: a thread holding it shared must not enter it again.
#pragma once

#include <condition_variable>
#include <mutex>

namespace aion {

class MapResizeGate {
 public:
  void EnterShared() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !resizing_ && waiting_resizers_ == 0; });
    ++active_;
  }
  void ExitShared() {
    std::lock_guard lock(mu_);
    if (--active_ == 0) cv_.notify_all();
  }
  void EnterExclusive() {
    std::unique_lock lock(mu_);
    ++waiting_resizers_;
    cv_.wait(lock, [&] { return !resizing_ && active_ == 0; });
    --waiting_resizers_;
    resizing_ = true;
  }
  void ExitExclusive() {
    std::lock_guard lock(mu_);
    resizing_ = false;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int active_ = 0;            // guarded by mu_
  int waiting_resizers_ = 0;  // guarded by mu_
  bool resizing_ = false;     // guarded by mu_
};

// Holds a MapResizeGate shared for its lifetime.
class SharedGateLock {
 public:
  explicit SharedGateLock(MapResizeGate& gate) : gate_(gate) { gate_.EnterShared(); }
  ~SharedGateLock() { gate_.ExitShared(); }
  SharedGateLock(const SharedGateLock&) = delete;
  SharedGateLock& operator=(const SharedGateLock&) = delete;

 private:
  MapResizeGate& gate_;
};

// Holds a MapResizeGate exclusively for its lifetime.
class ExclusiveGateLock {
 public:
  explicit ExclusiveGateLock(MapResizeGate& gate) : gate_(gate) { gate_.EnterExclusive(); }
  ~ExclusiveGateLock() { gate_.ExitExclusive(); }
  ExclusiveGateLock(const ExclusiveGateLock&) = delete;
  ExclusiveGateLock& operator=(const ExclusiveGateLock&) = delete;

 private:
  MapResizeGate& gate_;
};

}  // namespace aion
