// NatsOutboxSink: publishes the engine's committed outbox rows to JetStream
// (DESIGN §3 step 6, §4.4).
//
// A KIND_LIFECYCLE row becomes a LifecycleEvent (protobuf binary) on
// <prefix>.evt.<type>.<id>.<event> with Nats-Msg-Id = row.key(), so a
// republish after a crash is dropped by the stream's duplicate window.
// Publish returns Ok only after the PubAck. Borrows the connection, which must
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
  // A row that can never be published (unknown kind or event) is logged and
  // reported Ok, so that it does not block the outbox forever.
  Status Publish(const OutboxRow& row) override;

 private:
  NatsConnection& conn_;
  Subjects subjects_;
};

}  // namespace aion::bus
