// ctx.log() is silent while replaying: a rebuilt run does not log again the
// lines of inputs its code already ran on, also when that code issued no
// command (the record's code_ran_through says how far it ran). Embedded
// Engine over a MemoryStore and a ManualClock.
#define BOOST_TEST_MODULE replay_log_test
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <memory>
#include <sstream>
#include <string>

#include "aion/engine/engine.h"
#include "aion/engine/memory_store.h"
#include "support/wait.h"

using namespace aion;
using namespace std::chrono_literals;
using aion::testing::WaitFor;

namespace {

// Logs after its timer fired and after its first signal, then waits for a
// second signal: neither input is followed by a command of the code.
Task<Json> SleepLogWait(Context& ctx, Json) {
  co_await ctx.sleep(1s);
  ctx.log().info("after the timer");
  Json first = co_await ctx.signal<Json>("one");
  ctx.log().info("after signal one");
  Json second = co_await ctx.signal<Json>("two");
  co_return Json{{"one", first}, {"two", second}};
}

// Captures what the default spdlog logger prints while it lives.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured_);
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::size_t Count(const std::string& needle) const {
    const std::string logs = captured_.str();
    std::size_t n = 0;
    for (auto pos = logs.find(needle); pos != std::string::npos; pos = logs.find(needle, pos + 1)) {
      ++n;
    }
    return n;
  }

 private:
  std::ostringstream captured_;
  std::shared_ptr<spdlog::logger> previous_;
};

struct Harness {
  Harness() {
    BOOST_REQUIRE(registry.workflow("sleep_log_wait", &SleepLogWait).ok());
    Open();
  }
  void Open() {
    auto opened = Engine::Open({.store = &memory, .registry = &registry, .clock = &clock});
    BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
    engine = std::move(*opened);
  }
  void Restart() {
    engine->Shutdown();
    engine.reset();
    Open();
  }
  std::uint64_t RanThrough(const std::string& id) {
    auto d = engine->Describe(id);
    return d.ok() ? d->record.code_ran_through() : 0;
  }

  MemoryStore memory;
  ManualClock clock;
  WorkflowRegistry registry;
  std::unique_ptr<Engine> engine;
};

}  // namespace

BOOST_AUTO_TEST_CASE(lines_after_inputs_without_commands_are_not_logged_again) {
  LogCapture logs;
  Harness h;
  BOOST_REQUIRE(h.engine->Start("w", "sleep_log_wait", JsonPayload(nullptr)).status.ok());
  // 1 WorkflowStarted, 2 TimerStarted: the code is parked on the timer.
  BOOST_REQUIRE(WaitFor([&] { return h.RanThrough("w") == 1; }));
  h.clock.Advance(1s);
  // 3 TimerFired: the code logs, then waits for "one" with no command.
  BOOST_REQUIRE(WaitFor([&] { return h.RanThrough("w") == 3; }));
  BOOST_TEST(logs.Count("after the timer") == 1u);
  h.Restart();
  BOOST_REQUIRE(h.engine->Signal("w", "one", JsonPayload(1)).status.ok());
  // 4 SignalReceived: the rebuilt run replays 1..3 silently, logs for 4.
  BOOST_REQUIRE(WaitFor([&] { return h.RanThrough("w") == 4; }));
  BOOST_TEST(logs.Count("after the timer") == 1u);
  BOOST_TEST(logs.Count("after signal one") == 1u);
  h.Restart();
  BOOST_REQUIRE(h.engine->Signal("w", "two", JsonPayload(2)).status.ok());
  auto r = h.engine->AwaitResult("w", 20s);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  BOOST_TEST(r->status == records::WORKFLOW_STATUS_COMPLETED);
  BOOST_TEST(logs.Count("after the timer") == 1u);
  BOOST_TEST(logs.Count("after signal one") == 1u);
}

BOOST_AUTO_TEST_CASE(an_input_recorded_while_down_is_logged_once) {
  LogCapture logs;
  Harness h;
  BOOST_REQUIRE(h.engine->Start("d", "sleep_log_wait", JsonPayload(nullptr)).status.ok());
  BOOST_REQUIRE(WaitFor([&] { return h.RanThrough("d") == 1; }));
  h.engine->Shutdown();
  h.engine.reset();
  h.clock.Advance(1s);  // due while down: fires at open, the code never ran on it
  h.Open();
  BOOST_REQUIRE(WaitFor([&] { return h.RanThrough("d") == 3; }));
  BOOST_TEST(logs.Count("after the timer") == 1u);
}
