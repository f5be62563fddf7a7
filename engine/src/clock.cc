#include "aion/engine/clock.h"

#include <algorithm>

namespace aion {

SystemClock& SystemClock::Get() {
  static SystemClock clock;
  return clock;
}

Timestamp SystemClock::Now() const {
  return std::chrono::duration_cast<Micros>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void SystemClock::WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                            Timestamp deadline) {
  const Timestamp now = Now();
  if (deadline <= now) return;
  // Wait on the steady clock so wall-clock jumps cannot stretch the wait.
  cv.wait_for(lock, Micros(deadline - now));
}

Timestamp ManualClock::Now() const {
  std::lock_guard<std::mutex> g(mu_);
  return now_;
}

void ManualClock::WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                            Timestamp deadline) {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (now_ >= deadline) return;
    waiters_.push_back({lock.mutex(), &cv});
  }
  cv.wait(lock);
  // Unregister without holding `lock`: NotifyWaiters takes notify_mu_ before a
  // waiter's mutex, so taking notify_mu_ while holding `lock` could deadlock.
  lock.unlock();
  {
    std::lock_guard<std::mutex> n(notify_mu_);
    std::lock_guard<std::mutex> g(mu_);
    auto it = std::find_if(waiters_.begin(), waiters_.end(),
                           [&](const Waiter& w) { return w.cv == &cv && w.mu == lock.mutex(); });
    if (it != waiters_.end()) waiters_.erase(it);
  }
  lock.lock();
}

void ManualClock::Advance(Micros by) {
  {
    std::lock_guard<std::mutex> g(mu_);
    now_ += by.count();
  }
  NotifyWaiters();
}

void ManualClock::Set(Timestamp t) {
  {
    std::lock_guard<std::mutex> g(mu_);
    now_ = t;
  }
  NotifyWaiters();
}

void ManualClock::NotifyWaiters() {
  // Held for the whole loop so no waiter unregisters (and is destroyed) while
  // it is being notified.
  std::lock_guard<std::mutex> n(notify_mu_);
  std::vector<Waiter> copy;
  {
    std::lock_guard<std::mutex> g(mu_);
    copy = waiters_;
  }
  for (const Waiter& w : copy) {
    std::lock_guard<std::mutex> g(*w.mu);  // waiter is inside cv.wait, or not yet registered
    w.cv->notify_all();
  }
}

}  // namespace aion
