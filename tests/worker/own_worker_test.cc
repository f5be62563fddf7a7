// A team's own worker built on aion::worker::Main (tests/worker/own_worker.cc):
// the aion-worker flags work unchanged, its own workflow and local activity
// run over a real nats-server, the reference workflows are not in it, and a
// duplicate or missing registration is a clear startup error.
#define BOOST_TEST_MODULE own_worker
#include <stdlib.h>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "aion/engine/version.h"
#include "worker_harness.h"

namespace aion::testing {
namespace {

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

ProcessResult OwnWorker(const std::string& registration, std::vector<std::string> args) {
  setenv("OWN_WORKER_REGISTRATION", registration.c_str(), 1);
  args.insert(args.begin(), BinaryPath("own-worker").string());
  return RunProcess(args, 30s);
}

BOOST_AUTO_TEST_CASE(version_and_help_come_from_main) {
  auto version = OwnWorker("", {"--version"});
  BOOST_TEST(version.exit_code == 0);
  BOOST_TEST(version.out == "own-worker (Aion " + std::string(Version()) + ")\n");
  auto help = OwnWorker("", {"--help"});
  BOOST_TEST(help.exit_code == 0);
  for (const char* flag : {"--nats", "--data", "--partitions", "--dev", "--max-resident-runs"}) {
    BOOST_TEST(Contains(help.out, flag), flag);
  }
  BOOST_TEST(OwnWorker("", {"--no-such-flag"}).exit_code == 2);
}

BOOST_AUTO_TEST_CASE(a_duplicate_registration_is_a_startup_error) {
  TempDir dir("own-worker");
  auto r = OwnWorker("duplicate", {"--nats", "nats://127.0.0.1:1", "--data", dir.path().string()});
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.err ==
             "own-worker: workflow registration failed: workflow type 'greet' version '1' is "
             "already registered\n");
}

BOOST_AUTO_TEST_CASE(a_worker_without_workflow_types_refuses_to_start) {
  TempDir dir("own-worker");
  auto r = OwnWorker("none", {"--nats", "nats://127.0.0.1:1", "--data", dir.path().string()});
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(Contains(r.err, "own-worker: no workflow types registered"), r.err);
}

BOOST_AUTO_TEST_CASE(its_own_workflow_runs_over_nats_and_nothing_else) {
  setenv("OWN_WORKER_REGISTRATION", "", 1);
  WorkerHarness h({}, BinaryPath("own-worker"));
  auto started =
      h.Aion({"--json", "start", "greet", "greet-1", "--input", R"({"name":"ana"})", "--wait"});
  BOOST_REQUIRE_EQUAL(started.exit_code, 0);
  BOOST_TEST(Contains(started.out, R"("greeting":"hello ANA")"), started.out);

  // aion-worker's reference workflows are not part of the worker library.
  auto noop = h.Aion({"start", "noop", "noop-1"});
  BOOST_TEST(noop.exit_code == 1);
  BOOST_TEST(Contains(noop.err, "unknown_workflow_type"), noop.err);
}

}  // namespace
}  // namespace aion::testing
