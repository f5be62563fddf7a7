// LmdbStore: the durable Store of one worker data dir, over LMDB (DESIGN §6).
//
// Owns one LMDB environment; at most one LmdbStore per directory per process
// (LMDB forbids opening an environment twice in one process). Reads may be
// called from any thread concurrently; Commit calls are serialized internally.
// Destroy the store only after every call into it has returned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "aion/engine/store.h"

namespace aion {
namespace lmdb_internal {
struct Environment;  // the LMDB environment and its locks, defined in lmdb_store.cc
}  // namespace lmdb_internal

struct LmdbStoreOptions {
  std::filesystem::path directory;  // created (with parents) if missing
  // Starting map size; rounded up to whole OS pages. A store that already holds
  // more data starts with the size of its data file instead.
  std::size_t initial_map_size_bytes = std::size_t{1} << 30;
  // The map doubles on MDB_MAP_FULL up to this size; beyond it Commit fails
  // with kResourceExhausted.
  std::size_t max_map_size_bytes = std::size_t{1} << 40;
  // false sets MDB_NOSYNC: commits are not durable. For benchmarks only.
  bool sync = true;
  // Concurrent read transactions across all processes using the directory.
  unsigned max_readers = 256;
};

class LmdbStore final : public Store {
 public:
  // The layout version written to the `meta` database. Open upgrades a
  // version 1 directory in place (version 2 adds compact rows, README.md) and
  // refuses any other version (kInvalidArgument).
  static constexpr std::uint32_t kSchemaVersion = 2;

  // Errors: kInvalidArgument (bad options, other schema version),
  // kUnavailable (I/O, directory already open in this process), kInternal
  // (corrupted environment).
  static Result<std::unique_ptr<LmdbStore>> Open(const LmdbStoreOptions& options);
  ~LmdbStore() override;
  LmdbStore(const LmdbStore&) = delete;
  LmdbStore& operator=(const LmdbStore&) = delete;

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

  // Current size of the memory map in bytes (grows on demand).
  std::size_t MapSizeBytes() const;
  // Reader slots of dead processes (say, a SIGKILLed worker that was reading)
  // that Open cleared with mdb_reader_check.
  int StaleReadersCleared() const;

 private:
  explicit LmdbStore(std::unique_ptr<lmdb_internal::Environment> env);
  std::unique_ptr<lmdb_internal::Environment> env_;
};

}  // namespace aion
