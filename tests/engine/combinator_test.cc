// ctx.first and ctx.all over activities, timers and signals, on an embedded
// Engine with a ManualClock (no sleeping for time).
#define BOOST_TEST_MODULE combinator_test
#include <boost/test/unit_test.hpp>
#include <chrono>

#include "aion/engine/engine.h"
#include "aion/engine/history.h"
#include "aion/engine/memory_store.h"
#include "event_names.h"
#include "support/wait.h"

using namespace aion;
using namespace std::chrono_literals;
using aion::testing::WaitFor;

namespace {

// A remote activity (no worker serves queue "nobody") races a 1 s timer.
Task<Json> ActivityOrDeadline(Context& ctx, Json) {
  auto slow = ctx.activity<Json>("lookup", Json("x"), {.task_queue = "nobody"});
  Timer deadline = ctx.timer("deadline", 1s);
  const std::size_t winner = co_await ctx.first(slow, deadline);
  co_return Json{{"winner", winner}};
}

// A signal races a 1 h timer; the winner's value is taken afterwards.
Task<Json> SignalOrDeadline(Context& ctx, Json) {
  auto approve = ctx.signal<Json>("approve");
  Timer deadline = ctx.timer("deadline", 1h);
  const std::size_t winner = co_await ctx.first(approve, deadline);
  Json by;
  if (winner == 0) by = co_await approve;
  co_return Json{{"winner", winner}, {"by", by}};
}

// Two local activities awaited together.
Task<Json> BothEchoes(Context& ctx, Json) {
  auto a = ctx.activity<Json>("echo", Json("a"));
  auto b = ctx.activity<Json>("echo", Json("b"));
  co_await ctx.all(a, b);
  Json ra = co_await a;
  Json rb = co_await b;
  co_return Json::array({ra, rb});
}

// One local activity fails for good; all() returns and the other is cancelled.
Task<Json> OneFails(Context& ctx, Json) {
  auto bad = ctx.activity<Json>("boom", Json(nullptr), {.retry = {.maximum_attempts = 1}});
  auto slow = ctx.activity<Json>("lookup", Json("x"), {.task_queue = "nobody"});
  co_await ctx.all(bad, slow);
  try {
    co_await slow;
  } catch (const CancelledError&) {
    co_return "slow cancelled";
  }
  co_return "slow not cancelled";
}

struct Fixture {
  Fixture() {
    BOOST_REQUIRE(registry.workflow("activity_or_deadline", &ActivityOrDeadline).ok());
    BOOST_REQUIRE(registry.workflow("signal_or_deadline", &SignalOrDeadline).ok());
    BOOST_REQUIRE(registry.workflow("both_echoes", &BothEchoes).ok());
    BOOST_REQUIRE(registry.workflow("one_fails", &OneFails).ok());
    BOOST_REQUIRE(activities.activity("echo", [](ActivityContext&, Json in) { return in; }).ok());
    BOOST_REQUIRE(
        activities
            .activity("boom",
                      [](ActivityContext&, Json) -> Json { throw ActivityError("boom", "Boom"); })
            .ok());
    auto e = Engine::Open(
        {.store = &store, .registry = &registry, .clock = &clock, .activities = &activities});
    BOOST_REQUIRE(e.ok());
    engine = std::move(*e);
  }

  Json Result(const std::string& id) {
    auto done = engine->AwaitResult(id, 10s);
    BOOST_REQUIRE(done.ok());
    BOOST_REQUIRE_EQUAL(WorkflowStatusName(done->status), "completed");
    return *ParseJsonPayload(done->output);
  }

  std::vector<std::string> Events(const std::string& id) {
    return aion::testing::EventNames(*engine, id);
  }
  bool Has(const std::string& id, const std::string& event) {
    return aion::testing::HasEvent(*engine, id, event);
  }

  MemoryStore store;
  ManualClock clock;
  WorkflowRegistry registry;
  ActivityRegistry activities;
  std::unique_ptr<Engine> engine;
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(first_returns_the_timer_and_cancels_the_losing_activity, Fixture) {
  BOOST_REQUIRE(engine->Start("c-1", "activity_or_deadline", JsonPayload(nullptr)).status.ok());
  BOOST_REQUIRE(WaitFor([&] { return Events("c-1").size() >= 4; }));
  clock.Advance(2s);
  BOOST_TEST(Result("c-1") == (Json{{"winner", 1}}));
  // 1 WorkflowStarted, 2 ActivityScheduled, 3 ActivityStarted, 4 TimerStarted,
  // 5 TimerFired, 6 ActivityCancelRequested, 7 WorkflowCompleted
  BOOST_TEST(Has("c-1", "ActivityCancelRequested(id=1)"));
  BOOST_TEST(Events("c-1").size() == 7u);
}

BOOST_FIXTURE_TEST_CASE(first_returns_the_signal_which_is_then_taken, Fixture) {
  BOOST_REQUIRE(engine->Start("c-2", "signal_or_deadline", JsonPayload(nullptr)).status.ok());
  BOOST_REQUIRE(WaitFor([&] { return Events("c-2").size() >= 2; }));
  BOOST_REQUIRE(engine->Signal("c-2", "approve", JsonPayload("ana")).status.ok());
  BOOST_TEST(Result("c-2") == (Json{{"winner", 0}, {"by", "ana"}}));
  BOOST_TEST(Has("c-2", "TimerCancelled(id=deadline)"));
}

BOOST_FIXTURE_TEST_CASE(all_waits_for_every_activity, Fixture) {
  BOOST_REQUIRE(engine->Start("c-3", "both_echoes", JsonPayload(nullptr)).status.ok());
  BOOST_TEST(Result("c-3") == Json::array({"a", "b"}));
}

BOOST_FIXTURE_TEST_CASE(all_stops_at_the_first_failure_and_cancels_the_rest, Fixture) {
  BOOST_REQUIRE(engine->Start("c-4", "one_fails", JsonPayload(nullptr)).status.ok());
  BOOST_TEST(Result("c-4") == "slow cancelled");
  BOOST_TEST(Has("c-4", "ActivityCancelRequested(id=2)"));
}

BOOST_FIXTURE_TEST_CASE(first_replays_to_the_same_commands, Fixture) {
  BOOST_REQUIRE(engine->Start("c-5", "signal_or_deadline", JsonPayload(nullptr)).status.ok());
  BOOST_REQUIRE(WaitFor([&] { return Events("c-5").size() >= 2; }));
  engine->Shutdown();
  auto reopened = Engine::Open(
      {.store = &store, .registry = &registry, .clock = &clock, .activities = &activities});
  BOOST_REQUIRE(reopened.ok());
  engine = std::move(*reopened);
  BOOST_REQUIRE(engine->Signal("c-5", "approve", JsonPayload("bo")).status.ok());
  BOOST_TEST(Result("c-5") == (Json{{"winner", 0}, {"by", "bo"}}));
  auto d = engine->Describe("c-5");
  BOOST_REQUIRE(d.ok());
  BOOST_TEST(d->parked_error == "");
}
