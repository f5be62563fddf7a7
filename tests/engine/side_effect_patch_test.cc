// ctx.side_effect and ctx.patched over an embedded Engine and a MemoryStore
// that outlives engine instances, so a "restart" rebuilds runs by replay.
#define BOOST_TEST_MODULE side_effect_patch_test
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>

#include "aion/engine/engine.h"
#include "aion/engine/history.h"
#include "aion/engine/memory_store.h"
#include "support/wait.h"

using namespace aion;
using namespace std::chrono_literals;

namespace {

std::atomic<int> g_evaluations{0};

// Draws a value through a side effect, waits for "go", returns the value.
Task<Json> DrawThenWait(Context& ctx, Json) {
  const int drawn = ctx.side_effect([] { return 100 + ++g_evaluations; });
  co_await ctx.signal<Json>("go");
  co_return Json{{"drawn", drawn}};
}

// The code before a change: starts a reminder (a recorded command), waits
// for "go", answers "old".
Task<Json> BeforeChange(Context& ctx, Json) {
  Timer reminder = ctx.timer("reminder", 1h);
  co_await ctx.signal<Json>("go");
  co_return "old";
}

// The same type after a change guarded at the start of the run.
Task<Json> PatchedAtStart(Context& ctx, Json) {
  const bool fresh = ctx.patched("greeting-v2");
  Timer reminder = ctx.timer("reminder", 1h);
  co_await ctx.signal<Json>("go");
  co_return fresh ? "new" : "old";
}

// The same type after a change guarded after the wait.
Task<Json> PatchedAfterWait(Context& ctx, Json) {
  Timer reminder = ctx.timer("reminder", 1h);
  co_await ctx.signal<Json>("go");
  co_return ctx.patched("greeting-v2") ? "new" : "old";
}

std::unique_ptr<Engine> Open(MemoryStore& store, const WorkflowRegistry& registry) {
  auto engine = Engine::Open({.store = &store, .registry = &registry});
  BOOST_REQUIRE(engine.ok());
  return std::move(*engine);
}

Json Finish(Engine& engine, const std::string& id) {
  BOOST_REQUIRE(engine.Signal(id, "go", JsonPayload(nullptr)).status.ok());
  auto done = engine.AwaitResult(id, 10s);
  BOOST_REQUIRE(done.ok());
  BOOST_REQUIRE_EQUAL(WorkflowStatusName(done->status), "completed");
  return *ParseJsonPayload(done->output);
}

// Waits until the run recorded `n` events (the code has run its first input).
void AwaitHistory(Engine& engine, const std::string& id, std::size_t n) {
  BOOST_REQUIRE(aion::testing::WaitFor([&] {
    auto h = engine.History(id);
    return h.ok() && h->size() >= n;
  }));
}

int CountEvents(Engine& engine, const std::string& id, HistoryEvent::AttributesCase c) {
  auto history = engine.History(id);
  BOOST_REQUIRE(history.ok());
  int n = 0;
  for (const auto& e : *history) n += e.attributes_case() == c;
  return n;
}

// Runs `type` on `before`, restarts onto `after` while the run waits for
// "go", finishes it there and returns its output.
Json AcrossRestart(Task<Json> (*before)(Context&, Json), Task<Json> (*after)(Context&, Json),
                   const std::string& id) {
  MemoryStore store;
  WorkflowRegistry old_code, new_code;
  BOOST_REQUIRE(old_code.workflow("greet", before).ok());
  BOOST_REQUIRE(new_code.workflow("greet", after).ok());
  {
    auto engine = Open(store, old_code);
    BOOST_REQUIRE(engine->Start(id, "greet", JsonPayload(nullptr)).status.ok());
    AwaitHistory(*engine, id, 2);  // WorkflowStarted, TimerStarted
  }
  auto engine = Open(store, new_code);
  Json out = Finish(*engine, id);
  auto d = engine->Describe(id);
  BOOST_REQUIRE(d.ok());
  BOOST_TEST(d->parked_error == "");
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(side_effect_runs_once_and_replays_its_recorded_value) {
  g_evaluations = 0;
  MemoryStore store;
  WorkflowRegistry registry;
  BOOST_REQUIRE(registry.workflow("draw", &DrawThenWait).ok());
  {
    auto engine = Open(store, registry);
    BOOST_REQUIRE(engine->Start("d-1", "draw", JsonPayload(nullptr)).status.ok());
    AwaitHistory(*engine, "d-1", 2);  // WorkflowStarted, SideEffectRecorded
  }
  BOOST_TEST(g_evaluations.load() == 1);
  auto engine = Open(store, registry);  // rebuilt by replay: the function must not run again
  BOOST_TEST(Finish(*engine, "d-1") == (Json{{"drawn", 101}}));
  BOOST_TEST(g_evaluations.load() == 1);
  BOOST_TEST(CountEvents(*engine, "d-1", HistoryEvent::kSideEffectRecorded) == 1);
}

BOOST_AUTO_TEST_CASE(patched_keeps_the_old_path_for_history_recorded_before_the_change) {
  // History: 1 WorkflowStarted, 2 TimerStarted(reminder, caused_by 1). The
  // new code asks patched() at the start: input 1 is replayed (it has
  // recorded commands), so the old path is kept and no marker is recorded.
  BOOST_TEST(AcrossRestart(&BeforeChange, &PatchedAtStart, "p-1") == "old");
}

BOOST_AUTO_TEST_CASE(patched_takes_the_new_path_when_reached_live) {
  // The new code asks after the wait: the signal is a new input, reached live.
  BOOST_TEST(AcrossRestart(&BeforeChange, &PatchedAfterWait, "p-2") == "new");
}

BOOST_AUTO_TEST_CASE(patched_is_recorded_and_replayed_for_new_runs) {
  MemoryStore store;
  WorkflowRegistry registry;
  BOOST_REQUIRE(registry.workflow("greet", &PatchedAtStart).ok());
  {
    auto engine = Open(store, registry);
    BOOST_REQUIRE(engine->Start("p-3", "greet", JsonPayload(nullptr)).status.ok());
    AwaitHistory(*engine, "p-3", 3);  // WorkflowStarted, PatchMarker, TimerStarted
  }
  auto engine = Open(store, registry);  // replays the marker: still the new path
  BOOST_TEST(Finish(*engine, "p-3") == "new");
  BOOST_TEST(CountEvents(*engine, "p-3", HistoryEvent::kPatchMarker) == 1);
}
