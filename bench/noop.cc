// bench_noop: `noop` workflows through a running aion-worker. A closed loop
// keeps W starts in flight (async JetStream publishes to aion.wf.<id>.start)
// and counts a run done when its lifecycle event aion.evt.noop.<id>.completed
// arrives (core NATS subscription). Throughput: completed / (first publish ..
// last completion) at a large window; latency: publish -> completed event seen,
// p50/p99 at 1 and at 64 in flight.
#include <CLI/CLI.hpp>
#include <iostream>
#include <mutex>

#include "bench_common.h"

namespace ab = aion::bench;

namespace {

// Runs `total` noops with `window` in flight; ids are "<tag>-<i>".
ab::LoadResult RunLoad(aion::bus::NatsConnection& conn, const std::string& tag, std::int64_t total,
                       std::int64_t window) {
  return ab::RunWorkflows(
      conn, "noop", tag, total, window,
      [](ab::AsyncPublisher& pub, const std::string& id, std::int64_t i) {
        pub.Publish("aion.wf." + id + ".start", ab::StartBody("noop", aion::Json{{"i", i}}));
      });
}

void LatencyFigures(aion::bus::NatsConnection& conn, std::int64_t total, std::int64_t window,
                    int reps) {
  const std::string w = std::to_string(window);
  ab::EmitLatencies(
      "noop", window, reps,
      std::to_string(total) + " runs per rep, " + w +
          " in flight; publish -> completed lifecycle event received",
      [&](int r) { return RunLoad(conn, "lat" + w + "r" + std::to_string(r), total, window); });
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"noop workflow throughput and latency"};
  std::int64_t n = 20000, window = 2048, lat1 = 300, lat64 = 3000;
  int reps = 3;
  app.add_option("-n,--runs", n, "runs per throughput repetition");
  app.add_option("--window", window, "starts in flight for the throughput run");
  app.add_option("--lat1-runs", lat1, "runs per repetition at 1 in flight");
  app.add_option("--lat64-runs", lat64, "runs per repetition at 64 in flight");
  app.add_option("--reps", reps, "repetitions");
  CLI11_PARSE(app, argc, argv);

  ab::TempDir dir("noop");
  auto server = ab::StartNats(dir.path() / "nats");
  auto conn = ab::Connect(server->url(), "bench-noop");
  auto worker = ab::MakeWorker(server->url(), dir.path() / "data");
  ab::StartWorker(*worker, *conn);

  ab::Figure rate{"noop_completed_per_s", "1/s", {}, ab::Goal::kAtLeast, 20000};
  for (int r = 0; r < reps; ++r) {
    auto res = RunLoad(*conn, "thr" + std::to_string(r), n, window);
    rate.reps.push_back(static_cast<double>(res.completed) / res.seconds);
    std::cerr << "throughput rep " << r + 1 << ": " << rate.reps.back() << " completed/s\n";
  }
  rate.note = std::to_string(n) + " runs per rep, " + std::to_string(window) +
              " in flight; completed lifecycle events / s";
  ab::Emit(rate);
  LatencyFigures(*conn, lat1, 1, reps);
  LatencyFigures(*conn, lat64, 64, reps);
  worker->Terminate();
  return 0;
}

int main(int argc, char** argv) { return aion::bench::Guard(argc, argv, &Main); }
