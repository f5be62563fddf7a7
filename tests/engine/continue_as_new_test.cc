// Continue-as-new: a run ends and the next run of the same id starts in the
// same commit; the history keeps every run; waiting for the result follows
// the chain to its last run.
#define BOOST_TEST_MODULE continue_as_new_test
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <set>

#include "aion/engine/engine.h"
#include "aion/engine/history.h"
#include "aion/engine/memory_store.h"
#include "support/wait.h"

using namespace aion;
using namespace std::chrono_literals;

namespace {

// Counts up to 3, one run per step, each run waiting for a "next" signal
// and holding an hour-long timer that continue-as-new must cancel.
Task<Json> Stepper(Context& ctx, Json n) {
  Timer reminder = ctx.timer("reminder", 1h);
  co_await ctx.signal<Json>("next");
  if (n.get<int>() < 3) ctx.continue_as_new(n.get<int>() + 1);
  co_return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(each_run_continues_as_new_until_the_last_completes) {
  MemoryStore store;
  WorkflowRegistry registry;
  BOOST_REQUIRE(registry.workflow("stepper", &Stepper).ok());
  auto opened = Engine::Open({.store = &store, .registry = &registry});
  BOOST_REQUIRE(opened.ok());
  Engine& engine = **opened;

  const IngressOutcome first = engine.Start("can-1", "stepper", JsonPayload(1));
  BOOST_REQUIRE(first.status.ok());
  std::set<std::string> runs{first.run_id};
  for (int step = 1; step <= 3; ++step) {
    const IngressOutcome sent = engine.Signal("can-1", "next", JsonPayload(step));
    // The signal reaches the run current at that moment; wait for the next run.
    BOOST_REQUIRE(sent.status.ok());
    if (step < 3) {
      std::string next;
      BOOST_REQUIRE(aion::testing::WaitFor([&] {
        next = engine.Describe("can-1")->record.run_id();
        return runs.count(next) == 0;
      }));
      runs.insert(next);
    }
  }
  auto done = engine.AwaitResult("can-1", 10s);
  BOOST_REQUIRE(done.ok());
  BOOST_TEST(WorkflowStatusName(done->status) == "completed");
  BOOST_TEST(*ParseJsonPayload(done->output) == 3);
  BOOST_TEST(runs.size() == 3u);

  // Per run: Started, TimerStarted, SignalReceived, TimerCancelled, then
  // ContinuedAsNew (runs 1, 2) or Completed (run 3).
  auto history = engine.History("can-1");
  BOOST_REQUIRE(history.ok());
  std::vector<std::string> kinds;
  for (const auto& e : *history) kinds.push_back(DescribeEvent(e));
  BOOST_REQUIRE_EQUAL(kinds.size(), 15u);
  BOOST_TEST(kinds[4] == "WorkflowContinuedAsNew");
  BOOST_TEST(kinds[5] == "WorkflowStarted(type=stepper)");
  BOOST_TEST(kinds[14] == "WorkflowCompleted");
  BOOST_TEST((*history)[4].workflow_continued_as_new().new_run_id() == (*history)[5].run_id());
  BOOST_TEST(engine.Describe("can-1")->record.run_start_seq() == 11u);
  BOOST_TEST(StatusFromHistory(*history) == records::WORKFLOW_STATUS_COMPLETED);
}
