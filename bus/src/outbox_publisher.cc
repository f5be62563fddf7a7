#include "aion/bus/outbox_publisher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_map>

#include "aion/bus/codec.h"
#include "aion/bus/reply_when.h"
#include "js_async_publisher.h"
#include "nats_util.h"

namespace aion::bus {
namespace {
constexpr std::int64_t kHeaderRoom = 1024;  // the Nats-Msg-Id header and protocol overhead
constexpr std::size_t kMaxFailureBytes = 4096;
constexpr int kMaxInFlight = 2048;  // JetStream publishes awaiting a PubAck (the relay reads 2048)

// Wave k: the indexes of the k-th row of each workflow in `rows`, in order.
std::vector<std::vector<std::size_t>> Waves(const std::vector<OutboxRow>& rows) {
  std::vector<std::vector<std::size_t>> waves;
  std::unordered_map<std::string, std::size_t> seen;  // workflow id -> its rows so far
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::size_t k = seen[rows[i].workflow_id()]++;
    if (k == waves.size()) waves.emplace_back();
    waves[k].push_back(i);
  }
  return waves;
}
}  // namespace

NatsOutboxSink::NatsOutboxSink(NatsConnection& conn, Subjects subjects, std::uint32_t partitions,
                               EventFormat events)
    : conn_(conn), subjects_(std::move(subjects)), partitions_(partitions), events_(events) {}

NatsOutboxSink::~NatsOutboxSink() = default;

Status NatsOutboxSink::Publish(const OutboxRow& row) { return Send(Prepare(row)); }

Status NatsOutboxSink::Send(const Outgoing& out) {
  switch (out.via) {
    case Outgoing::Via::kJetStream:
      return JsPublish(conn_, out.subject, out.data, out.headers, out.msg_id);
    case Outgoing::Via::kCore:
      AION_RETURN_IF_ERROR(CorePublish(conn_, out.subject, out.data, out.headers));
      return conn_.Flush();
    case Outgoing::Via::kDropped:
      break;
  }
  return Status::Ok();
}

std::size_t NatsOutboxSink::PublishBatch(const std::vector<OutboxRow>& rows, Status* error) {
  std::vector<Outgoing> out;
  out.reserve(rows.size());
  for (const OutboxRow& row : rows) out.push_back(Prepare(row));
  std::vector<char> accepted(rows.size(), 0);
  std::map<std::size_t, Status> failed;
  Status ready = EnsureAsync();
  if (!ready.ok()) failed.emplace(0, ready);
  for (const auto& wave : Waves(rows)) {
    if (!failed.empty()) break;  // later waves hold later rows of a workflow
    SendWave(out, wave, accepted, failed);
  }
  const auto n =
      static_cast<std::size_t>(std::find(accepted.begin(), accepted.end(), 0) - accepted.begin());
  if (n < rows.size() && error != nullptr) {
    // rows[n] failed itself, or was not sent because an earlier wave failed.
    auto it = failed.find(n);
    *error = it != failed.end() ? it->second : failed.begin()->second;
  }
  return n;
}

Status NatsOutboxSink::EnsureAsync() {
  if (async_ != nullptr) return Status::Ok();
  auto made = JsAsyncPublisher::Create(conn_, kMaxInFlight, conn_.jetstream_timeout());
  if (!made.ok()) return Status(StatusCode::kUnavailable, made.status().message());
  async_ = std::move(*made);
  return Status::Ok();
}

void NatsOutboxSink::SendWave(const std::vector<Outgoing>& out,
                              const std::vector<std::size_t>& wave, std::vector<char>& accepted,
                              std::map<std::size_t, Status>& failed) {
  std::vector<std::size_t> js;
  std::vector<std::size_t> core;
  for (std::size_t i : wave) {
    const Outgoing& o = out[i];
    Status s;
    if (o.via == Outgoing::Via::kJetStream) {
      s = async_->Send(i, o.subject, o.data, o.headers, o.msg_id);
      if (s.ok()) js.push_back(i);
    } else if (o.via == Outgoing::Via::kCore) {
      s = CorePublish(conn_, o.subject, o.data, o.headers);
      if (s.ok()) core.push_back(i);
    } else {
      accepted[i] = 1;
    }
    if (!s.ok()) {
      failed.emplace(i, std::move(s));
      break;  // the rest of the wave waits for the next round
    }
  }
  for (auto& [i, why] : async_->Wait()) failed.emplace(i, std::move(why));
  for (std::size_t i : js) accepted[i] = failed.count(i) == 0;
  if (core.empty()) return;
  Status flushed = conn_.Flush();
  for (std::size_t i : core) {
    if (flushed.ok()) {
      accepted[i] = 1;
    } else {
      failed.emplace(i, flushed);
    }
  }
}

NatsOutboxSink::Outgoing NatsOutboxSink::Prepare(const OutboxRow& row) const {
  switch (row.kind()) {
    case OutboxRow::KIND_LIFECYCLE:
      return PrepareLifecycle(row);
    case OutboxRow::KIND_ACTIVITY_TASK:
      return PrepareTask(row);
    case OutboxRow::KIND_ACTIVITY_CANCEL:
      return PrepareCancel(row);
    case OutboxRow::KIND_WORKFLOW_MESSAGE:
      return PrepareWorkflowMessage(row);
    case OutboxRow::KIND_CLOSE_REPLY:
      return PrepareCloseReply(row);
    default:
      spdlog::error("dropping outbox row '{}' of unknown kind {}", OutboxMsgId(row),
                    static_cast<int>(row.kind()));
      return {};
  }
}

NatsOutboxSink::Outgoing NatsOutboxSink::PrepareLifecycle(const OutboxRow& row) const {
  auto message = LifecycleFromRow(row, subjects_);
  if (!message.ok()) {
    spdlog::error("dropping outbox row that cannot be published: {}", message.status().message());
    return {};
  }
  std::string data = EncodeEvent(message->event, events_);
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
    data = EncodeEvent(message->event, events_);
  }
  return {Outgoing::Via::kJetStream, std::move(message->subject), std::move(data),
          EventHeaders(events_), OutboxMsgId(row)};
}

// Core NATS, like every ingress reply: at least once (a republish after a
// crash answers again). One too large for the server is logged and dropped.
NatsOutboxSink::Outgoing NatsOutboxSink::PrepareCloseReply(const OutboxRow& row) const {
  auto reply = CloseReplyFromRow(row);
  if (!reply.ok()) {
    spdlog::error("dropping close reply '{}': {}", OutboxMsgId(row), reply.status().message());
    return {};
  }
  if (static_cast<std::int64_t>(reply->data.size()) > conn_.max_payload() - kHeaderRoom) {
    spdlog::error("dropping close reply '{}' to {}: {} bytes exceed the server's max_payload",
                  OutboxMsgId(row), reply->subject, reply->data.size());
    return {};
  }
  return {Outgoing::Via::kCore, std::move(reply->subject), std::move(reply->data),
          std::move(reply->headers), ""};
}

// JSON with every field, so an activity worker in any language needs only a
// JSON parser; Nats-Msg-Id makes a republish of the same attempt a duplicate.
NatsOutboxSink::Outgoing NatsOutboxSink::PrepareTask(const OutboxRow& row) const {
  auto task = ActivityTaskFromRow(row, subjects_);
  if (!task.ok()) {
    spdlog::error("dropping activity task that cannot be published: {}", task.status().message());
    return {};
  }
  std::string data = EncodeMessage(task->task, /*json=*/true, /*all_fields=*/true);
  if (static_cast<std::int64_t>(data.size()) > conn_.max_payload() - kHeaderRoom) {
    // A task without its input is useless, and later rows wait behind it:
    // drop it. The attempt ends by its start-to-close timeout, if it has one.
    spdlog::error(
        "dropping activity task {} ({} of workflow {}): {} bytes exceed the server's max_payload "
        "of {}; the attempt can only end by its timeout",
        task->msg_id, task->task.activity_type(), row.workflow_id(), data.size(),
        conn_.max_payload());
    return {};
  }
  return {Outgoing::Via::kJetStream, std::move(task->subject), std::move(data),
          ReplyHeaders(/*json=*/true), std::move(task->msg_id)};
}

// Best effort: a core publish nobody stores. Done once the server has it.
NatsOutboxSink::Outgoing NatsOutboxSink::PrepareCancel(const OutboxRow& row) const {
  auto cancel = ActivityCancelFromRow(row, subjects_);
  if (!cancel.ok()) {
    spdlog::error("dropping activity cancel note that cannot be published: {}",
                  cancel.status().message());
    return {};
  }
  return {Outgoing::Via::kCore, std::move(cancel->subject),
          EncodeMessage(cancel->cancel, /*json=*/true, /*all_fields=*/true),
          ReplyHeaders(/*json=*/true), ""};
}

// A malformed or oversized message can never be delivered, and later rows
// wait behind it: drop it with an error naming the row. Its addressee never
// hears of it (a child never starts, a parent never learns the child's end),
// so the parent waits until its own timeout or cancel.
NatsOutboxSink::Outgoing NatsOutboxSink::PrepareWorkflowMessage(const OutboxRow& row) const {
  auto message = WorkflowMessageFromRow(row);
  if (!message.ok()) {
    spdlog::error("dropping workflow message that cannot be published: {}",
                  message.status().message());
    return {};
  }
  if (static_cast<std::int64_t>(message->data.size()) > conn_.max_payload() - kHeaderRoom) {
    spdlog::error(
        "dropping workflow message: outbox row '{}' ({} for workflow {}) is {} bytes, more than "
        "the server's max_payload of {}",
        OutboxMsgId(row), IngressKindName(message->kind), message->workflow_id,
        message->data.size(), conn_.max_payload());
    return {};
  }
  return {Outgoing::Via::kJetStream,
          subjects_.InboxOf(message->workflow_id, message->kind, partitions_),
          std::move(message->data),
          {},
          std::move(message->msg_id)};
}

}  // namespace aion::bus
