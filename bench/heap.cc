// bench_heap: heap bytes per idle resident run, in process (aion::engine over
// aion::lmdb_store, no NATS): N `timer_signal` runs ({"sleep_ms":0}) park on
// their signal in an engine that evicts nothing; heap in use (glibc
// mallinfo2().uordblks) after they parked minus before, / N. Unlike the
// worker's RSS it leaves out the LMDB map and allocator slack, so it shows
// what the engine itself keeps per run.
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <thread>

#include "aion/engine/engine.h"
#include "aion/examples/reference_workflows.h"
#include "aion/lmdb_store/lmdb_store.h"
#include "bench_common.h"

namespace ab = aion::bench;

namespace {

std::unique_ptr<aion::LmdbStore> OpenStore(const std::filesystem::path& dir) {
  aion::LmdbStoreOptions options;
  options.directory = dir;
  options.sync = false;  // setup speed; durability does not matter here
  auto store = aion::LmdbStore::Open(options);
  if (!store.ok()) throw std::runtime_error(store.status().ToString());
  return std::move(*store);
}

// Starts runs "<tag>-0" .. "<tag>-<n-1>" and waits until each has parked
// (3 events: started, timer started, timer fired).
void Park(aion::Engine& engine, const std::string& tag, std::int64_t n) {
  const auto input = aion::JsonPayload(aion::Json{{"sleep_ms", 0}, {"signal", "go"}});
  for (std::int64_t i = 0; i < n; ++i) {
    auto outcome = engine.Start(tag + "-" + std::to_string(i), "timer_signal", input);
    if (!outcome.status.ok()) throw std::runtime_error(outcome.status.ToString());
  }
  for (std::int64_t i = 0; i < n; ++i) {
    while (true) {
      auto d = engine.Describe(tag + "-" + std::to_string(i));
      if (d.ok() && d->record.head_seq() >= 3) break;
      std::this_thread::sleep_for(ab::milliseconds(5));
    }
  }
  std::this_thread::sleep_for(ab::milliseconds(200));  // the executors go idle
}

std::int64_t HeapInUse() {
  malloc_trim(0);
  return static_cast<std::int64_t>(mallinfo2().uordblks);
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"heap bytes per idle resident run (in process)"};
  std::int64_t n = 20000;
  int reps = 3;
  app.add_option("-n,--runs", n, "parked runs per repetition");
  app.add_option("--reps", reps, "repetitions (each adds n more runs)");
  CLI11_PARSE(app, argc, argv);

  ab::TempDir dir("heap");
  auto store = OpenStore(dir.path() / "lmdb");
  aion::WorkflowRegistry workflows;
  aion::ActivityRegistry activities;
  if (!aion::examples::RegisterReferenceWorkflows(workflows).ok() ||
      !aion::examples::RegisterReferenceActivities(activities).ok())
    throw std::runtime_error("cannot register the reference workflows");
  aion::EngineOptions options;
  options.store = store.get();
  options.registry = &workflows;
  options.activities = &activities;
  options.max_resident_runs = 0;
  auto engine = aion::Engine::Open(options);
  if (!engine.ok()) throw std::runtime_error(engine.status().ToString());

  Park(**engine, "warm", 1000);
  ab::Figure heap{"heap_per_idle_run_bytes", "B"};
  for (int r = 0; r < reps; ++r) {
    const std::int64_t before = HeapInUse();
    Park(**engine, "heap" + std::to_string(r), n);
    const std::int64_t after = HeapInUse();
    heap.reps.push_back(static_cast<double>(after - before) / static_cast<double>(n));
    std::cerr << "rep " << r + 1 << ": " << heap.reps.back() << " heap bytes per parked run\n";
  }
  heap.note = std::to_string(n) +
              " timer_signal runs parked per rep; glibc heap in use (mallinfo2) growth / runs";
  ab::Emit(heap);
  (*engine)->Shutdown();
  return 0;
}

int main(int argc, char** argv) { return aion::bench::Guard(argc, argv, &Main); }
