// Polling helper for tests that wait for another thread's progress (not for
// time to pass: engine time comes from a ManualClock).
#pragma once

#include <chrono>
#include <thread>

namespace aion::testing {

// Polls `cond` until it holds or `limit` passes; returns its last value.
template <typename Cond>
bool WaitFor(Cond cond, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return cond();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace aion::testing
