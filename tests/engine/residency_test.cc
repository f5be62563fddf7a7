// Residency: with a cache of 8 idle runs and 200 workflows, idle runs are
// evicted and rebuilt by replay on their next input, without losing state;
// and with the writer caching only 4 records, the others are read from the
// store on each input, again without losing state.
#define BOOST_TEST_MODULE residency_test
#include <boost/test/unit_test.hpp>
#include <chrono>

#include "aion/engine/engine.h"
#include "aion/engine/history.h"
#include "aion/engine/memory_store.h"
#include "support/fault_injection_store.h"
#include "support/wait.h"

using namespace aion;
using namespace std::chrono_literals;
using aion::testing::WaitFor;

namespace {

// Takes "a" then "b" and returns both, so each run must keep "a" across an
// eviction.
Task<Json> TwoSignals(Context& ctx, Json input) {
  Json a = co_await ctx.signal<Json>("a");
  Json b = co_await ctx.signal<Json>("b");
  co_return Json{{"input", input}, {"a", a}, {"b", b}};
}

constexpr int kRuns = 200;
constexpr std::size_t kCache = 8;

std::string IdOf(int i) { return "res-" + std::to_string(i); }

// Parks kRuns two_signals runs, signals each twice, checks every result.
// Returns how many workflow records were read from the store while the
// second signals were recorded.
int SignalEveryRunTwice(std::size_t max_resident_runs, std::size_t max_cached_records) {
  MemoryStore memory;
  aion::testing::FaultInjectionStore store(&memory);  // counts the reads
  WorkflowRegistry registry;
  BOOST_REQUIRE(registry.workflow("two_signals", &TwoSignals).ok());
  auto opened = Engine::Open({.store = &store,
                              .registry = &registry,
                              .max_resident_runs = max_resident_runs,
                              .max_cached_records = max_cached_records});
  BOOST_REQUIRE(opened.ok());
  Engine& engine = **opened;

  auto resident = [&] {
    std::size_t n = 0;
    for (int i = 0; i < kRuns; ++i) n += engine.Describe(IdOf(i))->resident;
    return n;
  };
  auto all_have = [&](std::size_t events) {
    for (int i = 0; i < kRuns; ++i) {
      if (engine.History(IdOf(i))->size() < events) return false;
    }
    return true;
  };

  for (int i = 0; i < kRuns; ++i) {
    BOOST_REQUIRE(engine.Start(IdOf(i), "two_signals", JsonPayload(i)).status.ok());
  }
  const std::size_t cache = max_resident_runs == 0 ? kRuns : max_resident_runs;
  BOOST_REQUIRE(WaitFor([&] { return resident() <= cache; }));
  for (int i = 0; i < kRuns; ++i) {
    BOOST_REQUIRE(engine.Signal(IdOf(i), "a", JsonPayload(i * 10)).status.ok());
  }
  BOOST_REQUIRE(WaitFor([&] { return all_have(2) && resident() <= cache; }));
  // A query is answered only after its run caught up with its history, so
  // no run's first execution (which reads its record) is still to come.
  for (int i = 0; i < kRuns; ++i) {
    auto answer = engine.Query(IdOf(i), "caught_up", JsonPayload(nullptr), 20s);
    BOOST_REQUIRE(answer.status().code() != StatusCode::kQueryTimeout);
  }
  const int reads_before = store.workflow_reads();
  for (int i = 0; i < kRuns; ++i) {
    BOOST_REQUIRE(engine.Signal(IdOf(i), "b", JsonPayload(i * 100)).status.ok());
  }
  const int reads = store.workflow_reads() - reads_before;
  for (int i = 0; i < kRuns; ++i) {
    auto done = engine.AwaitResult(IdOf(i), 20s);
    BOOST_REQUIRE(done.ok());
    BOOST_REQUIRE_EQUAL(WorkflowStatusName(done->status), "completed");
    BOOST_TEST(*ParseJsonPayload(done->output) ==
               (Json{{"input", i}, {"a", i * 10}, {"b", i * 100}}));
  }
  // Closed runs leave memory; nothing was parked on the way.
  BOOST_REQUIRE(WaitFor([&] { return resident() == 0; }));
  for (int i = 0; i < kRuns; ++i) BOOST_TEST(engine.Describe(IdOf(i))->parked_error == "");
  return reads;
}

}  // namespace

BOOST_AUTO_TEST_CASE(idle_runs_beyond_the_cache_are_evicted_and_rebuilt) {
  SignalEveryRunTwice(kCache, EngineOptions{}.max_cached_records);
}

// Nothing evicted: store reads while recording signals come from the writer.
BOOST_AUTO_TEST_CASE(records_beyond_the_writers_cache_are_read_from_the_store) {
  const int cached =
      SignalEveryRunTwice(/*max_resident_runs=*/0, EngineOptions{}.max_cached_records);
  BOOST_TEST(cached == 0);  // every record came from the writer's cache
  const int bounded = SignalEveryRunTwice(/*max_resident_runs=*/0, /*max_cached_records=*/4);
  BOOST_TEST(bounded >= kRuns - 4);  // only a handful stayed cached
}
