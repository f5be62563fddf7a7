// bench_replay: replay speed of the engine, in process (aion::engine over
// aion::lmdb_store, the reference workflows). Setup: K `steps_signal` runs
// with S local `echo` steps each (1 + 3S events) parked on their signal, in an
// LMDB store written without sync. Each repetition opens the engine anew on
// that store (sync on, as a worker does): Open lists the open runs and queues
// their rebuild; then every run is asked an unknown query, which is answered
// (kUnknownQuery) only after the run was replayed. Speed = K(1+3S) / time.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <thread>

#include "aion/engine/engine.h"
#include "aion/examples/reference_workflows.h"
#include "aion/lmdb_store/lmdb_store.h"
#include "bench_common.h"

namespace ab = aion::bench;

namespace {

struct Setup {
  aion::WorkflowRegistry workflows;
  aion::ActivityRegistry activities;
  Setup() {
    if (!aion::examples::RegisterReferenceWorkflows(workflows).ok() ||
        !aion::examples::RegisterReferenceActivities(activities).ok())
      throw std::runtime_error("cannot register the reference workflows");
  }
};

std::unique_ptr<aion::LmdbStore> OpenStore(const std::filesystem::path& dir, bool sync) {
  aion::LmdbStoreOptions options;
  options.directory = dir;
  options.sync = sync;
  auto store = aion::LmdbStore::Open(options);
  if (!store.ok()) throw std::runtime_error(store.status().ToString());
  return std::move(*store);
}

std::unique_ptr<aion::Engine> OpenEngine(aion::Store& store, Setup& setup) {
  aion::EngineOptions options;
  options.store = &store;
  options.registry = &setup.workflows;
  options.activities = &setup.activities;
  auto engine = aion::Engine::Open(options);
  if (!engine.ok()) throw std::runtime_error(engine.status().ToString());
  return std::move(*engine);
}

std::string RunId(std::int64_t i) { return "replay-" + std::to_string(i); }

// Starts the runs and waits until each has recorded all its steps.
void Populate(aion::Engine& engine, std::int64_t k, std::int64_t steps) {
  const auto input = aion::JsonPayload(aion::Json{{"steps", steps}, {"remote", false}});
  for (std::int64_t i = 0; i < k; ++i) {
    auto outcome = engine.Start(RunId(i), "steps_signal", input);
    if (!outcome.status.ok()) throw std::runtime_error(outcome.status.ToString());
  }
  const auto want = static_cast<std::uint64_t>(1 + 3 * steps);
  for (std::int64_t i = 0; i < k; ++i) {
    while (true) {
      auto d = engine.Describe(RunId(i));
      if (d.ok() && d->record.head_seq() >= want) break;
      std::this_thread::sleep_for(ab::milliseconds(20));
    }
  }
}

struct Speed {
  double per_s = 0;      // events / wall-clock second
  double per_cpu_s = 0;  // events / CPU second of this process (less sensitive to a busy machine)
};

Speed ReplayRep(const std::filesystem::path& dir, Setup& setup, std::int64_t k,
                std::int64_t steps) {
  auto store = OpenStore(dir, true);
  const double cpu0 = ab::CpuSeconds(getpid());
  const auto t0 = ab::Clock::now();
  auto engine = OpenEngine(*store, setup);
  for (std::int64_t i = 0; i < k; ++i) {
    auto answer = engine->Query(RunId(i), "bench-probe", aion::JsonPayload(nullptr),
                                std::chrono::seconds(60));
    if (answer.ok() || answer.status().code() != aion::StatusCode::kUnknownQuery)
      throw std::runtime_error("unexpected query answer for " + RunId(i));
  }
  const double seconds = ab::Seconds(ab::Clock::now() - t0);
  const double cpu = ab::CpuSeconds(getpid()) - cpu0;
  engine->Shutdown();
  const auto events = static_cast<double>(k * (1 + 3 * steps));
  return {events / seconds, events / std::max(cpu, 1e-3)};
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"engine replay speed (in process, LMDB)"};
  std::int64_t k = 1000, steps = 100;
  int reps = 3;
  app.add_option("-k,--runs", k, "runs");
  app.add_option("-s,--steps", steps, "echo steps per run (1 + 3 s events)");
  app.add_option("--reps", reps, "repetitions");
  CLI11_PARSE(app, argc, argv);

  ab::TempDir dir("replay");
  Setup setup;
  {
    auto store = OpenStore(dir.path() / "lmdb", false);
    auto engine = OpenEngine(*store, setup);
    const auto t0 = ab::Clock::now();
    Populate(*engine, k, steps);
    std::cerr << k << " runs x " << 1 + 3 * steps << " events recorded in "
              << ab::Seconds(ab::Clock::now() - t0) << " s\n";
    engine->Shutdown();
  }
  ab::Figure speed{"replay_events_per_s", "1/s", {}, ab::Goal::kAtLeast, 1e6};
  ab::Figure per_cpu{"replay_events_per_cpu_s", "1/s"};
  for (int r = 0; r < reps; ++r) {
    const Speed s = ReplayRep(dir.path() / "lmdb", setup, k, steps);
    speed.reps.push_back(s.per_s);
    per_cpu.reps.push_back(s.per_cpu_s);
    std::cerr << "rep " << r + 1 << ": " << s.per_s << " events/s, " << s.per_cpu_s
              << " events/CPU-s\n";
  }
  per_cpu.note = "the same events / CPU seconds used by the process (2 executor threads)";
  speed.note = std::to_string(k) + " runs x " + std::to_string(1 + 3 * steps) +
               " events; engine open -> every run answered a query after its replay";
  ab::Emit(speed);
  ab::Emit(per_cpu);
  return 0;
}

int main(int argc, char** argv) { return aion::bench::Guard(argc, argv, &Main); }
