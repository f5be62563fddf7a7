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
    if (stuck_) {
      // Due rows the writer could not settle (their records are unreadable):
      // pace the retries instead of spinning. Real time: this paces I/O.
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping_; });
      continue;
    }
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
  stuck_ = false;
  if (due->empty()) return false;
  // The same earliest row as last round: the writer left it in place.
  const std::string first = due->front().workflow_id() + "/" + due->front().timer_id() + "@" +
                            std::to_string(due->front().fire_at_us());
  if (first == last_first_due_) {
    stuck_ = true;
    last_first_due_.clear();  // retry it once after the pause
    return false;
  }
  last_first_due_ = first;
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
