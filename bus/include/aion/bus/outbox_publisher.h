// NatsOutboxSink: publishes the engine's committed outbox rows to NATS
// (DESIGN §3 step 6, §4.4), routed by the row's kind:
//
// - KIND_LIFECYCLE: a LifecycleEvent (protobuf binary) on
//   <prefix>.evt.<type>.<id>.<event> with Nats-Msg-Id = OutboxMsgId(row), so
//   a republish after a crash is dropped by the stream's duplicate window.
// - KIND_ACTIVITY_TASK: a wire.ActivityTask in the protobuf JSON mapping
//   (Content-Type: application/json) on <prefix>.task.<queue> (AION_TASKS)
//   with Nats-Msg-Id = <id>:<run>:<activity>:<attempt>.
// - KIND_ACTIVITY_CANCEL: a wire.ActivityCancel in JSON, core NATS (best
//   effort, not stored) on <prefix>.task.<queue>.cancel.
// - KIND_WORKFLOW_MESSAGE: a child's start, cancel or terminate from its
//   parent, or a child's result to its parent (WorkflowMessageFromRow),
//   protobuf binary, straight to the addressee's partition
//   <prefix>.in.<p>.<id>.<kind> (p = PartitionOf(id, partitions), so it
//   does not depend on the server's aion.wf mapping) with Nats-Msg-Id =
//   OutboxMsgId(row); the addressee's ingress dedupes it by its request id too.
//
// JetStream publishes count only after the PubAck, core ones after a flush.
// PublishBatch sends the JetStream rows of a batch without waiting for each
// PubAck (at most 2048 in flight), in waves: wave k holds the k-th row of
// each workflow in the batch, so a workflow's row is sent only after its
// earlier rows were acked. Cancel notes go in their wave, flushed at its end.
// Borrows the connection, which must outlive it; called by the engine's
// outbox thread (one call at a time).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "aion/bus/codec.h"
#include "aion/bus/event_format.h"
#include "aion/bus/nats_connection.h"
#include "aion/bus/subjects.h"
#include "aion/engine/outbox_sink.h"

namespace aion::bus {

class JsAsyncPublisher;

class NatsOutboxSink final : public OutboxSink {
 public:
  // `partitions` (>= 1): P of the streams (DESIGN §1), to address workflow messages.
  // `events`: the body of lifecycle events (Content-Type says which).
  NatsOutboxSink(NatsConnection& conn, Subjects subjects, std::uint32_t partitions,
                 EventFormat events = EventFormat::kProtobuf);
  ~NatsOutboxSink() override;

  // Ok after the PubAck (also for a duplicate). kUnavailable: retry later.
  // A row that can never be published (unknown kind or event, invalid task
  // queue, a malformed workflow message, a task or workflow message larger
  // than the server's max_payload) is logged with its key and reported Ok,
  // so that it does not block the outbox forever.
  Status Publish(const OutboxRow& row) override;

  // OutboxSink's contract. Each row goes out exactly as Publish sends it
  // (subject, headers, Nats-Msg-Id, oversize handling); a failure of a row
  // is kUnavailable, and rows sent after it in the same wave may already be
  // stored (their republish is a duplicate).
  std::size_t PublishBatch(const std::vector<OutboxRow>& rows, Status* error) override;

 private:
  // What a row becomes on the wire; kDropped: it can never be published
  // (already logged) and counts as done.
  struct Outgoing {
    enum class Via { kDropped, kJetStream, kCore } via = Via::kDropped;
    std::string subject;
    std::string data;
    Headers headers;
    std::string msg_id;  // Nats-Msg-Id (JetStream only)
  };
  Outgoing Prepare(const OutboxRow& row) const;
  Outgoing PrepareLifecycle(const OutboxRow& row) const;
  Outgoing PrepareTask(const OutboxRow& row) const;
  Outgoing PrepareCancel(const OutboxRow& row) const;
  Outgoing PrepareWorkflowMessage(const OutboxRow& row) const;
  Outgoing PrepareCloseReply(const OutboxRow& row) const;
  Status Send(const Outgoing& out);  // one row, waiting for its PubAck or flush

  // Sends the rows `wave` names; marks those accepted; the rest go to `failed`.
  void SendWave(const std::vector<Outgoing>& out, const std::vector<std::size_t>& wave,
                std::vector<char>& accepted, std::map<std::size_t, Status>& failed);
  Status EnsureAsync();

  NatsConnection& conn_;
  Subjects subjects_;
  std::uint32_t partitions_;
  EventFormat events_;
  std::unique_ptr<JsAsyncPublisher> async_;  // created by the first PublishBatch
};

}  // namespace aion::bus
