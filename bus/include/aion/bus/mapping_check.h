// CheckNatsMappings: verifies at worker startup that nats-server carries the
// subject mappings of DESIGN §5 with the streams' partition count, so a worker
// whose clients' messages would go nowhere refuses to start and says what to add.
//
// It publishes probes (core NATS, no reply subject) to
// <prefix>.wf.<probe>.<kind> and <prefix>.req.<probe>.<op> and watches, with
// core subscriptions, that each arrives on <prefix>.in.<p>.<probe>.<kind> and
// <prefix>.api.<p>.<probe>.<op> with p = PartitionOf(probe, P). Probe ids and
// the kind/op token carry a random nonce, so concurrent checks of several
// workers never see each other's probes. The probe ids are chosen so that any
// mapping with a partition count in 1..kMaxMappingPartitions other than P puts
// at least one of them in another partition (a wrong count is always found).
//
// Nothing is left behind: the wf probes carry `Nats-Expected-Stream` with a
// name no stream has, so AION_IN (which captures <prefix>.in.>) refuses to
// store them (nats-server 2.9: error 10060, sent to nobody as there is no
// reply subject); the api probes have no reply subject, and API servers
// ignore requests nobody waits for. The connection must be allowed to
// subscribe to <prefix>.in.*.*.* and <prefix>.api.*.*.*.
//
// Thread-safe as far as the connection is; blocks up to `timeout`.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "aion/bus/nats_connection.h"
#include "aion/bus/subjects.h"
#include "aion/engine/status.h"

namespace aion::bus {

// The largest partition count the check tells apart from P (aion-worker's
// --partition-count allows 1..4096).
inline constexpr std::uint32_t kMaxMappingPartitions = 4096;

struct MappingCheckOptions {
  std::uint32_t partitions = 16;  // P of the streams
  // How long to wait for the probes; a missing mapping costs this much.
  std::chrono::milliseconds timeout{2000};
};

// Ok if both mappings are in place with P. kInvalidArgument otherwise, with a
// message naming each mapping that is missing or wrong (a wrong partition
// count has its own wording, with the count the server seems to use) and
// ending in the config fragment to add (NatsMappingsConfig). kUnavailable if
// NATS fails during the check.
Status CheckNatsMappings(NatsConnection& conn, const Subjects& subjects,
                         const MappingCheckOptions& options);

// The probe ids of one check: "mc-<nonce>-<i>" for i = 0, 1, ..., enough of
// them that every partition count in 1..kMaxMappingPartitions other than
// `partitions` sends at least one to another partition than PartitionOf.
std::vector<std::string> MappingProbeIds(std::string_view nonce, std::uint32_t partitions);

}  // namespace aion::bus
