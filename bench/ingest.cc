// bench_ingest: start ingestion. With no worker running, N `noop` starts are
// published to aion.wf.<id>.start (stored in AION_IN); then aion-worker is
// started and AION_IN (a work queue: a message leaves it when acked) is
// polled every 10 ms. Rate = messages acked / time from the first ack seen to
// the stream being empty, i.e. starts recorded (synced) and acked per second.
// With --raw-fetch-ack (bench_raw_nats's figure) it also reports the ratio.
#include <CLI/CLI.hpp>
#include <iostream>
#include <thread>

#include "bench_common.h"

namespace ab = aion::bench;

namespace {

void PublishStarts(aion::bus::NatsConnection& conn, const std::string& tag, std::int64_t n) {
  ab::AsyncPublisher pub(conn);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::string id = tag + "-" + std::to_string(i);
    pub.Publish("aion.wf." + id + ".start", ab::StartBody("noop", aion::Json{{"i", i}}));
  }
  if (pub.Complete() != 0) throw std::runtime_error("some starts were not stored");
}

struct Drain {
  double per_s = 0;        // starts acked per second
  double cpu_us_each = 0;  // worker CPU time per start acked
};

// Starts the worker and measures how fast it drains the backlog.
Drain DrainRate(aion::bus::NatsConnection& conn, ab::Child& worker, std::int64_t n) {
  worker.Start();
  double cpu_first = 0;
  ab::Clock::time_point first{};
  std::int64_t at_first = 0;
  const auto deadline = ab::Clock::now() + std::chrono::minutes(10);
  while (true) {
    const std::int64_t left = ab::StreamMessages(conn, "AION_IN");
    const auto now = ab::Clock::now();
    if (left >= 0 && left < n && at_first == 0) {
      first = now;
      at_first = left;
      cpu_first = ab::CpuSeconds(worker.pid());
    }
    if (left == 0) {
      const double cpu = ab::CpuSeconds(worker.pid()) - cpu_first;
      return {static_cast<double>(at_first) / ab::Seconds(now - first), 1e6 * cpu / at_first};
    }
    if (!worker.Alive()) throw std::runtime_error("worker exited:\n" + worker.LogTail());
    if (now > deadline) throw std::runtime_error("AION_IN not drained in time");
    std::this_thread::sleep_for(ab::milliseconds(10));
  }
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"start ingestion: backlog of noop starts drained by a fresh worker"};
  std::int64_t n = 50000;
  int reps = 3;
  double raw_fetch_ack = 0;
  app.add_option("-n,--starts", n, "starts per repetition");
  app.add_option("--reps", reps, "repetitions");
  app.add_option("--raw-fetch-ack", raw_fetch_ack, "raw fetch-ack limit (1/s) for the ratio");
  CLI11_PARSE(app, argc, argv);

  ab::TempDir dir("ingest");
  auto server = ab::StartNats(dir.path() / "nats");
  auto conn = ab::Connect(server->url(), "bench-ingest");
  ab::EnsureAionStreams(*conn);
  ab::Figure rate{"ingest_starts_per_s", "1/s"};
  ab::Figure cpu{"ingest_worker_cpu_us_per_start", "us"};
  for (int r = 0; r < reps; ++r) {
    PublishStarts(*conn, "ing" + std::to_string(r), n);
    auto worker = ab::MakeWorker(server->url(), dir.path() / ("data" + std::to_string(r)));
    const Drain d = DrainRate(*conn, *worker, n);
    rate.reps.push_back(d.per_s);
    cpu.reps.push_back(d.cpu_us_each);
    worker->Kill();  // its outbox backlog is of no interest here
    std::cerr << "rep " << r + 1 << ": " << d.per_s << " starts/s, " << d.cpu_us_each
              << " us worker CPU per start\n";
  }
  rate.note = std::to_string(n) + " noop starts published ahead; fresh worker drains AION_IN";
  cpu.note = "worker CPU (user+sys, all threads) while draining / starts (noop runs also complete)";
  ab::Emit(rate);
  ab::Emit(cpu);
  if (raw_fetch_ack > 0) {
    ab::Figure ratio{"ingest_ratio_to_fetch_ack", "ratio", {}, ab::Goal::kAtLeast, 0.5};
    for (double v : rate.reps) ratio.reps.push_back(v / raw_fetch_ack);
    ratio.note = "ingest_starts_per_s / js_fetch_ack_per_s (" + std::to_string(raw_fetch_ack) + ")";
    ab::Emit(ratio);
  }
  return 0;
}

int main(int argc, char** argv) { return aion::bench::Guard(argc, argv, &Main); }
