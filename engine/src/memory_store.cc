#include "aion/engine/memory_store.h"

#include <algorithm>
#include <optional>
#include <set>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "aion/engine/write_batch_checks.h"

namespace aion {
namespace {

using TimerKey = std::tuple<Timestamp, std::string, std::string>;

TimerKey KeyOf(const TimerRow& row) {
  return {row.fire_at_us(), row.workflow_id(), row.timer_id()};
}

template <typename Map>
auto FirstAfter(Map& map, std::string_view start_after) {
  return start_after.empty() ? map.begin() : map.upper_bound(start_after);
}

}  // namespace

struct MemoryStore::State {
  std::map<std::string, WorkflowRecord, std::less<>> workflows;
  // histories[id][i] has seq i + 1: appends keep every history contiguous.
  std::map<std::string, std::vector<HistoryEvent>, std::less<>> histories;
  std::map<WorkflowStatus, std::set<std::string, std::less<>>> by_status;
  std::map<TimerKey, TimerRow> timers;
  std::map<std::string, DedupeEntry, std::less<>> dedupe;
  std::map<std::string, OutboxRow, std::less<>> outbox;

  std::uint64_t HeadOf(std::string_view id) const {
    auto it = workflows.find(id);
    return it == workflows.end() ? 0 : it->second.head_seq();
  }

  // Every check of the batch, against the stored heads and the heads left by
  // earlier appends of the same batch, before anything is changed.
  Status Validate(const WriteBatch& batch) const {
    AION_RETURN_IF_ERROR(CheckWriteBatchShape(batch));
    std::unordered_map<std::string_view, std::uint64_t> batch_heads;
    for (const AppendOp& op : batch.appends) {
      auto it = batch_heads.find(op.workflow_id);
      const std::uint64_t head = it != batch_heads.end() ? it->second : HeadOf(op.workflow_id);
      if (op.expected_head != head) {
        return Aborted("append to '" + op.workflow_id + "': expected head " +
                       std::to_string(op.expected_head) + ", stored head " + std::to_string(head));
      }
      batch_heads[op.workflow_id] = op.record.head_seq();
    }
    return Status::Ok();
  }

  void Apply(const AppendOp& op) {
    auto& history = histories[op.workflow_id];
    history.insert(history.end(), op.events.begin(), op.events.end());
    auto [it, inserted] = workflows.try_emplace(op.workflow_id);
    if (!inserted && it->second.status() != op.record.status()) {
      by_status[it->second.status()].erase(op.workflow_id);
    }
    by_status[op.record.status()].insert(op.workflow_id);
    it->second = op.record;
  }

  // Puts before deletes, so a row put and deleted in one batch ends absent.
  void Apply(const WriteBatch& batch) {
    for (const AppendOp& op : batch.appends) Apply(op);
    for (const auto& e : batch.dedupe_puts) dedupe[e.key()] = e;
    for (const auto& k : batch.dedupe_deletes) dedupe.erase(k);
    for (const auto& t : batch.timer_puts) timers[KeyOf(t)] = t;
    for (const auto& t : batch.timer_deletes) timers.erase(KeyOf(t));
    for (const auto& row : batch.outbox_puts) outbox[row.key()] = row;
    for (const auto& k : batch.outbox_deletes) outbox.erase(k);
  }
};

MemoryStore::MemoryStore() : state_(std::make_unique<State>()) {}
MemoryStore::~MemoryStore() = default;

Status MemoryStore::Commit(const WriteBatch& batch) {
  std::lock_guard lock(mu_);
  AION_RETURN_IF_ERROR(state_->Validate(batch));
  state_->Apply(batch);
  return Status::Ok();
}

Result<WorkflowRecord> MemoryStore::GetWorkflow(std::string_view workflow_id) {
  std::lock_guard lock(mu_);
  auto it = state_->workflows.find(workflow_id);
  if (it == state_->workflows.end()) {
    return NotFound("no workflow '" + std::string(workflow_id) + "'");
  }
  return it->second;
}

Result<std::vector<HistoryEvent>> MemoryStore::ReadHistory(std::string_view workflow_id,
                                                           std::uint64_t from_seq,
                                                           std::size_t limit) {
  std::lock_guard lock(mu_);
  std::vector<HistoryEvent> out;
  auto it = state_->histories.find(workflow_id);
  if (it == state_->histories.end()) return out;
  const auto& history = it->second;
  const std::size_t first = from_seq == 0 ? 0 : from_seq - 1;
  if (first >= history.size()) return out;
  const std::size_t count = std::min(limit, history.size() - first);
  out.assign(history.begin() + static_cast<std::ptrdiff_t>(first),
             history.begin() + static_cast<std::ptrdiff_t>(first + count));
  return out;
}

Result<std::vector<WorkflowRecord>> MemoryStore::ListByStatus(WorkflowStatus status,
                                                              std::string_view start_after,
                                                              std::size_t limit) {
  if (!records::WorkflowStatus_IsValid(status)) {
    return InvalidArgument("unknown workflow status " + std::to_string(status));
  }
  std::lock_guard lock(mu_);
  std::vector<WorkflowRecord> out;
  auto ids = state_->by_status.find(status);
  if (ids == state_->by_status.end()) return out;
  for (auto it = FirstAfter(ids->second, start_after);
       it != ids->second.end() && out.size() < limit; ++it) {
    out.push_back(state_->workflows.find(*it)->second);
  }
  return out;
}

Result<std::vector<TimerRow>> MemoryStore::DueTimers(Timestamp until, std::size_t limit) {
  std::lock_guard lock(mu_);
  std::vector<TimerRow> out;
  for (auto it = state_->timers.begin();
       it != state_->timers.end() && out.size() < limit && std::get<0>(it->first) <= until; ++it) {
    out.push_back(it->second);
  }
  return out;
}

Result<DedupeEntry> MemoryStore::GetDedupe(std::string_view key) {
  std::lock_guard lock(mu_);
  auto it = state_->dedupe.find(key);
  if (it == state_->dedupe.end()) return NotFound("no dedupe entry '" + std::string(key) + "'");
  return it->second;
}

Result<std::vector<OutboxRow>> MemoryStore::ReadOutbox(std::string_view start_after,
                                                       std::size_t limit) {
  std::lock_guard lock(mu_);
  std::vector<OutboxRow> out;
  for (auto it = FirstAfter(state_->outbox, start_after);
       it != state_->outbox.end() && out.size() < limit; ++it) {
    out.push_back(it->second);
  }
  return out;
}

}  // namespace aion
