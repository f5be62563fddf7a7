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
//
// JetStream publishes return Ok only after the PubAck, core ones after a
// flush. Borrows the connection, which must
// outlive it; called by the engine's outbox thread (one at a time).
#pragma once

#include "aion/bus/nats_connection.h"
#include "aion/bus/subjects.h"
#include "aion/engine/outbox_sink.h"

namespace aion::bus {

class NatsOutboxSink final : public OutboxSink {
 public:
  NatsOutboxSink(NatsConnection& conn, Subjects subjects);

  // Ok after the PubAck (also for a duplicate). kUnavailable: retry later.
  // A row that can never be published (unknown kind or event, invalid task
  // queue, a task larger than the server's max_payload) is logged and
  // reported Ok, so that it does not block the outbox forever.
  Status Publish(const OutboxRow& row) override;

 private:
  Status PublishLifecycle(const OutboxRow& row);
  Status PublishTask(const OutboxRow& row);
  Status PublishCancel(const OutboxRow& row);

  NatsConnection& conn_;
  Subjects subjects_;
};

}  // namespace aion::bus
