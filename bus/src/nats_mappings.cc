#include "aion/bus/nats_mappings.h"

#include <sstream>

namespace aion::bus {
namespace {

NatsMapping Mapping(const Subjects& subjects, std::string_view from_area, std::string_view to_area,
                    std::uint32_t partitions) {
  const std::string& p = subjects.prefix();
  return NatsMapping{p + "." + std::string(from_area) + ".*.*",
                     p + "." + std::string(to_area) + ".{{partition(" + std::to_string(partitions) +
                         ",1)}}.{{wildcard(1)}}.{{wildcard(2)}}"};
}

}  // namespace

NatsMapping WorkflowMapping(const Subjects& subjects, std::uint32_t partitions) {
  return Mapping(subjects, "wf", "in", partitions);
}

NatsMapping RequestMapping(const Subjects& subjects, std::uint32_t partitions) {
  return Mapping(subjects, "req", "api", partitions);
}

std::string NatsMappingsBlock(const Subjects& subjects, std::uint32_t partitions) {
  std::ostringstream c;
  c << "mappings = {\n";
  for (const NatsMapping& m :
       {WorkflowMapping(subjects, partitions), RequestMapping(subjects, partitions)}) {
    c << "  \"" << m.from << "\": \"" << m.to << "\"\n";
  }
  c << "}\n";
  return c.str();
}

std::string NatsMappingsConfig(const Subjects& subjects, std::uint32_t partitions) {
  const std::string n = std::to_string(partitions);
  std::ostringstream c;
  c << "# Aion: the nats-server subject mappings for prefix \"" << subjects.prefix() << "\" and "
    << n << " partitions\n"
    << "# (DESIGN §5; printed by `aion nats-config --prefix " << subjects.prefix()
    << " --partitions " << n << "`).\n"
    << "# The partition count must equal the workers' --partition-count.\n"
    << "# Where it goes: in the account the Aion workers and clients use. For the\n"
    << "# global account (no `accounts` block) at the top level of the config;\n"
    << "# otherwise inside that account: accounts { APP { jetstream: enabled, ... } }.\n"
    << "# Paste it there, or save it as a file and put `include \"<file>\"` there\n"
    << "# (relative to the including file). If that place already has a mappings\n"
    << "# block, add the two lines to it instead. JetStream must be enabled.\n"
    << NatsMappingsBlock(subjects, partitions);
  return c.str();
}

}  // namespace aion::bus
