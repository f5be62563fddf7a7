// Runs the engine embedded, without NATS or LMDB: starts a timer_signal
// workflow, signals it, and prints its result and history.
#include <chrono>
#include <iostream>

#include "aion/engine/engine.h"
#include "aion/engine/memory_store.h"
#include "aion/examples/reference_workflows.h"

int main() {
  aion::MemoryStore store;
  aion::WorkflowRegistry registry;
  if (auto s = aion::examples::RegisterReferenceWorkflows(registry); !s.ok()) {
    std::cerr << s << "\n";
    return 1;
  }
  auto engine = aion::Engine::Open({.store = &store, .registry = &registry});
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
  return outcome->status == aion::records::WORKFLOW_STATUS_COMPLETED ? 0 : 1;
}
