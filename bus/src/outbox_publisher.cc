#include "aion/bus/outbox_publisher.h"

#include <spdlog/spdlog.h>

#include "aion/bus/codec.h"
#include "nats_util.h"

namespace aion::bus {
namespace {
constexpr std::int64_t kHeaderRoom = 1024;  // the Nats-Msg-Id header and protocol overhead
constexpr std::size_t kMaxFailureBytes = 4096;
}  // namespace

NatsOutboxSink::NatsOutboxSink(NatsConnection& conn, Subjects subjects, std::uint32_t partitions)
    : conn_(conn), subjects_(std::move(subjects)), partitions_(partitions) {}

Status NatsOutboxSink::Publish(const OutboxRow& row) {
  switch (row.kind()) {
    case OutboxRow::KIND_LIFECYCLE:
      return PublishLifecycle(row);
    case OutboxRow::KIND_ACTIVITY_TASK:
      return PublishTask(row);
    case OutboxRow::KIND_ACTIVITY_CANCEL:
      return PublishCancel(row);
    case OutboxRow::KIND_WORKFLOW_MESSAGE:
      return PublishWorkflowMessage(row);
    default:
      spdlog::error("dropping outbox row '{}' of unknown kind {}", row.key(),
                    static_cast<int>(row.kind()));
      return Status::Ok();
  }
}

Status NatsOutboxSink::PublishLifecycle(const OutboxRow& row) {
  auto message = LifecycleFromRow(row, subjects_);
  if (!message.ok()) {
    spdlog::error("dropping outbox row that cannot be published: {}", message.status().message());
    return Status::Ok();
  }
  std::string data = message->event.SerializeAsString();
  if (static_cast<std::int64_t>(data.size()) > conn_.max_payload() - kHeaderRoom) {
    // Never publishable as is, and later rows wait behind it: send the event
    // without its payload rather than block the outbox.
    message->event.clear_input();
    message->event.clear_output();
    if (message->event.failure().size() > kMaxFailureBytes) {
      message->event.set_failure(
          SanitizeUtf8(message->event.failure().substr(0, kMaxFailureBytes)));
    }
    message->event.set_payload_omitted(true);
    data = message->event.SerializeAsString();
  }
  return JsPublish(conn_, message->subject, data, {}, row.key());
}

// JSON with every field, so an activity worker in any language needs only a
// JSON parser; Nats-Msg-Id makes a republish of the same attempt a duplicate.
Status NatsOutboxSink::PublishTask(const OutboxRow& row) {
  auto task = ActivityTaskFromRow(row, subjects_);
  if (!task.ok()) {
    spdlog::error("dropping activity task that cannot be published: {}", task.status().message());
    return Status::Ok();
  }
  const std::string data = EncodeMessage(task->task, /*json=*/true, /*all_fields=*/true);
  if (static_cast<std::int64_t>(data.size()) > conn_.max_payload() - kHeaderRoom) {
    // A task without its input is useless, and later rows wait behind it:
    // drop it. The attempt ends by its start-to-close timeout, if it has one.
    spdlog::error(
        "dropping activity task {} ({} of workflow {}): {} bytes exceed the server's max_payload "
        "of {}; the attempt can only end by its timeout",
        task->msg_id, task->task.activity_type(), row.workflow_id(), data.size(),
        conn_.max_payload());
    return Status::Ok();
  }
  return JsPublish(conn_, task->subject, data, ReplyHeaders(/*json=*/true), task->msg_id);
}

// Best effort: a core publish nobody stores. Ok once the server has it.
Status NatsOutboxSink::PublishCancel(const OutboxRow& row) {
  auto cancel = ActivityCancelFromRow(row, subjects_);
  if (!cancel.ok()) {
    spdlog::error("dropping activity cancel note that cannot be published: {}",
                  cancel.status().message());
    return Status::Ok();
  }
  const std::string data = EncodeMessage(cancel->cancel, /*json=*/true, /*all_fields=*/true);
  AION_RETURN_IF_ERROR(CorePublish(conn_, cancel->subject, data, ReplyHeaders(/*json=*/true)));
  return conn_.Flush();
}

// A malformed or oversized message can never be delivered, and later rows
// wait behind it: drop it with an error naming the row. Its addressee never
// hears of it (a child never starts, a parent never learns the child's end),
// so the parent waits until its own timeout or cancel.
Status NatsOutboxSink::PublishWorkflowMessage(const OutboxRow& row) {
  auto message = WorkflowMessageFromRow(row);
  if (!message.ok()) {
    spdlog::error("dropping workflow message that cannot be published: {}",
                  message.status().message());
    return Status::Ok();
  }
  if (static_cast<std::int64_t>(message->data.size()) > conn_.max_payload() - kHeaderRoom) {
    spdlog::error(
        "dropping workflow message: outbox row '{}' ({} for workflow {}) is {} bytes, more than "
        "the server's max_payload of {}",
        row.key(), IngressKindName(message->kind), message->workflow_id, message->data.size(),
        conn_.max_payload());
    return Status::Ok();
  }
  const std::string subject = subjects_.InboxOf(message->workflow_id, message->kind, partitions_);
  return JsPublish(conn_, subject, message->data, {}, message->msg_id);
}

}  // namespace aion::bus
