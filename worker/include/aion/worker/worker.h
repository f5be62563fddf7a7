// Worker: the runtime of one aion-worker process (DESIGN §2, §3).
//
// Locks the data dir (<data>/LOCK, flock: one worker per dir), wires an
// LmdbStore at <data>/lmdb, the given workflows and local activities (the
// latter run on the engine's local activity pool), the Engine with the NATS
// outbox sink, the streams, the API server and the ingress of the
// partitions it owns. Owns all of them. Start and Shutdown are called from
// one owning thread; everything else runs on the components' own threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "aion/bus/event_format.h"
#include "aion/engine/activity.h"
#include "aion/engine/engine.h"
#include "aion/engine/registry.h"
#include "aion/engine/status.h"
#include "aion/engine/store.h"

namespace aion::worker {

struct WorkerOptions {
  std::string nats_url = "nats://127.0.0.1:4222";
  std::filesystem::path data_dir;         // required unless `store` is given
  std::vector<std::uint32_t> partitions;  // owned partitions; empty: all
  std::uint32_t partition_count = 16;     // P; must match the streams
  std::string prefix = "aion";            // subject prefix
  Store* store = nullptr;                 // embedding/tests: used instead of LMDB; borrowed
  // What the worker runs; borrowed, must outlive the Worker. Workflows are
  // required (at least one type); activities may be null (none local).
  const WorkflowRegistry* workflows = nullptr;
  const ActivityRegistry* activities = nullptr;
  int executor_threads = 2;
  int activity_threads = 4;  // the bounded pool that runs local activities
  // Idle runs kept in memory (EngineOptions::max_resident_runs); 0 = no limit.
  std::size_t max_resident_runs = 100000;
  // Body of lifecycle events and dead letters (Content-Type says which).
  bus::EventFormat event_format = bus::EventFormat::kProtobuf;
  // At startup, after the streams exist: refuse to start unless nats-server
  // maps <prefix>.wf / <prefix>.req to the partitions (bus/mapping_check.h).
  bool check_nats_mappings = true;
  std::chrono::milliseconds mapping_check_timeout{2000};
};

// "0-3,7" -> {0,1,2,3,7} (sorted, without repeats). kInvalidArgument for bad
// syntax, an empty list, or a partition >= `count`.
Result<std::vector<std::uint32_t>> ParsePartitions(std::string_view spec, std::uint32_t count);

class Worker {
 public:
  // Errors: kInvalidArgument (options, no workflow types, a registration
  // that failed, unusable data dir, streams made with another P, nats-server
  // without the mappings or with another P: the message ends in the config
  // to add), kUnavailable (NATS unreachable, the data dir locked by another
  // worker), or what the store reports.
  static Result<std::unique_ptr<Worker>> Start(WorkerOptions options);
  ~Worker();  // Shutdown()
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Graceful drain: stop fetching and serving, let the engine finish the
  // commit in flight (its callbacks ack), then close NATS. Idempotent.
  void Shutdown();

  const std::vector<std::uint32_t>& partitions() const;
  Engine& engine();

 private:
  struct Impl;
  explicit Worker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace aion::worker
