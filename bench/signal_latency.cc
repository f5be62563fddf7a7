// bench_signal: signal latency at a fixed rate (default 1,000 signals/s,
// open loop). M `timer_signal` runs ({"sleep_ms":0,"signal":"go"}) are started
// and left parked on their signal; then one signal per run is published at
// the rate. "Observed" = the run's WorkflowCompleted event, which the run
// records the moment its code resumes with the signal: its recorded time
// (LifecycleEvent.time_us, worker clock = this machine's clock) minus the
// publish time. Also reported: publish -> completed event received here.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <mutex>
#include <thread>

#include "aion/wire.pb.h"
#include "bench_common.h"

namespace ab = aion::bench;

namespace {

struct Observed {
  std::mutex mu;
  std::vector<std::int64_t> recorded_us, received_us;
  std::int64_t started = 0, completed = 0;
};

void StartParked(aion::bus::NatsConnection& conn, const std::string& prefix, std::int64_t m,
                 Observed& obs) {
  ab::AsyncPublisher pub(conn);
  const std::string body =
      ab::StartBody("timer_signal", aion::Json{{"sleep_ms", 0}, {"signal", "go"}});
  for (std::int64_t i = 0; i < m; ++i)
    pub.Publish("aion.wf." + prefix + std::to_string(i) + ".start", body);
  pub.Complete();
  const auto deadline = ab::Clock::now() + std::chrono::minutes(3);
  while (ab::Clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> g(obs.mu);
      if (obs.started >= m) break;
    }
    std::this_thread::sleep_for(ab::milliseconds(50));
  }
  // The started event leaves before the zero timer fires and the run parks.
  std::this_thread::sleep_for(ab::milliseconds(1000));
}

// Publishes one signal per run at `rate`/s; returns publish times (us).
std::vector<std::int64_t> SignalAtRate(aion::bus::NatsConnection& conn, const std::string& prefix,
                                       std::int64_t m, double rate) {
  ab::AsyncPublisher pub(conn);
  const std::string body = ab::SignalBody("go", aion::Json{{"by", "bench"}});
  std::vector<std::int64_t> sent(static_cast<std::size_t>(m));
  const auto t0 = ab::Clock::now();
  for (std::int64_t i = 0; i < m; ++i) {
    std::this_thread::sleep_until(
        t0 + std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 * i / rate)));
    sent[i] = ab::NowUs();
    pub.Publish("aion.wf." + prefix + std::to_string(i) + ".signal", body);
  }
  pub.Complete();
  return sent;
}

// Waits until every run's completion was seen (at most 2 minutes).
void AwaitCompleted(Observed& obs, std::int64_t m) {
  const auto deadline = ab::Clock::now() + std::chrono::minutes(2);
  while (ab::Clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> g(obs.mu);
      if (obs.completed >= m) return;
    }
    std::this_thread::sleep_for(ab::milliseconds(20));
  }
}

// Latencies (ms) of one repetition: publish -> completion recorded, and
// publish -> completed event received; for a sample, the two halves of the
// first: publish -> SignalReceived recorded (JetStream, pull, the writer
// taking it up) and SignalReceived -> WorkflowCompleted recorded (the commit,
// the wake-up, the executor, the writer taking up the completion).
struct Latencies {
  std::vector<double> observed, e2e, to_recorded, to_resumed;
};

// Adds the two halves for run `id` (signal published at `sent_us`) from its history.
void AddBreakdown(aion::bus::NatsConnection& conn, const std::string& id, std::int64_t sent_us,
                  Latencies& out) {
  natsMsg* reply = nullptr;
  const std::string subject = "aion.req." + id + ".history";
  if (natsConnection_Request(&reply, conn.nc(), subject.c_str(), "", 0, 5000) != NATS_OK) return;
  aion::wire::HistoryReply history;
  history.ParseFromArray(natsMsg_GetData(reply), natsMsg_GetDataLength(reply));
  natsMsg_Destroy(reply);
  std::int64_t signal_us = 0, done_us = 0;
  for (const auto& e : history.events()) {
    if (e.has_signal_received()) signal_us = e.recorded_at_us();
    if (e.has_workflow_completed()) done_us = e.recorded_at_us();
  }
  if (signal_us == 0 || done_us == 0) return;
  out.to_recorded.push_back((signal_us - sent_us) / 1000.0);
  out.to_resumed.push_back((done_us - signal_us) / 1000.0);
}

Latencies RunRep(aion::bus::NatsConnection& conn, const std::string& prefix, std::int64_t m,
                 double rate) {
  Observed obs;
  obs.recorded_us.assign(static_cast<std::size_t>(m), 0);
  obs.received_us.assign(static_cast<std::size_t>(m), 0);
  ab::Subscription sub(conn, "aion.evt.timer_signal.*.*", [&](const char* subject, natsMsg* msg) {
    const std::string id = ab::EventWorkflowId(subject);
    const std::int64_t i = id.rfind(prefix, 0) == 0 ? ab::IdIndex(id) : -1;
    if (i < 0 || i >= m) return;
    std::lock_guard<std::mutex> g(obs.mu);
    if (std::string(subject).ends_with(".started")) {
      ++obs.started;
    } else if (std::string(subject).ends_with(".completed")) {
      obs.recorded_us[i] = ab::LifecycleTimeUs(msg);
      obs.received_us[i] = ab::NowUs();
      ++obs.completed;
    }
  });
  StartParked(conn, prefix, m, obs);
  const auto sent = SignalAtRate(conn, prefix, m, rate);
  AwaitCompleted(obs, m);
  Latencies out;
  std::lock_guard<std::mutex> g(obs.mu);
  for (std::int64_t i = 0; i < m; ++i) {
    if (obs.recorded_us[i] == 0) continue;
    out.observed.push_back((obs.recorded_us[i] - sent[i]) / 1000.0);
    out.e2e.push_back((obs.received_us[i] - sent[i]) / 1000.0);
  }
  for (std::int64_t i = 0; i < m; i += std::max<std::int64_t>(1, m / 500)) {
    AddBreakdown(conn, prefix + std::to_string(i), sent[i], out);
  }
  if (static_cast<std::int64_t>(out.observed.size()) < m)
    std::cerr << "warning: only " << out.observed.size() << " of " << m << " signals observed\n";
  return out;
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"signal latency at a fixed rate"};
  double rate = 1000, seconds = 3;
  int reps = 3;
  app.add_option("--rate", rate, "signals per second");
  app.add_option("--seconds", seconds, "duration of one repetition");
  app.add_option("--reps", reps, "repetitions");
  CLI11_PARSE(app, argc, argv);
  const auto m = static_cast<std::int64_t>(rate * seconds);

  ab::TempDir dir("signal");
  auto server = ab::StartNats(dir.path() / "nats");
  auto conn = ab::Connect(server->url(), "bench-signal");
  auto worker = ab::MakeWorker(server->url(), dir.path() / "data");
  ab::StartWorker(*worker, *conn);

  const std::string t = "_" + std::to_string(static_cast<int>(rate));
  ab::Figure p50{"signal_latency_p50_ms" + t, "ms"},
      p99{"signal_latency_p99_ms" + t, "ms", {}, ab::Goal::kAtMost, 2};
  ab::Figure p999{"signal_latency_p999_ms" + t, "ms"}, e2e99{"signal_e2e_p99_ms" + t, "ms"};
  ab::Figure rec50{"signal_to_recorded_p50_ms" + t, "ms"},
      res50{"signal_to_resumed_p50_ms" + t, "ms"};
  ab::Figure rec99{"signal_to_recorded_p99_ms" + t, "ms"},
      res99{"signal_to_resumed_p99_ms" + t, "ms"};
  for (int r = 0; r < reps; ++r) {
    const Latencies l = RunRep(*conn, "sig" + std::to_string(r) + "-", m, rate);
    p50.reps.push_back(ab::Percentile(l.observed, 50));
    p99.reps.push_back(ab::Percentile(l.observed, 99));
    p999.reps.push_back(ab::Percentile(l.observed, 99.9));
    e2e99.reps.push_back(ab::Percentile(l.e2e, 99));
    rec50.reps.push_back(ab::Percentile(l.to_recorded, 50));
    rec99.reps.push_back(ab::Percentile(l.to_recorded, 99));
    res50.reps.push_back(ab::Percentile(l.to_resumed, 50));
    res99.reps.push_back(ab::Percentile(l.to_resumed, 99));
    std::cerr << "rep " << r + 1 << ": p50 " << p50.reps.back() << " p99 " << p99.reps.back()
              << " p99.9 " << p999.reps.back() << " ms; e2e p99 " << e2e99.reps.back() << " ms\n";
  }
  p50.note = p99.note = p999.note =
      std::to_string(m) + " signals per rep at " + std::to_string(static_cast<int>(rate)) +
      "/s; publish -> WorkflowCompleted recorded (run resumed with the signal)";
  e2e99.note = "publish -> completed lifecycle event received by the client";
  ab::Emit(p50);
  ab::Emit(p99);
  ab::Emit(p999);
  ab::Emit(e2e99);
  rec50.note = rec99.note = "sample of 500 per rep: publish -> SignalReceived recorded_at";
  res50.note = res99.note = "sample: SignalReceived -> WorkflowCompleted recorded_at";
  for (const auto* f : {&rec50, &rec99, &res50, &res99}) ab::Emit(*f);
  worker->Terminate();
  return 0;
}

int main(int argc, char** argv) { return aion::bench::Guard(argc, argv, &Main); }
