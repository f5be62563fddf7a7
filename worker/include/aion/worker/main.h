// worker::Main: the whole aion-worker process as a library call, for a team's
// own worker binary. Parses the aion-worker flags and environment variables,
// runs --dev, --version and --help, starts a Worker with the given registries,
// and drains on SIGINT/SIGTERM. Call it once, from main(), before any thread.
//
//   int main(int argc, char** argv) {
//     aion::worker::Registries registries;
//     registries.workflows.workflow("greet", &Greet);
//     registries.activities.activity("shout", &Shout);
//     return aion::worker::Main(argc, argv, registries);
//   }
#pragma once

#include "aion/engine/activity.h"
#include "aion/engine/registry.h"

namespace aion::worker {

// What a worker runs: its workflow types and its local activities. Both are
// read-only once Main (or Worker::Start) has them.
struct Registries {
  WorkflowRegistry workflows;
  ActivityRegistry activities;
};

// Returns the process exit code: 0 after a drain (or --help/--version), 1 for
// a startup error (a failed or missing registration, NATS, the data dir),
// 2 for bad flags. Errors print one line to stderr.
int Main(int argc, char** argv, const Registries& registries);

}  // namespace aion::worker
