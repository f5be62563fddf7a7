// NatsOutboxSink: publishes the engine's committed outbox rows to NATS
// (DESIGN §3 step 6, §4.4), routed by the row's kind:
//
// - KIND_LIFECYCLE: a LifecycleEvent (protobuf binary) on
//   <prefix>.evt.<type>.<id>.<event> with Nats-Msg-Id = row.key(), so a
//   republish after a crash is dropped by the stream's duplicate window.
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
//   row.key(); the addressee's ingress dedupes it by its request id too.
//
// JetStream publishes return Ok only after the PubAck, core ones after a
// flush. Borrows the connection, which must
// outlive it; called by the engine's outbox thread (one at a time).
#pragma once

#include <cstdint>

#include "aion/bus/nats_connection.h"
#include "aion/bus/subjects.h"
#include "aion/engine/outbox_sink.h"

namespace aion::bus {

class NatsOutboxSink final : public OutboxSink {
 public:
  // `partitions` (>= 1): P of the streams (DESIGN §1), to address workflow messages.
  NatsOutboxSink(NatsConnection& conn, Subjects subjects, std::uint32_t partitions);

  // Ok after the PubAck (also for a duplicate). kUnavailable: retry later.
  // A row that can never be published (unknown kind or event, invalid task
  // queue, a malformed workflow message, a task or workflow message larger
  // than the server's max_payload) is logged with its key and reported Ok,
  // so that it does not block the outbox forever.
  Status Publish(const OutboxRow& row) override;

 private:
  Status PublishLifecycle(const OutboxRow& row);
  Status PublishTask(const OutboxRow& row);
  Status PublishCancel(const OutboxRow& row);
  Status PublishWorkflowMessage(const OutboxRow& row);

  NatsConnection& conn_;
  Subjects subjects_;
  std::uint32_t partitions_;
};

}  // namespace aion::bus
