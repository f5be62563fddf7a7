// What clients and pipelines in other languages rely on, through a real
// nats-server and real aion-worker processes: ctx.log() stays silent while a
// restarted worker replays, lifecycle events and dead letters in JSON
// (--event-format), and a start answered when its run closes
// (Aion-Reply-When: closed), also across a worker restart.
#define BOOST_TEST_MODULE wire_features
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "worker/worker_harness.h"

namespace aion::testing {
namespace {

using nlohmann::json;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::size_t Occurrences(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

BOOST_AUTO_TEST_CASE(a_restarted_worker_does_not_log_recorded_steps_again) {
  WorkerHarness h;
  const std::string id = "quiet-1";
  const std::string line = "[" + id + "] slept 0 ms, waiting for signal 'go'";
  auto started = h.Aion({"start", "timer_signal", id, "--input", R"({"sleep_ms":0})"});
  BOOST_REQUIRE_EQUAL(started.exit_code, 0);
  // [Started, TimerStarted, TimerFired]: the code logged, then waits for "go"
  // without issuing a command.
  BOOST_REQUIRE(h.AwaitHistoryLength(id, 3));
  BOOST_REQUIRE(WaitFor([&] { return Occurrences(ReadFile(h.worker().log_file()), line) == 1; }));
  BOOST_REQUIRE(h.worker().Terminate().ok());
  BOOST_REQUIRE(h.worker().Restart().ok());  // rebuilds the open run by replay
  auto signaled = h.Aion({"signal", id, "go"});
  BOOST_REQUIRE_EQUAL(signaled.exit_code, 0);
  wire::ResultReply r = h.Result(id);
  BOOST_CHECK_EQUAL(r.status(), "completed");
  BOOST_CHECK_EQUAL(Occurrences(ReadFile(h.worker().log_file()), line), 1u);
}

}  // namespace
}  // namespace aion::testing
