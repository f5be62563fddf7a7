// WorkCounter: how many work items a component took on and how many it
// finished, for Engine::Idle (time skipping in aion::testing).
//
// A component counts an item as started before it becomes visible to its
// threads and as finished after everything the item handed on (to another
// component, which counted it as started) is handed on. Both counts only
// grow. Thread-safe; sequentially consistent so a reader that sees a later
// start also sees the earlier ones.
#pragma once

#include <atomic>
#include <cstdint>

namespace aion {

class WorkCounter {
 public:
  void Started() { started_.fetch_add(1); }
  void Finished(std::uint64_t n = 1) { finished_.fetch_add(n); }
  std::uint64_t started() const { return started_.load(); }
  std::uint64_t finished() const { return finished_.load(); }

 private:
  std::atomic<std::uint64_t> started_{0};
  std::atomic<std::uint64_t> finished_{0};
};

}  // namespace aion
