// The flags and environment variables of aion-worker (DESIGN §5 command
// lines), shared by every program built on worker::Main. Internal to the
// worker library.
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <cstdint>
#include <string>

#include "aion/engine/status.h"
#include "aion/worker/worker.h"

namespace aion::worker {

struct Flags {
  std::string nats_url = "nats://127.0.0.1:4222";
  std::string data_dir;
  std::string partitions;
  std::uint32_t partition_count = 16;
  std::string prefix = "aion";
  std::string log_level = "info";
  bool dev = false;
  int dev_port = -1;
  int executor_threads = 2;
  int activity_threads = 4;
  std::size_t max_resident_runs = 100000;
  std::string event_format = "protobuf";
  bool skip_mapping_check = false;
};

// Declares every flag on `app`, writing into `flags` when it parses.
void AddFlags(CLI::App& app, Flags& flags);

// The Worker's options for these flags (registries not set); kInvalidArgument
// for a bad --partitions or --event-format.
Result<WorkerOptions> ToOptions(const Flags& flags);

}  // namespace aion::worker
