// Queries answered by the live run (rebuilt by replay when not resident),
// never recorded; on an embedded Engine over a MemoryStore.
#define BOOST_TEST_MODULE query_test
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <thread>

#include "aion/engine/engine.h"
#include "aion/engine/history.h"
#include "aion/engine/memory_store.h"
#include "support/wait.h"

using namespace aion;
using namespace std::chrono_literals;
using aion::testing::WaitFor;

namespace {

// Counts "tick" signals until "stop"; query "count" reports them, query
// "slow" holds the executor for 300 ms.
Task<Json> Counter(Context& ctx, Json) {
  int count = 0;
  ctx.on_query("count", [&count](const Json& args) {
    return Json{{"count", count}, {"asked_with", args}};
  });
  ctx.on_query("slow", [](const Json&) {
    std::this_thread::sleep_for(300ms);
    return Json("late");
  });
  while (true) {
    Json s = co_await ctx.signal<Json>("tick");
    if (s == "stop") co_return count;
    ++count;
  }
}

struct Fixture {
  Fixture() {
    BOOST_REQUIRE(registry.workflow("counter", &Counter).ok());
    Reopen();
  }
  void Reopen() {
    if (engine) engine->Shutdown();
    engine.reset();
    auto e = Engine::Open({.store = &store, .registry = &registry});
    BOOST_REQUIRE(e.ok());
    engine = std::move(*e);
  }
  Result<Json> Ask(const std::string& id, const std::string& name, const Json& args = nullptr) {
    auto r = engine->Query(id, name, JsonPayload(args), 5s);
    if (!r.ok()) return r.status();
    return ParseJsonPayload(*r);
  }
  std::size_t HistoryLength(const std::string& id) { return engine->History(id)->size(); }

  MemoryStore store;
  WorkflowRegistry registry;
  std::unique_ptr<Engine> engine;
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(query_reads_live_state_and_records_nothing, Fixture) {
  BOOST_REQUIRE(engine->Start("q-1", "counter", JsonPayload(nullptr)).status.ok());
  auto first = Ask("q-1", "count", Json{{"x", 1}});
  BOOST_REQUIRE(first.ok());
  BOOST_TEST(*first == (Json{{"count", 0}, {"asked_with", {{"x", 1}}}}));
  BOOST_REQUIRE(engine->Signal("q-1", "tick", JsonPayload("a")).status.ok());
  BOOST_REQUIRE(WaitFor([&] { return Ask("q-1", "count")->at("count") == 1; }));
  BOOST_TEST(HistoryLength("q-1") == 2u);  // WorkflowStarted, SignalReceived: no query events
}

BOOST_FIXTURE_TEST_CASE(unknown_query_names_the_known_ones, Fixture) {
  BOOST_REQUIRE(engine->Start("q-2", "counter", JsonPayload(nullptr)).status.ok());
  auto r = Ask("q-2", "colour");
  BOOST_TEST(r.status().code() == StatusCode::kUnknownQuery);
  BOOST_TEST(r.status().message().find("it has: count, slow") != std::string::npos);
  BOOST_TEST(Ask("no-such-id", "count").status().code() == StatusCode::kNotFound);
  BOOST_TEST(Ask("q-2", "bad name!").status().code() == StatusCode::kInvalidArgument);
}

BOOST_FIXTURE_TEST_CASE(query_rebuilds_a_run_that_is_not_resident, Fixture) {
  BOOST_REQUIRE(engine->Start("q-3", "counter", JsonPayload(nullptr)).status.ok());
  BOOST_REQUIRE(engine->Signal("q-3", "tick", JsonPayload("a")).status.ok());
  BOOST_REQUIRE(engine->Signal("q-3", "tick", JsonPayload("b")).status.ok());
  BOOST_REQUIRE(WaitFor([&] { return Ask("q-3", "count")->at("count") == 2; }));
  Reopen();
  auto r = Ask("q-3", "count");
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->at("count") == 2);
}

BOOST_FIXTURE_TEST_CASE(query_of_a_closed_run_is_not_running, Fixture) {
  // The handlers capture the code's locals, which end with the run.
  BOOST_REQUIRE(engine->Start("q-4", "counter", JsonPayload(nullptr)).status.ok());
  BOOST_REQUIRE(engine->Signal("q-4", "tick", JsonPayload("a")).status.ok());
  BOOST_REQUIRE(engine->Signal("q-4", "tick", JsonPayload("stop")).status.ok());
  BOOST_REQUIRE(engine->AwaitResult("q-4", 5s).ok());
  BOOST_TEST(Ask("q-4", "count").status().code() == StatusCode::kNotRunning);
}

BOOST_FIXTURE_TEST_CASE(slow_query_times_out_with_query_timeout, Fixture) {
  BOOST_REQUIRE(engine->Start("q-5", "counter", JsonPayload(nullptr)).status.ok());
  auto r = engine->Query("q-5", "slow", JsonPayload(nullptr), 50ms);
  BOOST_TEST(r.status().code() == StatusCode::kQueryTimeout);
  std::this_thread::sleep_for(400ms);  // let the handler finish before teardown
}
