// OutboxSink: where committed effects leave the engine (DESIGN §3 step 6, §4.4).
//
// The engine's outbox thread calls Publish for each committed OutboxRow, in key
// order, and deletes the row only after Publish returned Ok. A row may be
// published more than once (after a crash); row.key() is stable and must be
// used as the idempotency id (Nats-Msg-Id). Called from one thread at a time.
#pragma once

#include "aion/engine/status.h"
#include "aion/engine/store.h"

namespace aion {

class OutboxSink {
 public:
  virtual ~OutboxSink() = default;
  // Ok once the receiver durably accepted the row; any error means "retry later".
  virtual Status Publish(const OutboxRow& row) = 0;
};

}  // namespace aion
