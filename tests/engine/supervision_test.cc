// Supervision: a store read error while a run executes restarts the run from
// replay after a backoff (on the injected clock); past the intensity limit
// the run stays parked with the error visible.
#define BOOST_TEST_MODULE supervision_test
#include <boost/test/unit_test.hpp>
#include <chrono>

#include "aion/engine/engine.h"
#include "aion/engine/history.h"
#include "aion/engine/memory_store.h"
#include "support/fault_injection_store.h"
#include "support/wait.h"

using namespace aion;
using namespace std::chrono_literals;
using aion::testing::FaultInjectionStore;
using aion::testing::WaitFor;

namespace {

Task<Json> WaitGo(Context& ctx, Json) { co_return co_await ctx.signal<Json>("go"); }

struct Fixture {
  Fixture() : faulty(&store) {
    BOOST_REQUIRE(registry.workflow("wait_go", &WaitGo).ok());
    EngineOptions options{.store = &faulty, .registry = &registry, .clock = &clock};
    options.supervision = {
        .initial_backoff = 100ms, .max_backoff = 400ms, .max_restarts = 3, .window = 60s};
    auto e = Engine::Open(options);
    BOOST_REQUIRE(e.ok());
    engine = std::move(*e);
  }
  std::string Parked(const std::string& id) { return engine->Describe(id)->parked_error; }

  MemoryStore store;
  FaultInjectionStore faulty;
  ManualClock clock;
  WorkflowRegistry registry;
  std::unique_ptr<Engine> engine;
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_read_fault_restarts_the_run_after_a_backoff, Fixture) {
  BOOST_REQUIRE(engine->Start("s-1", "wait_go", JsonPayload(nullptr)).status.ok());
  BOOST_REQUIRE(WaitFor([&] { return engine->Describe("s-1")->resident; }));
  faulty.FailReads(Unavailable("disk hiccup"));
  BOOST_REQUIRE(engine->Signal("s-1", "go", JsonPayload("x")).status.ok());
  BOOST_REQUIRE(
      WaitFor([&] { return Parked("s-1").find("restarting in 100 ms") != std::string::npos; }));
  BOOST_TEST(Parked("s-1").find("disk hiccup") != std::string::npos);
  faulty.HealReads();
  clock.Advance(150ms);  // the backoff passes: rebuilt from replay, signal applied
  auto done = engine->AwaitResult("s-1", 10s);
  BOOST_REQUIRE(done.ok());
  BOOST_TEST(WorkflowStatusName(done->status) == "completed");
  BOOST_TEST(Parked("s-1") == "");
}

BOOST_FIXTURE_TEST_CASE(past_the_intensity_limit_the_run_stays_parked, Fixture) {
  BOOST_REQUIRE(engine->Start("s-2", "wait_go", JsonPayload(nullptr)).status.ok());
  BOOST_REQUIRE(WaitFor([&] { return engine->Describe("s-2")->resident; }));
  faulty.FailReads(Unavailable("disk gone"));
  BOOST_REQUIRE(engine->Signal("s-2", "go", JsonPayload("x")).status.ok());
  // Backoffs 100, 200, 400 ms; the fourth fault exceeds max_restarts = 3.
  for (const std::string expect : {"restart 1 of 3", "restart 2 of 3", "restart 3 of 3"}) {
    BOOST_REQUIRE(WaitFor([&] { return Parked("s-2").find(expect) != std::string::npos; }));
    clock.Advance(500ms);
  }
  BOOST_REQUIRE(
      WaitFor([&] { return Parked("s-2").find("gave up after 3 restarts") != std::string::npos; }));
  faulty.HealReads();
  clock.Advance(10s);
  BOOST_TEST(Parked("s-2").find("gave up") != std::string::npos);  // only a restart revives it
  BOOST_TEST(engine->Describe("s-2")->record.status() == records::WORKFLOW_STATUS_RUNNING);
}
