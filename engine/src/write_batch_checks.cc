#include "aion/engine/write_batch_checks.h"

#include <string>

namespace aion {
namespace {

// A history key adds 0x00 and an 8-byte seq to the id; a timer key adds an
// 8-byte time, 0x00 and the timer id.
constexpr std::size_t kHistoryKeyOverhead = 9;
constexpr std::size_t kTimerKeyOverhead = 9;

Status CheckAppend(const AppendOp& op, std::size_t max_key_size) {
  if (!IsStorableWorkflowId(op.workflow_id)) {
    return InvalidArgument("append: workflow id must be non-empty and contain no NUL byte");
  }
  if (op.workflow_id.size() + kHistoryKeyOverhead > max_key_size) {
    return InvalidArgument("append: workflow id of " + std::to_string(op.workflow_id.size()) +
                           " bytes is longer than LMDB keys allow");
  }
  if (op.record.workflow_id() != op.workflow_id) {
    return InvalidArgument("append to '" + op.workflow_id + "': record names workflow '" +
                           op.record.workflow_id() + "'");
  }
  if (!records::WorkflowStatus_IsValid(op.record.status())) {
    return InvalidArgument("append to '" + op.workflow_id + "': unknown workflow status " +
                           std::to_string(op.record.status()));
  }
  for (std::size_t i = 0; i < op.events.size(); ++i) {
    const std::uint64_t want = op.expected_head + 1 + i;
    if (op.events[i].seq() != want) {
      return InvalidArgument("append to '" + op.workflow_id + "': event " + std::to_string(i) +
                             " has seq " + std::to_string(op.events[i].seq()) + ", want " +
                             std::to_string(want));
    }
  }
  const std::uint64_t new_head = op.expected_head + op.events.size();
  if (op.record.head_seq() != new_head) {
    return InvalidArgument("append to '" + op.workflow_id + "': record head_seq " +
                           std::to_string(op.record.head_seq()) + ", want " +
                           std::to_string(new_head));
  }
  return Status::Ok();
}

Status CheckRowKey(std::string_view table, std::string_view key, std::size_t max_key_size) {
  if (key.empty()) return InvalidArgument(std::string(table) + " row with an empty key");
  if (key.size() > max_key_size) {
    return InvalidArgument(std::string(table) + " key of " + std::to_string(key.size()) +
                           " bytes is longer than LMDB keys allow");
  }
  return Status::Ok();
}

Status CheckTimer(const TimerRow& row, std::size_t max_key_size) {
  if (!IsStorableWorkflowId(row.workflow_id()) || row.timer_id().empty()) {
    return InvalidArgument("timer row needs a workflow id without NUL and a timer id");
  }
  if (row.workflow_id().size() + row.timer_id().size() + kTimerKeyOverhead > max_key_size) {
    return InvalidArgument("timer '" + row.timer_id() + "' of '" + row.workflow_id() +
                           "': key longer than LMDB keys allow");
  }
  return Status::Ok();
}

}  // namespace

bool IsStorableWorkflowId(std::string_view id) {
  return !id.empty() && id.find('\0') == std::string_view::npos;
}

Status CheckWriteBatchShape(const WriteBatch& batch, std::size_t max_key_size) {
  for (const AppendOp& op : batch.appends) AION_RETURN_IF_ERROR(CheckAppend(op, max_key_size));
  for (const auto& e : batch.dedupe_puts) {
    AION_RETURN_IF_ERROR(CheckRowKey("dedupe", e.key(), max_key_size));
  }
  for (const auto& k : batch.dedupe_deletes) {
    AION_RETURN_IF_ERROR(CheckRowKey("dedupe", k, max_key_size));
  }
  for (const auto& t : batch.timer_puts) AION_RETURN_IF_ERROR(CheckTimer(t, max_key_size));
  for (const auto& t : batch.timer_deletes) AION_RETURN_IF_ERROR(CheckTimer(t, max_key_size));
  for (const auto& row : batch.outbox_puts) {
    AION_RETURN_IF_ERROR(CheckRowKey("outbox", row.key(), max_key_size));
  }
  for (const auto& k : batch.outbox_deletes) {
    AION_RETURN_IF_ERROR(CheckRowKey("outbox", k, max_key_size));
  }
  return Status::Ok();
}

}  // namespace aion
