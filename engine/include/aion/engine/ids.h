// Workflow ids, run ids and partitions (DESIGN §1).
//
// A workflow id is one NATS subject token: [A-Za-z0-9_:=@+-]{1,128}. The
// partition of an id is fnv1a32(id) % P, the same function nats-server's
// {{partition(P,1)}} mapping computes, so clients and workers agree.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "aion/engine/status.h"

namespace aion {

inline constexpr std::size_t kMaxWorkflowIdLength = 128;

// Ok, or kInvalidArgument naming the offending character or length.
Status ValidateWorkflowId(std::string_view id);
// Names of workflow types, signals and timers: same grammar as ids.
Status ValidateName(std::string_view what, std::string_view name);

std::uint32_t Fnv1a32(std::string_view bytes);
std::uint64_t Fnv1a64(std::string_view bytes);
inline std::uint32_t PartitionOf(std::string_view workflow_id, std::uint32_t partitions) {
  return Fnv1a32(workflow_id) % partitions;
}

// A new random run id (32 lowercase hex characters). Thread-safe.
std::string NewRunId();

}  // namespace aion
