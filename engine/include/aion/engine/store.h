// Store: the durable state of the workflows a worker owns (DESIGN §6).
//
// A narrow interface with two implementations that pass one conformance suite:
// MemoryStore (engine, tests and embedded use) and LmdbStore (lmdb_store).
// Commit applies a whole WriteBatch atomically or not at all. Reads may be
// called from any thread at any time; Commit is called by one thread at a time
// (the engine's writer). A read sees either all of a commit or none of it.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "aion/engine/clock.h"
#include "aion/engine/status.h"
#include "aion/history.pb.h"
#include "aion/records.pb.h"

namespace aion {

using history::ActivityFailure;
using history::HistoryEvent;
using records::DedupeEntry;
using records::OutboxRow;
using records::TimerRow;
using records::WorkflowRecord;
using records::WorkflowStatus;

// Appends events to one workflow id's history and replaces its record.
struct AppendOp {
  std::string workflow_id;
  std::uint64_t expected_head = 0;   // the head seq this append was computed from
  std::vector<HistoryEvent> events;  // seqs expected_head+1, +2, ... (may be empty)
  WorkflowRecord record;             // the record after the append; head_seq matches
};

// Everything one group commit writes. Appends to the same id are applied in
// order, each checked against the head the previous one left. Appends are
// applied first, then puts, then deletes (a row put and deleted in one batch
// ends up absent); deleting a row that does not exist is not an error.
struct WriteBatch {
  std::vector<AppendOp> appends;
  std::vector<DedupeEntry> dedupe_puts;
  std::vector<std::string> dedupe_deletes;
  std::vector<TimerRow> timer_puts;
  std::vector<TimerRow> timer_deletes;  // matched on (fire_at_us, workflow_id, timer_id)
  std::vector<OutboxRow> outbox_puts;
  std::vector<std::string> outbox_deletes;  // by key

  bool empty() const {
    return appends.empty() && dedupe_puts.empty() && dedupe_deletes.empty() && timer_puts.empty() &&
           timer_deletes.empty() && outbox_puts.empty() && outbox_deletes.empty();
  }
};

class Store {
 public:
  virtual ~Store() = default;

  // Atomic and, for durable stores, synced before it returns. Errors:
  // kAborted (an expected_head does not match; nothing written),
  // kInvalidArgument (event seqs not contiguous or record head mismatched),
  // kResourceExhausted (no space even after growing), kUnavailable (I/O).
  virtual Status Commit(const WriteBatch& batch) = 0;

  // kNotFound if the id has no record.
  virtual Result<WorkflowRecord> GetWorkflow(std::string_view workflow_id) = 0;
  // Events with seq >= from_seq in seq order, at most `limit`. Empty if none.
  virtual Result<std::vector<HistoryEvent>> ReadHistory(
      std::string_view workflow_id, std::uint64_t from_seq = 1,
      std::size_t limit = std::numeric_limits<std::size_t>::max()) = 0;
  // Records with `status`, ordered by workflow id, ids > start_after, at most
  // `limit`. Served from an index: never scans histories.
  virtual Result<std::vector<WorkflowRecord>> ListByStatus(WorkflowStatus status,
                                                           std::string_view start_after,
                                                           std::size_t limit) = 0;
  // Timer rows with fire_at_us <= until, earliest first, at most `limit`.
  virtual Result<std::vector<TimerRow>> DueTimers(Timestamp until, std::size_t limit) = 0;
  // kNotFound if the key was never recorded (or was deleted).
  virtual Result<DedupeEntry> GetDedupe(std::string_view key) = 0;
  // Outbox rows with key > start_after in key order, at most `limit`.
  virtual Result<std::vector<OutboxRow>> ReadOutbox(std::string_view start_after,
                                                    std::size_t limit) = 0;
};

}  // namespace aion
