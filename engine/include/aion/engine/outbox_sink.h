// OutboxSink: where committed effects leave the engine (DESIGN §3 step 6, §4.4).
//
// The engine's outbox relay thread (the only caller; one call at a time)
// reads committed OutboxRows in key order (commit order, so the rows of one
// workflow come in seq order) and hands them to PublishBatch. It deletes a
// row only after the sink reported it accepted; the rest is offered again,
// from the first unaccepted row on, in a later round. A row may thus be
// published more than once (also after a crash or a failed deletion, when a
// repeat of an earlier row may follow later rows of its workflow);
// OutboxMsgId(row) is stable and must be used as the idempotency id
// (Nats-Msg-Id), so receivers drop the repeat.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "aion/engine/status.h"
#include "aion/engine/store.h"

namespace aion {

// The idempotency id of a row's publish: its msg_id, or its key if it has none.
inline const std::string& OutboxMsgId(const OutboxRow& row) {
  return row.msg_id().empty() ? row.key() : row.msg_id();
}

class OutboxSink {
 public:
  virtual ~OutboxSink() = default;

  // Ok once the receiver durably accepted the row; any error means "retry later".
  virtual Status Publish(const OutboxRow& row) = 0;

  // Publishes `rows` (in key order) and returns n: rows[0..n) were durably
  // accepted and will be deleted; rows[n..) are offered again later, rows[n]
  // first. n < rows.size() sets `*error` (if given) to why rows[n] was not
  // accepted; n == rows.size() leaves it untouched. A sink may send rows
  // after rows[n] before it knows rows[n] failed, but never a row of a
  // workflow before that workflow's earlier rows were accepted: per workflow,
  // rows reach the receiver in key order, at least once. A row that can never
  // be published counts as accepted (the sink logs it), so it cannot block
  // the outbox. The default publishes one row at a time with Publish and
  // stops at the first error.
  virtual std::size_t PublishBatch(const std::vector<OutboxRow>& rows, Status* error) {
    for (std::size_t i = 0; i < rows.size(); ++i) {
      Status s = Publish(rows[i]);
      if (!s.ok()) {
        if (error != nullptr) *error = std::move(s);
        return i;
      }
    }
    return rows.size();
  }
};

}  // namespace aion
