// MemoryStore: a Store held in process memory, for tests and embedded use.
//
// Same contract as every Store (it passes the conformance suite) but nothing
// survives the process. Thread-safe: one mutex guards all state.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "aion/engine/store.h"

namespace aion {

class MemoryStore final : public Store {
 public:
  MemoryStore();
  ~MemoryStore() override;

  Status Commit(const WriteBatch& batch) override;
  Result<WorkflowRecord> GetWorkflow(std::string_view workflow_id) override;
  Result<std::vector<HistoryEvent>> ReadHistory(std::string_view workflow_id,
                                                std::uint64_t from_seq, std::size_t limit) override;
  Result<std::vector<WorkflowRecord>> ListByStatus(WorkflowStatus status,
                                                   std::string_view start_after,
                                                   std::size_t limit) override;
  Result<std::vector<TimerRow>> DueTimers(Timestamp until, std::size_t limit) override;
  Result<DedupeEntry> GetDedupe(std::string_view key) override;
  Result<std::vector<OutboxRow>> ReadOutbox(std::string_view start_after,
                                            std::size_t limit) override;

 private:
  struct State;
  std::mutex mu_;
  std::unique_ptr<State> state_;  // guarded by mu_
};

}  // namespace aion
