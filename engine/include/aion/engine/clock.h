// Clock: the engine's only source of time, injected so tests never sleep.
//
// Timestamps are microseconds since the Unix epoch. Implementations are
// thread-safe. WaitUntil lets a service thread block until a deadline on this
// clock or until its condition variable is notified, whichever comes first.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

namespace aion {

using Timestamp = std::int64_t;  // microseconds since the Unix epoch
using Micros = std::chrono::microseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Timestamp Now() const = 0;
  // Blocks (releasing `lock`) until Now() >= deadline or `cv` is notified.
  // Spurious returns are allowed: callers re-check their condition.
  virtual void WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                         Timestamp deadline) = 0;
};

// Wall-clock time. A process-wide instance is returned by SystemClock::Get().
class SystemClock final : public Clock {
 public:
  static SystemClock& Get();
  Timestamp Now() const override;
  void WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 Timestamp deadline) override;
};

// Test clock that moves only when told. Advance wakes every WaitUntil caller
// whose deadline may have passed, without lost wakeups: a waiter registers
// under the clock's mutex and Advance notifies under the waiter's own mutex.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Timestamp start = 1'700'000'000'000'000) : now_(start) {}
  Timestamp Now() const override;
  void WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 Timestamp deadline) override;
  void Advance(Micros by);
  void Set(Timestamp t);

 private:
  struct Waiter {
    std::mutex* mu;
    std::condition_variable* cv;
  };
  void NotifyWaiters();

  std::mutex notify_mu_;  // order: notify_mu_, then a waiter's mutex, then mu_
  mutable std::mutex mu_;
  Timestamp now_;                // guarded by mu_
  std::vector<Waiter> waiters_;  // guarded by mu_
};

}  // namespace aion
