// FaultInjectionStore: a Store decorator for tests, in the manner of
// LevelDB's EnvWrapper. Forwards everything to a wrapped Store it does not
// own, except that Commit and ReadHistory can be made to fail with a chosen
// status, and it counts commits. Thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>

#include "aion/engine/store.h"

namespace aion::testing {

class FaultInjectionStore final : public Store {
 public:
  explicit FaultInjectionStore(Store* target) : target_(target) {}

  // Every Commit fails with `status` until Heal() (Ok heals).
  void FailCommits(Status status) {
    std::lock_guard<std::mutex> g(mu_);
    failure_ = std::move(status);
  }
  void Heal() { FailCommits(Status::Ok()); }
  // Commits of batches that `refuse` matches fail with `status` (others pass).
  void RefuseBatchesWhere(std::function<bool(const WriteBatch&)> refuse, Status status) {
    std::lock_guard<std::mutex> g(mu_);
    refuse_ = std::move(refuse);
    refusal_ = std::move(status);
  }
  // Every ReadHistory fails with `status` until HealReads() (Ok heals).
  void FailReads(Status status) {
    std::lock_guard<std::mutex> g(mu_);
    read_failure_ = std::move(status);
  }
  void HealReads() { FailReads(Status::Ok()); }
  int commits() const { return commits_.load(); }
  int workflow_reads() const { return workflow_reads_.load(); }  // GetWorkflow calls
  int failed_commits() const { return failed_commits_.load(); }

  Status Commit(const WriteBatch& batch) override {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (!failure_.ok()) {
        ++failed_commits_;
        return failure_;
      }
      if (refuse_ && refuse_(batch)) {
        ++failed_commits_;
        return refusal_;
      }
    }
    Status s = target_->Commit(batch);
    if (s.ok()) ++commits_;
    return s;
  }
  Result<WorkflowRecord> GetWorkflow(std::string_view id) override {
    ++workflow_reads_;
    return target_->GetWorkflow(id);
  }
  Result<std::vector<HistoryEvent>> ReadHistory(std::string_view id, std::uint64_t from,
                                                std::size_t limit) override {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (!read_failure_.ok()) return read_failure_;
    }
    return target_->ReadHistory(id, from, limit);
  }
  Result<std::vector<WorkflowRecord>> ListByStatus(WorkflowStatus status,
                                                   std::string_view start_after,
                                                   std::size_t limit) override {
    return target_->ListByStatus(status, start_after, limit);
  }
  Result<std::vector<TimerRow>> DueTimers(Timestamp until, std::size_t limit) override {
    return target_->DueTimers(until, limit);
  }
  Result<DedupeEntry> GetDedupe(std::string_view key) override { return target_->GetDedupe(key); }
  Result<std::vector<OutboxRow>> ReadOutbox(std::string_view start_after,
                                            std::size_t limit) override {
    return target_->ReadOutbox(start_after, limit);
  }

 private:
  Store* target_;
  std::mutex mu_;
  Status failure_;                                 // guarded by mu_
  Status read_failure_;                            // guarded by mu_
  std::function<bool(const WriteBatch&)> refuse_;  // guarded by mu_
  Status refusal_;                                 // guarded by mu_
  std::atomic<int> commits_{0};
  std::atomic<int> failed_commits_{0};
  std::atomic<int> workflow_reads_{0};
};

}  // namespace aion::testing
