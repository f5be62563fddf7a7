// bench_order: the order saga (`order` reference workflow with task_queue
// "orders": 3 remote activities reserve/charge/ship served by a separate
// bench_activity_worker process, a 10 ms timer ("hold_ms"), an approval wait
// with a 60 s deadline timer that the signal cancels, one signal `approve`). Each run's start and
// its signal are published together (the signal is recorded before or while the run waits for it);
// a run is done when aion.evt.order.<id>.completed arrives. Throughput at a large window, latency
// p50/p99 at 1 and 64 in flight.
#include <CLI/CLI.hpp>
#include <iostream>

#include "bench_common.h"

namespace ab = aion::bench;

namespace {

ab::LoadResult RunLoad(aion::bus::NatsConnection& conn, const std::string& tag, std::int64_t total,
                       std::int64_t window) {
  const aion::Json input{
      {"sku", "A1"}, {"qty", 1}, {"card", "visa"}, {"task_queue", "orders"}, {"hold_ms", 10}};
  const std::string start = ab::StartBody("order", input);
  const std::string signal = ab::SignalBody("approve", aion::Json{{"by", "bench"}});
  return ab::RunWorkflows(conn, "order", tag, total, window,
                          [&](ab::AsyncPublisher& pub, const std::string& id, std::int64_t) {
                            pub.Publish("aion.wf." + id + ".start", start);
                            pub.Publish("aion.wf." + id + ".signal", signal);
                          });
}

void Latency(aion::bus::NatsConnection& conn, std::int64_t total, std::int64_t window, int reps) {
  const std::string w = std::to_string(window);
  ab::EmitLatencies(
      "order", window, reps,
      std::to_string(total) + " runs per rep, " + w +
          " in flight; start+signal publish -> completed event received",
      [&](int r) { return RunLoad(conn, "olat" + w + "r" + std::to_string(r), total, window); });
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"order saga with a remote C++ activity worker"};
  std::int64_t n = 3000, window = 512, lat1 = 100, lat64 = 1000;
  int reps = 3;
  app.add_option("-n,--runs", n, "runs per throughput repetition");
  app.add_option("--window", window, "runs in flight for the throughput run");
  app.add_option("--lat1-runs", lat1, "runs per repetition at 1 in flight");
  app.add_option("--lat64-runs", lat64, "runs per repetition at 64 in flight");
  app.add_option("--reps", reps, "repetitions");
  CLI11_PARSE(app, argc, argv);

  ab::TempDir dir("order");
  auto server = ab::StartNats(dir.path() / "nats");
  auto conn = ab::Connect(server->url(), "bench-order");
  auto worker = ab::MakeWorker(server->url(), dir.path() / "data");
  ab::StartWorker(*worker, *conn);
  ab::Child activities({(ab::BinDir() / "bench_activity_worker").string(), "--nats", server->url(),
                        "--queue", "orders"},
                       dir.path() / "activity-worker.log");
  activities.Start();

  ab::Figure rate{"order_completed_per_s", "1/s"};
  for (int r = 0; r < reps; ++r) {
    auto res = RunLoad(*conn, "othr" + std::to_string(r), n, window);
    rate.reps.push_back(static_cast<double>(res.completed) / res.seconds);
    std::cerr << "throughput rep " << r + 1 << ": " << rate.reps.back() << " completed/s\n";
  }
  rate.note = std::to_string(n) + " runs per rep, " + std::to_string(window) +
              " in flight; 3 remote activities, a 10 ms timer, 1 signal (its 60 s deadline timer "
              "cancelled)";
  ab::Emit(rate);
  Latency(*conn, lat1, 1, reps);
  Latency(*conn, lat64, 64, reps);
  activities.Terminate();
  worker->Terminate();
  return 0;
}

int main(int argc, char** argv) { return aion::bench::Guard(argc, argv, &Main); }
