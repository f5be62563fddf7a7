// Shared helpers of the benchmark programs (bench/): statistics, the JSON
// figure lines bench/run collects, a temp dir, a nats-server, worker child
// processes (spawn, SIGKILL/SIGTERM by PID, RSS), and the NATS client side
// (async JetStream publishing, start/signal bodies, lifecycle subscriptions).
// Every program prints progress on stderr and one JSON line per figure on
// stdout.
#pragma once

#include <nats/nats.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "aion/bus/nats_connection.h"
#include "aion/bus/nats_server_process.h"
#include "aion/engine/payload.h"

namespace aion::bench {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Runs a program's `main_fn`; an exception is printed and ends it with exit
// code 1 after unwinding, so temp dirs are removed and children stopped.
int Guard(int argc, char** argv, int (*main_fn)(int, char**));

// ---- statistics -----------------------------------------------------------

double Median(std::vector<double> v);
// p in [0, 100], nearest-rank on a sorted copy; 0 for an empty vector.
double Percentile(std::vector<double> v, double p);
double Seconds(Clock::duration d);
double Millis(Clock::duration d);
std::int64_t NowUs();  // system clock, microseconds since the epoch

// ---- figures --------------------------------------------------------------

enum class Goal { kNone, kAtLeast, kAtMost };

struct Figure {
  std::string name;
  std::string unit;
  std::vector<double> reps;  // one value per repetition; the figure is their median
  Goal goal = Goal::kNone;
  double target = 0;
  std::string note;  // what exactly was measured (short)
};

// Prints the figure as one JSON line on stdout (and a human line on stderr).
void Emit(const Figure& figure);

// ---- process and files ----------------------------------------------------

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on
// destruction unless AION_BENCH_KEEP=1.
class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The directory of the running executable (build-bench/bin): where
// aion-worker and the other bench programs are.
std::filesystem::path BinDir();

// An integer from the environment, or `fallback`.
std::int64_t EnvInt(const char* name, std::int64_t fallback);

// A child process (fork + exec), stdout/stderr appended to `log`. It dies
// with the parent (PR_SET_PDEATHSIG). Signals only its own PID.
class Child {
 public:
  Child(std::vector<std::string> args, std::filesystem::path log);
  ~Child();  // Kill() if still running
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  void Start();      // throws std::runtime_error if fork/exec fails
  void Kill();       // SIGKILL and reap
  bool Terminate();  // SIGTERM, wait up to 30 s (then SIGKILL); true on exit 0
  bool Alive();
  pid_t pid() const { return pid_; }
  std::string LogTail(std::size_t bytes = 2000) const;

 private:
  std::vector<std::string> args_;
  std::filesystem::path log_;
  pid_t pid_ = 0;
};

struct Rss {
  std::int64_t vm_rss_kib = 0;    // VmRSS
  std::int64_t rss_anon_kib = 0;  // RssAnon: heap, stacks (no mapped files)
  std::int64_t rss_file_kib = 0;  // RssFile: mapped files (the LMDB map)
};
Rss ReadRss(pid_t pid);
// utime + stime of `pid` in seconds (/proc/<pid>/stat).
double CpuSeconds(pid_t pid);

// ---- NATS -----------------------------------------------------------------

// A nats-server on 127.0.0.1, port chosen at run time, JetStream under `dir`,
// with Aion's partition mappings (16 partitions).
std::unique_ptr<bus::NatsServerProcess> StartNats(const std::filesystem::path& dir);
std::unique_ptr<bus::NatsConnection> Connect(const std::string& url, const std::string& name);

// Creates the AION_* streams as the worker would (so input can be published
// before any worker runs).
void EnsureAionStreams(bus::NatsConnection& conn);

// An aion-worker child on `url` with `data` dir; `extra` flags appended.
std::unique_ptr<Child> MakeWorker(const std::string& url, const std::filesystem::path& data,
                                  std::vector<std::string> extra = {});
// Starts it and waits until it answers a describe request (≤ `timeout`).
void StartWorker(Child& worker, bus::NatsConnection& conn,
                 milliseconds timeout = milliseconds(60000));
// True when some worker answers aion.req.<id>.describe within `timeout`.
bool WorkerAnswers(bus::NatsConnection& conn, milliseconds timeout);

// Messages in stream `stream` (0 if it does not exist); -1 on error.
std::int64_t StreamMessages(bus::NatsConnection& conn, const std::string& stream);

// Wire bodies (protobuf binary).
std::string StartBody(const std::string& workflow_type, const Json& input);
std::string SignalBody(const std::string& name, const Json& input);

// JetStream async publishing with a bounded number in flight; counts the
// publishes the server refused.
class AsyncPublisher {
 public:
  explicit AsyncPublisher(bus::NatsConnection& conn, std::int64_t max_pending = 4096);
  ~AsyncPublisher();
  AsyncPublisher(const AsyncPublisher&) = delete;
  AsyncPublisher& operator=(const AsyncPublisher&) = delete;
  void Publish(const std::string& subject, const std::string& data);
  // With headers (name, value), e.g. Content-Type and Nats-Msg-Id.
  void Publish(const std::string& subject, const std::string& data,
               const std::vector<std::pair<std::string, std::string>>& headers);
  // Waits until every publish got its PubAck; returns the number of failures.
  std::int64_t Complete(milliseconds timeout = milliseconds(120000));

 private:
  static void OnError(jsCtx* js, jsPubAckErr* pae, void* closure);
  jsCtx* js_ = nullptr;
  std::atomic<std::int64_t> failures_{0};
};

// A core-NATS subscription (no pending limits) calling `on_msg(subject, msg)`
// on nats.c's delivery thread.
class Subscription {
 public:
  using Handler = std::function<void(const char* subject, natsMsg* msg)>;
  Subscription(bus::NatsConnection& conn, const std::string& subject, Handler on_msg);
  ~Subscription();
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

 private:
  static void OnMsg(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);
  Handler handler_;
  natsSubscription* sub_ = nullptr;
};

// The <id> of aion.evt.<type>.<id>.<event>; "" if the subject has another shape.
std::string EventWorkflowId(const char* subject);
// The trailing integer of an id "<tag>-<n>"; -1 if none.
std::int64_t IdIndex(const std::string& id);
// The time_us (recorded_at of the event) of a LifecycleEvent body; 0 if undecodable.
std::int64_t LifecycleTimeUs(natsMsg* msg);

// ---- closed-loop load ------------------------------------------------------

struct LoadResult {
  double seconds = 0;                // first publish to last completion
  std::vector<double> latencies_ms;  // per item: publish to completion seen
  std::int64_t completed = 0;
};

// Keeps `window` items in flight until `total` completed (or `timeout`):
// `publish(i)` sends item i; the caller calls `Completed(i)` for each item
// when its completion is seen. Latency = publish to Completed.
class ClosedLoop {
 public:
  ClosedLoop(std::int64_t total, std::int64_t window);
  void Completed(std::int64_t i);
  LoadResult Run(const std::function<void(std::int64_t)>& publish, milliseconds timeout);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// Runs `total` workflows of `workflow_type` with `window` in flight, ids
// "<tag>-<i>"; `publish(pub, id, i)` publishes what run i needs (its start,
// a signal, ...). A run is done when aion.evt.<type>.<id>.completed arrives.
LoadResult RunWorkflows(
    bus::NatsConnection& conn, const std::string& workflow_type, const std::string& tag,
    std::int64_t total, std::int64_t window,
    const std::function<void(AsyncPublisher&, const std::string&, std::int64_t)>& publish);

// Emits <name>_latency_p50_ms_w<window> and ..._p99_... from `reps` loads,
// `load(rep)` each.
void EmitLatencies(const std::string& name, std::int64_t window, int reps, const std::string& note,
                   const std::function<LoadResult(int)>& load);

}  // namespace aion::bench
