// Park/wake race stress (invariant 7): signals are committed and markers
// delivered while the runs they wake are executing, parking or retiring.
// Every signal must be observed, with no hang, across >= 100,000 wakeups.
#define BOOST_TEST_MODULE park_wake_stress_test
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <semaphore>
#include <thread>

#include "aion/engine/engine.h"
#include "aion/engine/memory_store.h"
#include "support/wait.h"

using namespace aion;

namespace {

// Waits for input["n"] "tick" signals, one at a time, and returns their sum.
Task<Json> CountTicks(Context& ctx, Json input) {
  const int n = input["n"].get<int>();
  std::int64_t sum = 0;
  for (int i = 0; i < n; ++i) sum += (co_await ctx.signal<Json>("tick")).get<std::int64_t>();
  co_return sum;
}

int Scale() {
  const char* s = std::getenv("AION_STRESS_SIGNALS");
  return s ? std::atoi(s) : 100'000;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_marker_wakes_its_run) {
  constexpr int kWorkflows = 16;
  constexpr int kSenders = 4;
  constexpr int kBatch = 1;  // one marker per signal: every signal is its own race
  const int total = Scale();
  const int per_workflow = total / kWorkflows;

  MemoryStore store;
  WorkflowRegistry registry;
  BOOST_REQUIRE(registry.workflow("count_ticks", &CountTicks).ok());
  auto engine = Engine::Open({.store = &store, .registry = &registry, .executor_threads = 2});
  BOOST_REQUIRE(engine.ok());
  for (int w = 0; w < kWorkflows; ++w) {
    auto s = (*engine)->Start("w" + std::to_string(w), "count_ticks",
                              JsonPayload({{"n", per_workflow}}));
    BOOST_REQUIRE(s.status.ok());
  }

  std::counting_semaphore<64> in_flight(64);
  std::atomic<int> refused{0};
  auto sender = [&](int first) {
    // Sender k signals workflows k, k+kSenders, ... in small interleaved batches.
    for (int i = 0; i < per_workflow; i += kBatch) {
      std::vector<IngressMessage> batch;
      for (int w = first; w < kWorkflows; w += kSenders) {
        for (int j = i; j < std::min(i + kBatch, per_workflow); ++j) {
          IngressMessage m;
          m.kind = IngressMessage::Kind::kSignal;
          m.workflow_id = "w" + std::to_string(w);
          m.signal_name = "tick";
          m.input = JsonPayload(j);
          batch.push_back(std::move(m));
        }
      }
      in_flight.acquire();
      (*engine)->Submit(std::move(batch), [&](std::vector<IngressOutcome> outcomes) {
        for (const auto& o : outcomes) refused += o.status.ok() ? 0 : 1;
        in_flight.release();
      });
    }
  };
  std::vector<std::thread> senders;
  for (int k = 0; k < kSenders; ++k) senders.emplace_back(sender, k);
  for (auto& t : senders) t.join();

  const std::int64_t expected = std::int64_t{per_workflow} * (per_workflow - 1) / 2;
  for (int w = 0; w < kWorkflows; ++w) {
    auto r = (*engine)->AwaitResult("w" + std::to_string(w), std::chrono::minutes(5));
    BOOST_REQUIRE_MESSAGE(r.ok(), "w" << w << ": " << r.status().ToString());
    BOOST_TEST(ParseJsonPayload(r->output)->get<std::int64_t>() == expected);
  }
  BOOST_TEST(refused.load() == 0);
}
