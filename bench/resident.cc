// bench_resident: memory per idle resident run, and recovery after SIGKILL.
// An aion-worker (--max-resident-runs 0: nothing evicted) gets N
// `timer_signal` runs ({"sleep_ms":0}) that park on signal "go"; memory =
// VmRSS growth of the worker (/proc/<pid>/status) from before them to when the
// worker is idle again, / N. Recovery, 3 times: SIGKILL the worker, restart it
// on the same data, and at once signal a sample of S runs spread over the ids;
// "serves again" = every sampled run has recorded its completion (it resumed
// with the signal): time from the restart to the last such record. Runs are
// rebuilt by replay in id order, so the sample's last completion bounds the
// rebuild of all N. After each recovery RSS/N is measured again.
#include <CLI/CLI.hpp>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>

#include "aion/wire.pb.h"
#include "bench_common.h"

namespace ab = aion::bench;

namespace {

// Waits until the worker's CPU use stays under 5% for 1 s; false on timeout.
bool WaitIdle(pid_t pid, std::chrono::seconds timeout) {
  const auto deadline = ab::Clock::now() + timeout;
  double last = ab::CpuSeconds(pid);
  int quiet = 0;
  while (ab::Clock::now() < deadline) {
    std::this_thread::sleep_for(ab::milliseconds(250));
    const double now = ab::CpuSeconds(pid);
    quiet = now - last < 0.0125 ? quiet + 1 : 0;
    last = now;
    if (quiet >= 4) return true;
  }
  return false;
}

void WaitDrained(aion::bus::NatsConnection& conn) {
  while (ab::StreamMessages(conn, "AION_IN") != 0)
    std::this_thread::sleep_for(ab::milliseconds(50));
}

void PublishAll(aion::bus::NatsConnection& conn, const std::vector<std::string>& subjects,
                const std::string& body) {
  ab::AsyncPublisher pub(conn);
  for (const auto& s : subjects) pub.Publish(s, body);
  if (pub.Complete() != 0) throw std::runtime_error("some publishes failed");
}

std::string ParkedId(std::int64_t i) { return "park-" + std::to_string(i); }

std::uint64_t HistoryLength(aion::bus::NatsConnection& conn, const std::string& id) {
  natsMsg* reply = nullptr;
  const std::string subject = "aion.req." + id + ".describe";
  if (natsConnection_Request(&reply, conn.nc(), subject.c_str(), "", 0, 5000) != NATS_OK) return 0;
  aion::wire::DescribeReply d;
  d.ParseFromArray(natsMsg_GetData(reply), natsMsg_GetDataLength(reply));
  natsMsg_Destroy(reply);
  return d.history_length();
}

// Warm-up (threads, allocator arenas, first LMDB pages): 2,000 noop runs;
// returns the worker's RSS once it is idle again.
ab::Rss WarmBaseline(aion::bus::NatsConnection& conn, ab::Child& worker) {
  std::vector<std::string> warm;
  for (int i = 0; i < 2000; ++i) warm.push_back("aion.wf.warm-" + std::to_string(i) + ".start");
  PublishAll(conn, warm, ab::StartBody("noop", aion::Json::object()));
  WaitDrained(conn);
  WaitIdle(worker.pid(), std::chrono::minutes(2));
  return ab::ReadRss(worker.pid());
}

// Starts `total` timer_signal runs that park on signal "go"; returns the
// worker's RSS once it is idle again (all parked, outbox drained).
ab::Rss ParkRuns(aion::bus::NatsConnection& conn, ab::Child& worker, std::int64_t total) {
  std::vector<std::string> starts;
  for (std::int64_t i = 0; i < total; ++i) starts.push_back("aion.wf." + ParkedId(i) + ".start");
  const auto t0 = ab::Clock::now();
  PublishAll(conn, starts,
             ab::StartBody("timer_signal", aion::Json{{"sleep_ms", 0}, {"signal", "go"}}));
  WaitDrained(conn);
  if (!WaitIdle(worker.pid(), std::chrono::minutes(10))) std::cerr << "warning: never idle\n";
  std::cerr << total << " runs parked in " << ab::Seconds(ab::Clock::now() - t0) << " s\n";
  return ab::ReadRss(worker.pid());
}

struct Recovery {
  double serve_s = 0;  // restart -> last sampled run resumed
  double idle_s = 0;   // restart -> worker idle again (rebuild finished)
  double up_s = 0;     // restart -> first describe answered
};

// SIGKILL, restart, signal `sample` (ids), wait for their completions.
Recovery KillAndRecover(aion::bus::NatsConnection& conn, ab::Child& worker,
                        const std::vector<std::int64_t>& sample) {
  std::mutex mu;
  std::int64_t done = 0, last_us = 0;
  std::set<std::string> waiting;  // sampled ids whose completion is not seen yet
  for (auto i : sample) waiting.insert(ParkedId(i));
  ab::Subscription sub(conn, "aion.evt.timer_signal.*.completed",
                       [&](const char* subject, natsMsg* msg) {
                         std::lock_guard<std::mutex> g(mu);
                         if (waiting.erase(ab::EventWorkflowId(subject)) == 0) return;
                         ++done;
                         last_us = std::max(last_us, ab::LifecycleTimeUs(msg));
                       });
  std::vector<std::string> subjects;
  for (auto i : sample) subjects.push_back("aion.wf." + ParkedId(i) + ".signal");
  worker.Kill();
  const auto t0 = ab::Clock::now();
  const std::int64_t t0_us = ab::NowUs();
  worker.Start();
  PublishAll(conn, subjects, ab::SignalBody("go", aion::Json{{"by", "bench"}}));
  Recovery r;
  while (!ab::WorkerAnswers(conn, ab::milliseconds(50))) {
    if (!worker.Alive()) throw std::runtime_error("worker died:\n" + worker.LogTail());
  }
  r.up_s = ab::Seconds(ab::Clock::now() - t0);
  const auto deadline = ab::Clock::now() + std::chrono::minutes(5);
  while (ab::Clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> g(mu);
      if (done >= static_cast<std::int64_t>(sample.size())) break;
    }
    std::this_thread::sleep_for(ab::milliseconds(10));
  }
  WaitIdle(worker.pid(), std::chrono::minutes(5));
  r.idle_s = ab::Seconds(ab::Clock::now() - t0) - 1.0;  // WaitIdle needs 1 s of quiet
  std::lock_guard<std::mutex> g(mu);
  if (done < static_cast<std::int64_t>(sample.size()))
    throw std::runtime_error("sampled runs did not all complete after the restart");
  r.serve_s = (last_us - t0_us) / 1e6;
  return r;
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"memory per idle resident run; recovery after SIGKILL"};
  std::int64_t n = 100000, sample = 1000;
  int reps = 3;
  app.add_option("-n,--runs", n, "parked runs that stay open through every recovery");
  app.add_option("--sample", sample, "runs signalled after each restart");
  app.add_option("--reps", reps, "recoveries");
  CLI11_PARSE(app, argc, argv);
  const std::int64_t total = n + sample * reps;  // >= n open at every restart

  ab::TempDir dir("resident");
  auto server = ab::StartNats(dir.path() / "nats");
  auto conn = ab::Connect(server->url(), "bench-resident");
  auto worker = ab::MakeWorker(server->url(), dir.path() / "data", {"--max-resident-runs", "0"});
  ab::StartWorker(*worker, *conn);

  const ab::Rss before = WarmBaseline(*conn, *worker);
  const ab::Rss after = ParkRuns(*conn, *worker, total);
  const std::uint64_t events = HistoryLength(*conn, ParkedId(total - 1));
  std::cerr << "history length " << events << "; VmRSS " << before.vm_rss_kib << " -> "
            << after.vm_rss_kib << " KiB (anon " << before.rss_anon_kib << " -> "
            << after.rss_anon_kib << ")\n";

  ab::Figure mem{"memory_per_idle_run_bytes", "B", {}, ab::Goal::kAtMost, 2048};
  ab::Figure anon{"memory_anon_per_idle_run_bytes", "B"};
  auto per_run = [&](const ab::Rss& now, std::int64_t open) {
    mem.reps.push_back((now.vm_rss_kib - before.vm_rss_kib) * 1024.0 / open);
    anon.reps.push_back((now.rss_anon_kib - before.rss_anon_kib) * 1024.0 / open);
  };
  per_run(after, total);

  ab::Figure serve{"recovery_serve_again_s", "s", {}, ab::Goal::kAtMost, 5};
  ab::Figure rebuild{"recovery_rebuild_idle_s", "s"};
  ab::Figure replay{"recovery_replay_events_per_s", "1/s"};
  for (int r = 0; r < reps; ++r) {
    std::vector<std::int64_t> ids;
    for (std::int64_t j = 0; j < sample; ++j) ids.push_back(j * (total / sample) + r);
    const std::int64_t open = total - sample * r;
    const Recovery rec = KillAndRecover(*conn, *worker, ids);
    serve.reps.push_back(rec.serve_s);
    rebuild.reps.push_back(rec.idle_s);
    replay.reps.push_back(static_cast<double>(open) * events /
                          std::max(rec.idle_s - rec.up_s, 1e-3));
    per_run(ab::ReadRss(worker->pid()), open - sample);
    std::cerr << "recovery " << r + 1 << " with " << open << " open: up " << rec.up_s
              << " s, sample served " << rec.serve_s << " s, idle " << rec.idle_s << " s\n";
  }
  mem.note = "VmRSS growth / runs; rep 1 after parking " + std::to_string(total) +
             " runs, reps 2.. after each recovery (worker with --max-resident-runs 0)";
  anon.note = "RssAnon growth (heap, stacks; without the LMDB map) / runs";
  serve.note =
      "SIGKILL+restart -> the last of " + std::to_string(sample) +
      " sampled runs (signalled at restart) recorded its completion; >= " + std::to_string(n) +
      " open runs";
  rebuild.note = "restart -> worker CPU idle again (all open runs rebuilt)";
  replay.note = "open runs x " + std::to_string(events) +
                " events / (first answer .. idle): replay of short histories in the worker";
  ab::Emit(mem);
  ab::Emit(anon);
  ab::Emit(serve);
  ab::Emit(rebuild);
  ab::Emit(replay);
  worker->Terminate();
  return 0;
}

int main(int argc, char** argv) { return aion::bench::Guard(argc, argv, &Main); }
