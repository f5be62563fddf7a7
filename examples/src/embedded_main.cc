// Runs the engine embedded, without NATS or LMDB: starts a timer_signal
// workflow, signals it, and prints its result and history; then runs the
// order saga with local activities, once approved and once with a declined
// card (compensated, failed).
#include <chrono>
#include <iostream>

#include "aion/engine/engine.h"
#include "aion/engine/history.h"
#include "aion/engine/memory_store.h"
#include "aion/examples/reference_workflows.h"

int main() {
  aion::MemoryStore store;
  aion::WorkflowRegistry registry;
  aion::ActivityRegistry activities;
  for (auto s : {aion::examples::RegisterReferenceWorkflows(registry),
                 aion::examples::RegisterReferenceActivities(activities)}) {
    if (!s.ok()) {
      std::cerr << s << "\n";
      return 1;
    }
  }
  auto engine =
      aion::Engine::Open({.store = &store, .registry = &registry, .activities = &activities});
  if (!engine.ok()) {
    std::cerr << "cannot open engine: " << engine.status() << "\n";
    return 1;
  }
  auto& e = **engine;
  auto started = e.Start("embedded-1", "timer_signal",
                         aion::JsonPayload({{"sleep_ms", 200}, {"signal", "approve"}}));
  if (!started.status.ok()) {
    std::cerr << "start: " << started.status << "\n";
    return 1;
  }
  std::cout << "started embedded-1, run " << started.run_id << "\n";
  auto signaled = e.Signal("embedded-1", "approve", aion::JsonPayload({{"by", "ana"}}));
  std::cout << "signal approve: " << signaled.status << "\n";
  auto outcome = e.AwaitResult("embedded-1", std::chrono::seconds(10));
  if (!outcome.ok()) {
    std::cerr << "result: " << outcome.status() << "\n";
    return 1;
  }
  std::cout << "result: " << aion::PayloadToDisplay(outcome->output) << "\n";
  auto history = e.History("embedded-1");
  if (!history.ok()) {
    std::cerr << "history: " << history.status() << "\n";
    return 1;
  }
  for (const auto& ev : *history) {
    std::cout << "  " << ev.ShortDebugString() << "\n";
  }
  if (outcome->status != aion::records::WORKFLOW_STATUS_COMPLETED) return 1;

  // The order saga: approved, then declined (compensated and failed).
  e.Start("order-1", "order", aion::JsonPayload({{"sku", "A1"}, {"qty", 2}, {"card", "ok"}}));
  e.Signal("order-1", "approve", aion::JsonPayload({{"by", "ana"}}));
  e.Start("order-2", "order", aion::JsonPayload({{"sku", "B2"}, {"card", "declined"}}));
  for (const char* id : {"order-1", "order-2"}) {
    auto done = e.AwaitResult(id, std::chrono::seconds(10));
    if (!done.ok()) {
      std::cerr << id << ": " << done.status() << "\n";
      return 1;
    }
    std::cout << id << ": " << aion::WorkflowStatusName(done->status) << " "
              << (done->failure.empty() ? aion::PayloadToDisplay(done->output) : done->failure)
              << "\n";
  }
  return 0;
}
