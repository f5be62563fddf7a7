// aion-worker: the Aion server process with the reference workflows
// (DESIGN §5 command lines, §7). Everything but the registrations is
// aion::worker::Main, the same call a team's own worker makes.
//
//   aion-worker --nats <url> --data <dir> [--partitions 0-15]
//   aion-worker --dev        starts its own nats-server under <data>/nats
#include "aion/examples/reference_workflows.h"
#include "aion/worker/main.h"

int main(int argc, char** argv) {
  aion::worker::Registries registries;
  // A failed registration is kept by the registry and reported by Main.
  (void)aion::examples::RegisterReferenceWorkflows(registries.workflows);
  (void)aion::examples::RegisterReferenceActivities(registries.activities);
  return aion::worker::Main(argc, argv, registries);
}
