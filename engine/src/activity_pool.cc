#include "activity_pool.h"

#include <spdlog/spdlog.h>

namespace aion {

ActivityPool::ActivityPool(const ActivityRegistry* registry, int threads, Report report,
                           HeartbeatSink heartbeat)
    : registry_(registry), report_(std::move(report)), heartbeat_(std::move(heartbeat)) {
  const int n = threads > 0 ? threads : 1;
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { Loop(); });
}

ActivityPool::~ActivityPool() { Stop(); }

std::string ActivityPool::KeyOf(const LocalActivity& a) {
  return a.workflow_id + "/" + a.task.run_id() + "/" + a.task.activity_id() + "/" +
         std::to_string(a.task.attempt());
}

void ActivityPool::Run(LocalActivity activity) {
  auto attempt = std::make_unique<Attempt>();
  attempt->activity = std::move(activity);
  std::lock_guard<std::mutex> g(mu_);
  if (stopping_) return;  // recovery runs it again
  // Recovery may hand over an attempt that is already queued or running.
  auto [it, added] = attempts_.emplace(KeyOf(attempt->activity), std::move(attempt));
  if (!added) return;
  work_.Started();
  queue_.push_back(it->second.get());
  cv_.notify_one();
}

void ActivityPool::Cancel(const LocalActivity& activity) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = attempts_.find(KeyOf(activity));
  if (it != attempts_.end()) it->second->cancelled.store(true);
}

void ActivityPool::Stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    for (auto& [key, attempt] : attempts_) attempt->cancelled.store(true);
    queue_.clear();
    cv_.notify_all();
  }
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void ActivityPool::Loop() {
  while (true) {
    Attempt* attempt = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      attempt = queue_.front();
      queue_.pop_front();
      if (attempt->cancelled.load()) {
        // Cancelled while it waited for a thread (the run ended or stopped
        // waiting): its side effects must not start at all.
        attempts_.erase(KeyOf(attempt->activity));
        work_.Finished();
        continue;
      }
    }
    Execute(*attempt);
    std::lock_guard<std::mutex> g(mu_);
    attempts_.erase(KeyOf(attempt->activity));
    work_.Finished();
  }
}

void ActivityPool::Execute(Attempt& attempt) {
  const records::ActivityTaskRow& task = attempt.activity.task;
  IngressMessage result;
  result.kind = IngressMessage::Kind::kActivityResult;
  result.workflow_id = attempt.activity.workflow_id;
  result.run_id = task.run_id();
  result.activity_id = task.activity_id();
  result.attempt = task.attempt();
  auto fail = [&](const std::string& message, const std::string& type, bool non_retryable) {
    result.activity_failed = true;
    result.failure.set_message(message);
    result.failure.set_error_type(type);
    result.failure.set_non_retryable(non_retryable);
  };
  const ActivityFn* fn = registry_ ? registry_->Find(task.activity_type()) : nullptr;
  if (fn == nullptr) {
    // Retryable: a worker that has it may take the partition over.
    fail("no local activity '" + task.activity_type() + "' is registered on this worker",
         "UnknownActivityType", false);
  } else {
    auto beat = [this, &result](const Payload& details) {
      ActivityHeartbeat hb;
      hb.workflow_id = result.workflow_id;
      hb.run_id = result.run_id;
      hb.activity_id = result.activity_id;
      hb.attempt = result.attempt;
      hb.details = details;
      return heartbeat_(std::move(hb)).ok();
    };
    ActivityContext ctx(result.workflow_id, result.run_id, result.activity_id, result.attempt, beat,
                        &attempt.cancelled);
    result.activity_failed =
        !RunActivityAttempt(*fn, ctx, task.input(), &result.input, &result.failure);
  }
  if (attempt.cancelled.load()) return;  // nobody waits for it any more
  report_(std::move(result));
}

}  // namespace aion
