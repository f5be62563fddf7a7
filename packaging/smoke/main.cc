// Registers a workflow, runs it on the engine embedded over a MemoryStore and
// checks its result; prints "aion_smoke <version>: ok". Exits 1 otherwise.
#include <aion/engine/engine.h>
#include <aion/engine/memory_store.h>
#include <aion/engine/version.h>
#include <aion/worker/worker.h>

#include <chrono>
#include <iostream>

namespace {

aion::Task<aion::Json> Greet(aion::Context& ctx, aion::Json input) {
  co_await ctx.sleep(std::chrono::milliseconds(10));  // a durable timer
  co_return aion::Json{{"greeting", "hello " + input.value("name", std::string("?"))}};
}

int Fail(const std::string& what) {
  std::cerr << "aion_smoke: " << what << "\n";
  return 1;
}

}  // namespace

int main() {
  aion::WorkflowRegistry registry;
  if (auto s = registry.workflow("greet", Greet); !s.ok()) return Fail(s.ToString());
  aion::MemoryStore store;
  auto engine = aion::Engine::Open({.store = &store, .registry = &registry});
  if (!engine.ok()) return Fail(engine.status().ToString());
  auto started = (*engine)->Start("smoke-1", "greet", aion::JsonPayload({{"name", "aion"}}));
  if (!started.status.ok()) return Fail(started.status.ToString());
  auto outcome = (*engine)->AwaitResult("smoke-1", std::chrono::seconds(10));
  if (!outcome.ok()) return Fail(outcome.status().ToString());
  const std::string output = aion::PayloadToDisplay(outcome->output);
  if (output != R"({"greeting":"hello aion"})") return Fail("unexpected output " + output);
  // Aion::worker links: its partition parser answers.
  auto partitions = aion::worker::ParsePartitions("0-3", 16);
  if (!partitions.ok() || partitions->size() != 4) return Fail("ParsePartitions");
  std::cout << "aion_smoke " << aion::Version() << ": ok\n";
  return 0;
}
