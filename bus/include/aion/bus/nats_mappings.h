// The nats-server subject mappings of the wire contract (DESIGN §5), as config
// text. The one generator of that text: the dev-mode server config
// (NatsServerProcess), `aion nats-config` and the startup check's messages
// (mapping_check.h) all use it.
//
// <prefix>.wf.<id>.<kind> -> <prefix>.in.<p>.<id>.<kind> and
// <prefix>.req.<id>.<op> -> <prefix>.api.<p>.<id>.<op>, where
// p = {{partition(P,1)}}: FNV-1a of <id> modulo P, the same as aion::PartitionOf.
// Pure functions of their arguments; `partitions` must be >= 1.
#pragma once

#include <cstdint>
#include <string>

#include "aion/bus/subjects.h"

namespace aion::bus {

// One mapping: `from` is the source subject pattern, `to` its destination.
struct NatsMapping {
  std::string from;  // e.g. aion.wf.*.*
  std::string to;    // e.g. aion.in.{{partition(16,1)}}.{{wildcard(1)}}.{{wildcard(2)}}
};

NatsMapping WorkflowMapping(const Subjects& subjects, std::uint32_t partitions);
NatsMapping RequestMapping(const Subjects& subjects, std::uint32_t partitions);

// The block itself, ending in a newline:
//   mappings = {
//     "aion.wf.*.*": "aion.in.{{partition(16,1)}}.{{wildcard(1)}}.{{wildcard(2)}}"
//     "aion.req.*.*": "aion.api.{{partition(16,1)}}.{{wildcard(1)}}.{{wildcard(2)}}"
//   }
std::string NatsMappingsBlock(const Subjects& subjects, std::uint32_t partitions);

// The block after comment lines saying what it is and where it goes (top level
// for the global account, else inside the account; or `include` its file
// there): a ready-to-include nats-server config fragment. What
// `aion nats-config` prints.
std::string NatsMappingsConfig(const Subjects& subjects, std::uint32_t partitions);

}  // namespace aion::bus
