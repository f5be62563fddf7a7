// bench_replay: replay speed of the engine, in process (aion::engine over
// aion::lmdb_store, the reference workflows). Setup: K `steps_signal` runs
// with S local `echo` steps each (1 + 3S events) parked on their signal, in an
// LMDB store written without sync. Each repetition opens the engine anew on
// that store (sync on, as a worker does): Open lists the open runs and queues
// their rebuild; then every run is asked an unknown query, which is answered
// (kUnknownQuery) only after the run was replayed. Speed = K(1+3S) / time.
#include <CLI/CLI.hpp>
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

double ReplayRep(const std::filesystem::path& dir, Setup& setup, std::int64_t k,
                 std::int64_t steps) {
  auto store = OpenStore(dir, true);
  const auto t0 = ab::Clock::now();
  auto engine = OpenEngine(*store, setup);
  for (std::int64_t i = 0; i < k; ++i) {
    auto answer = engine->Query(RunId(i), "bench-probe", aion::JsonPayload(nullptr),
                                std::chrono::seconds(60));
    if (answer.ok() || answer.status().code() != aion::StatusCode::kUnknownQuery)
      throw std::runtime_error("unexpected query answer for " + RunId(i));
  }
  const double seconds = ab::Seconds(ab::Clock::now() - t0);
  engine->Shutdown();
  return static_cast<double>(k * (1 + 3 * steps)) / seconds;
}

}  // namespace

int main(int argc, char** argv) {
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
  for (int r = 0; r < reps; ++r) {
    speed.reps.push_back(ReplayRep(dir.path() / "lmdb", setup, k, steps));
    std::cerr << "rep " << r + 1 << ": " << speed.reps.back() << " events/s\n";
  }
  speed.note = std::to_string(k) + " runs x " + std::to_string(1 + 3 * steps) +
               " events; engine open -> every run answered a query after its replay";
  ab::Emit(speed);
  return 0;
}
