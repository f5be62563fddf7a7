#include "aion/bus/mapping_check.h"

#include <algorithm>
#include <map>
#include <memory>

#include "aion/bus/nats_mappings.h"
#include "aion/engine/ids.h"
#include "nats_util.h"

namespace aion::bus {
namespace {

using Clock = std::chrono::steady_clock;

// A stream name no stream has: JetStream refuses to store what carries it.
constexpr const char* kNoStream = "AION_MAPPING_CHECK_NOT_A_STREAM";

struct SubDeleter {
  void operator()(natsSubscription* s) const { natsSubscription_Destroy(s); }
};
using SubPtr = std::unique_ptr<natsSubscription, SubDeleter>;

// One mapping under test: probes go to <prefix>.<from>.<id>.<token> and must
// arrive on <prefix>.<to>.<PartitionOf(id, P)>.<id>.<token>.
struct Leg {
  std::string from;  // "wf" or "req"
  std::string to;    // "in" or "api"
  NatsMapping mapping;
  SubPtr sub;
  std::map<std::string, std::uint32_t> arrived;  // probe id -> partition it arrived in
};

struct Check {
  const Subjects& subjects;
  const MappingCheckOptions& options;
  std::string token;  // the kind/op token, unique to this check
  std::vector<std::string> ids;
};

std::string Area(const Check& c, const std::string& area) {
  return c.subjects.prefix() + "." + area + ".";
}

Status Subscribe(NatsConnection& conn, const Check& c, Leg& leg) {
  const std::string subject = Area(c, leg.to) + "*.*." + c.token;
  natsSubscription* raw = nullptr;
  natsStatus s = natsConnection_SubscribeSync(&raw, conn.nc(), subject.c_str());
  if (s != NATS_OK) return NatsStatus(s, "mapping check: cannot subscribe to " + subject);
  leg.sub.reset(raw);
  return Status::Ok();
}

Status PublishProbes(NatsConnection& conn, const Check& c, const Leg& leg) {
  const Headers headers = {{"Nats-Expected-Stream", kNoStream}};
  for (const std::string& id : c.ids) {
    AION_RETURN_IF_ERROR(CorePublish(conn, Area(c, leg.from) + id + "." + c.token, "", headers));
  }
  return Status::Ok();
}

// Records an arrival "<prefix>.<to>.<p>.<id>.<token>" of one of our probes.
void Record(const Check& c, Leg& leg, std::string_view subject) {
  const std::string head = Area(c, leg.to);
  if (subject.substr(0, head.size()) != head) return;
  subject.remove_prefix(head.size());
  const auto dot = subject.find('.');
  if (dot == std::string_view::npos) return;
  const std::string p(subject.substr(0, dot));
  std::string_view rest = subject.substr(dot + 1);
  const std::string tail = "." + c.token;
  if (rest.size() <= tail.size() || rest.substr(rest.size() - tail.size()) != tail) return;
  const std::string id(rest.substr(0, rest.size() - tail.size()));
  if (p.empty() || p.find_first_not_of("0123456789") != std::string::npos || p.size() > 9) return;
  leg.arrived[id] = static_cast<std::uint32_t>(std::stoul(p));
}

bool Complete(const Check& c, const Leg& leg) { return leg.arrived.size() >= c.ids.size(); }

// Receives arrivals on both legs until each has all probes or `deadline`.
void Collect(const Check& c, std::vector<Leg>& legs, Clock::time_point deadline) {
  for (Leg& leg : legs) {
    while (!Complete(c, leg)) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      natsMsg* msg = nullptr;
      if (natsSubscription_NextMsg(&msg, leg.sub.get(), std::max<std::int64_t>(left.count(), 1)) !=
          NATS_OK) {
        break;
      }
      MsgPtr owned(msg);
      Record(c, leg, natsMsg_GetSubject(msg));
    }
  }
}

// " (they fit {{partition(N,1)}})" if exactly one N in 1..kMaxMappingPartitions fits.
std::string FittingCount(const Leg& leg) {
  std::vector<std::uint32_t> fits;
  for (std::uint32_t n = 1; n <= kMaxMappingPartitions && fits.size() < 2; ++n) {
    bool all = true;
    for (const auto& [id, p] : leg.arrived) all = all && Fnv1a32(id) % n == p;
    if (all) fits.push_back(n);
  }
  if (fits.size() != 1) return "";
  return "; the arrivals fit {{partition(" + std::to_string(fits[0]) + ",1)}}";
}

// What is wrong with one leg ("" if nothing); sets *wrong_count for a bad P.
std::string Diagnose(const Check& c, const Leg& leg, bool* wrong_count) {
  const std::uint32_t n = c.options.partitions;
  const std::string from = c.subjects.prefix() + "." + leg.from + ".*";
  const std::string to = c.subjects.prefix() + "." + leg.to + ".<p>.*";
  for (const auto& [id, p] : leg.arrived) {
    if (p == PartitionOf(id, n)) continue;
    *wrong_count = true;
    return "maps " + from + " to " + to + " with another partition count than the streams' " +
           std::to_string(n) + " (probe " + id + " arrived in partition " + std::to_string(p) +
           ", expected " + std::to_string(PartitionOf(id, n)) + FittingCount(leg) +
           "): its mapping must be \"" + leg.mapping.from + "\": \"" + leg.mapping.to + "\"";
  }
  if (Complete(c, leg)) return "";
  const std::string probe = c.ids[0] + "." + c.token;
  const std::string ms = std::to_string(c.options.timeout.count());
  if (leg.arrived.empty()) {
    return "does not map " + from + " to " + to + " (a probe published to " + Area(c, leg.from) +
           probe + " did not arrive on " + Area(c, leg.to) + "*." + probe + " within " + ms +
           " ms)";
  }
  return "maps only some of " + from + " to " + to + " (" + std::to_string(leg.arrived.size()) +
         " of " + std::to_string(c.ids.size()) + " probes arrived within " + ms + " ms)";
}

Status Verdict(const Check& c, const std::vector<Leg>& legs) {
  std::vector<std::string> problems;
  bool wrong_count = false;
  for (const Leg& leg : legs) {
    std::string problem = Diagnose(c, leg, &wrong_count);
    if (!problem.empty()) problems.push_back(std::move(problem));
  }
  if (problems.empty()) return Status::Ok();
  std::string text = "nats-server " + problems[0];
  for (std::size_t i = 1; i < problems.size(); ++i) text += "; and it " + problems[i];
  text += wrong_count ? ". Replace its " + c.subjects.prefix() + ".wf and " + c.subjects.prefix() +
                            ".req mappings with this"
                      : ". Add this to its config";
  text += " (`aion nats-config --prefix " + c.subjects.prefix() + " --partitions " +
          std::to_string(c.options.partitions) + "` prints it), then reload or restart it:\n\n" +
          NatsMappingsConfig(c.subjects, c.options.partitions);
  return InvalidArgument(text);
}

}  // namespace

std::vector<std::string> MappingProbeIds(std::string_view nonce, std::uint32_t partitions) {
  std::vector<std::string> ids;
  std::vector<std::uint32_t> hashes;
  std::uint32_t next = 0;
  auto name = [&](std::uint32_t i) { return "mc-" + std::string(nonce) + "-" + std::to_string(i); };
  for (; next < 4; ++next) {
    ids.push_back(name(next));
    hashes.push_back(Fnv1a32(ids.back()));
  }
  for (std::uint32_t n = 1; n <= kMaxMappingPartitions; ++n) {
    auto tells = [&](std::uint32_t h) { return h % n != h % partitions; };
    if (n == partitions || std::any_of(hashes.begin(), hashes.end(), tells)) continue;
    // Each candidate tells n apart with probability about 1 - 1/max(n, P).
    for (std::uint32_t tries = 0; tries < 100000; ++tries) {
      std::string id = name(next++);
      const std::uint32_t h = Fnv1a32(id);
      if (!tells(h)) continue;
      ids.push_back(std::move(id));
      hashes.push_back(h);
      break;
    }
  }
  return ids;
}

Status CheckNatsMappings(NatsConnection& conn, const Subjects& subjects,
                         const MappingCheckOptions& options) {
  if (options.partitions == 0) return InvalidArgument("the partition count must be at least 1");
  const std::string nonce = NewRunId().substr(0, 12);
  const Check c{subjects, options, "mapping_check_" + nonce,
                MappingProbeIds(nonce, options.partitions)};
  std::vector<Leg> legs;
  legs.push_back(Leg{"wf", "in", WorkflowMapping(subjects, options.partitions), nullptr, {}});
  legs.push_back(Leg{"req", "api", RequestMapping(subjects, options.partitions), nullptr, {}});
  for (Leg& leg : legs) AION_RETURN_IF_ERROR(Subscribe(conn, c, leg));
  AION_RETURN_IF_ERROR(conn.Flush());  // the subscriptions are in place before any probe
  const auto deadline = Clock::now() + options.timeout;
  for (const Leg& leg : legs) AION_RETURN_IF_ERROR(PublishProbes(conn, c, leg));
  AION_RETURN_IF_ERROR(conn.Flush());
  Collect(c, legs, deadline);
  return Verdict(c, legs);
}

}  // namespace aion::bus
