#include "timer_service.h"

#include <spdlog/spdlog.h>

#include <future>
#include <limits>

namespace aion {
namespace {
constexpr std::size_t kFireBatch = 512;
constexpr Timestamp kIdleRecheckUs = 60'000'000;  // re-read the index at least once a minute
}  // namespace

TimerService::TimerService(const EngineOptions& options, Writer* writer)
    : options_(options), writer_(writer), thread_([this] { Loop(); }) {}

TimerService::~TimerService() { Stop(); }

void TimerService::Nudge() {
  std::lock_guard<std::mutex> g(mu_);
  nudged_ = true;
  cv_.notify_all();
}

void TimerService::Stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void TimerService::Loop() {
  while (true) {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (stopping_) return;
      nudged_ = false;
    }
    if (FireDue()) continue;
    auto next = options_.store->DueTimers(std::numeric_limits<Timestamp>::max(), 1);
    Timestamp deadline = options_.clock->Now() + kIdleRecheckUs;
    if (next.ok() && !next->empty()) deadline = std::min(deadline, next->front().fire_at_us());
    std::unique_lock<std::mutex> lock(mu_);
    if (!stopping_ && !nudged_) options_.clock->WaitUntil(lock, cv_, deadline);
  }
}

bool TimerService::FireDue() {
  auto due = options_.store->DueTimers(options_.clock->Now(), kFireBatch);
  if (!due.ok()) {
    spdlog::warn("timers: cannot read due timers: {}", due.status().ToString());
    return false;
  }
  if (due->empty()) return false;
  std::promise<Status> committed;
  auto result = committed.get_future();
  writer_->SubmitDueTimers(std::move(*due), [&committed](Status s) { committed.set_value(s); });
  const Status s = result.get();
  if (!s.ok()) {
    spdlog::warn("timers: firing failed: {}", s.ToString());
    return false;
  }
  return true;
}

}  // namespace aion
