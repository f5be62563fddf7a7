#include "task_queue_sink.h"

#include <future>
#include <typeinfo>

namespace aion::testing {

Status TaskQueueSink::Publish(const OutboxRow& row) {
  Engine* engine = engine_.load();
  if (engine == nullptr) return Unavailable("the test environment's engine is not open yet");
  switch (row.kind()) {
    case OutboxRow::KIND_WORKFLOW_MESSAGE:
      return Deliver(*engine, IngressOfWorkflowMessage(row.message()));
    case OutboxRow::KIND_ACTIVITY_TASK:
      return Deliver(*engine, RunTask(*engine, row));
    default:
      return Status::Ok();  // nobody listens for lifecycle events or cancel notes here
  }
}

Status TaskQueueSink::Deliver(Engine& engine, IngressMessage m) {
  const Status s = engine.Send(std::move(m)).status;
  if (s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kResourceExhausted) return s;
  return Status::Ok();  // recorded, or refused for good (as a real receiver would drop it)
}

IngressMessage TaskQueueSink::RunTask(Engine& engine, const OutboxRow& row) {
  const records::ActivityTaskRow& task = row.task();
  IngressMessage result;
  result.kind = IngressMessage::Kind::kActivityResult;
  result.workflow_id = row.workflow_id();
  result.run_id = task.run_id();
  result.activity_id = task.activity_id();
  result.attempt = task.attempt();
  auto fail = [&](const std::string& message, const std::string& type, bool non_retryable) {
    result.activity_failed = true;
    result.failure.set_message(message);
    result.failure.set_error_type(type);
    result.failure.set_non_retryable(non_retryable);
  };
  const ActivityFn* fn = activities_.Find(task.activity_type());
  if (fn == nullptr) {
    fail("the test environment has no activity '" + task.activity_type() + "' (mock it)",
         "UnknownActivityType", false);
    return result;
  }
  auto beat = [&engine, &result](const Payload& details) {
    std::promise<Status> done;
    auto answer = done.get_future();
    engine.Heartbeat(
        {result.workflow_id, result.run_id, result.activity_id, result.attempt, details},
        [&done](Status s) { done.set_value(std::move(s)); });
    return answer.get().ok();
  };
  const std::atomic<bool> never_cancelled{false};
  ActivityContext ctx(result.workflow_id, result.run_id, result.activity_id, result.attempt, beat,
                      &never_cancelled);
  result.activity_failed =
      !RunActivityAttempt(*fn, ctx, task.input(), &result.input, &result.failure);
  return result;
}

}  // namespace aion::testing
