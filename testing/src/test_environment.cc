#include "aion/testing/test_environment.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <cstdlib>
#include <limits>
#include <optional>
#include <thread>

#include "task_queue_sink.h"

namespace aion::testing {
namespace {

constexpr Timestamp kNoLimit = std::numeric_limits<Timestamp>::max();
// Polling while the engine works: short at first (a step of workflow code
// takes microseconds), longer while it stays busy.
constexpr auto kFirstPoll = std::chrono::microseconds(50);
constexpr auto kLastPoll = std::chrono::microseconds(2000);

// Where OnClosed leaves the outcome for the waiting thread.
struct Closed {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<Outcome>> outcome;  // guarded by mu
};

Status Refused(const IngressOutcome& o) { return o.status; }

}  // namespace

TestEnvironment::TestEnvironment(const WorkflowRegistry& workflows,
                                 const ActivityRegistry* activities, TestEnvironmentOptions options)
    : workflows_(workflows),
      activities_(activities),
      options_(options),
      clock_(options.start_time_us),
      sink_(std::make_unique<TaskQueueSink>(effective_)) {}

TestEnvironment::~TestEnvironment() {
  if (engine_) engine_->Shutdown();
}

Status TestEnvironment::MockActivityFn(std::string type, ActivityFn fn) {
  std::lock_guard<std::mutex> g(mu_);
  if (engine_) {
    return InvalidArgument("mock activity '" + type +
                           "' before the engine runs (before the first Start)");
  }
  if (!fn) return InvalidArgument("mock activity '" + type + "' has no body");
  AION_RETURN_IF_ERROR(ActivityRegistry().Add(type, fn));  // checks the name
  mocks_[std::move(type)] = std::move(fn);
  return Status::Ok();
}

Status TestEnvironment::Open() {
  std::lock_guard<std::mutex> g(mu_);
  if (engine_) return Status::Ok();
  for (auto& [type, fn] : mocks_) AION_RETURN_IF_ERROR(effective_.Add(type, fn));
  if (activities_ != nullptr) {
    for (const std::string& type : activities_->Types()) {
      if (mocks_.count(type) == 0)
        AION_RETURN_IF_ERROR(effective_.Add(type, *activities_->Find(type)));
    }
  }
  auto engine = Engine::Open({.store = &store_,
                              .registry = &workflows_,
                              .clock = &clock_,
                              .outbox = sink_.get(),
                              .executor_threads = options_.executor_threads,
                              .activities = &effective_,
                              .activity_threads = options_.activity_threads});
  if (!engine.ok()) return engine.status();
  engine_ = std::move(*engine);
  sink_->SetEngine(engine_.get());
  return Status::Ok();
}

Engine& TestEnvironment::engine() {
  if (Status s = Open(); !s.ok()) {
    spdlog::critical("test environment: the engine does not open: {}", s.ToString());
    std::abort();
  }
  return *engine_;
}

Result<std::string> TestEnvironment::Start(std::string workflow_id, std::string workflow_type,
                                           const Json& input, std::string request_id) {
  AION_RETURN_IF_ERROR(Open());
  IngressOutcome o = engine_->Start(std::move(workflow_id), std::move(workflow_type),
                                    JsonPayload(input), std::move(request_id));
  if (!o.status.ok()) return Refused(o);
  return o.run_id;
}

Status TestEnvironment::Signal(std::string workflow_id, std::string signal_name,
                               const Json& input) {
  AION_RETURN_IF_ERROR(Open());
  return Refused(
      engine_->Signal(std::move(workflow_id), std::move(signal_name), JsonPayload(input)));
}

Result<Json> TestEnvironment::Query(std::string_view workflow_id, std::string name,
                                    const Json& args, std::chrono::milliseconds timeout) {
  AION_RETURN_IF_ERROR(Open());
  auto answer = engine_->Query(workflow_id, std::move(name), JsonPayload(args), timeout);
  if (!answer.ok()) return answer.status();
  return ParseJsonPayload(*answer);
}

Result<std::vector<HistoryEvent>> TestEnvironment::History(std::string_view workflow_id) {
  AION_RETURN_IF_ERROR(Open());
  return engine_->History(workflow_id);
}

Result<Description> TestEnvironment::Describe(std::string_view workflow_id) {
  AION_RETURN_IF_ERROR(Open());
  return engine_->Describe(workflow_id);
}

Timestamp TestEnvironment::NextTimer() {
  auto next = store_.DueTimers(kNoLimit, 1);
  if (!next.ok() || next->empty()) return 0;
  return next->front().fire_at_us();
}

Timestamp TestEnvironment::NextTimerIn(Timestamp after, Timestamp limit) {
  const Timestamp next = NextTimer();
  return next > after && next <= limit ? next : 0;
}

bool TestEnvironment::SkipToNextTimer(Timestamp limit) {
  if (!engine_->Idle()) return false;
  const Timestamp next = NextTimerIn(clock_.Now(), limit);
  if (next == 0) return false;
  clock_.Set(next);
  return true;
}

Result<Outcome> TestEnvironment::AwaitResult(std::string_view workflow_id,
                                             std::chrono::milliseconds timeout) {
  AION_RETURN_IF_ERROR(Open());
  auto closed = std::make_shared<Closed>();
  const std::uint64_t token = engine_->OnClosed(workflow_id, [closed](Result<Outcome> r) {
    std::lock_guard<std::mutex> g(closed->mu);
    closed->outcome = std::move(r);
    closed->cv.notify_all();
  });
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto poll = kFirstPoll;
  std::unique_lock<std::mutex> lock(closed->mu);
  while (!closed->outcome.has_value()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      lock.unlock();
      engine_->CancelOnClosed(token);
      lock.lock();
      if (closed->outcome.has_value()) break;  // closed just now
      const bool idle = engine_->Idle();
      return Status{StatusCode::kDeadlineExceeded,
                    "workflow '" + std::string(workflow_id) + "' did not close within " +
                        std::to_string(timeout.count()) + " ms (virtual time " +
                        std::to_string(clock_.Now()) + " us; " +
                        (!idle              ? "the engine was still busy)"
                         : NextTimer() == 0 ? "idle with no timer left: waiting for a signal?)"
                                            : "idle)")};
    }
    lock.unlock();
    const bool skipped = SkipToNextTimer(kNoLimit);
    lock.lock();
    if (skipped) {
      poll = kFirstPoll;
      continue;
    }
    closed->cv.wait_for(lock, poll);
    poll = std::min(poll * 2, std::chrono::duration_cast<std::chrono::microseconds>(kLastPoll));
  }
  return std::move(*closed->outcome);
}

Status TestEnvironment::Sleep(Micros duration, std::chrono::milliseconds timeout) {
  AION_RETURN_IF_ERROR(Open());
  const Timestamp target = clock_.Now() + duration.count();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto poll = kFirstPoll;
  while (true) {
    if (SkipToNextTimer(target)) {
      poll = kFirstPoll;
      continue;
    }
    // Idle with no timer before the target: the rest of the way at once.
    if (engine_->Idle() && NextTimerIn(clock_.Now(), target) == 0) {
      if (clock_.Now() >= target) return Status::Ok();
      clock_.Set(target);
      continue;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status{StatusCode::kDeadlineExceeded, "the engine did not become idle within " +
                                                       std::to_string(timeout.count()) +
                                                       " ms while sleeping"};
    }
    std::this_thread::sleep_for(poll);
    poll = std::min(poll * 2, std::chrono::duration_cast<std::chrono::microseconds>(kLastPoll));
  }
}

}  // namespace aion::testing
