// aion-worker: the Aion server process (DESIGN §5 command lines).
//
//   aion-worker --nats <url> --data <dir> [--partitions 0-15]
//   aion-worker --dev        starts its own nats-server under <data>/nats
//
// SIGTERM / SIGINT drain gracefully and exit 0. Startup errors print one
// line to stderr and exit 1 (2 for bad flags).
#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include "aion/bus/nats_server_process.h"
#include "aion/worker/worker.h"

namespace {

struct Flags {
  std::string nats_url = "nats://127.0.0.1:4222";
  std::string data_dir;
  std::string partitions;
  std::uint32_t partition_count = 16;
  std::string prefix = "aion";
  std::string log_level = "info";
  bool dev = false;
  int dev_port = -1;
  int executor_threads = 2;
  int activity_threads = 4;
  std::size_t max_resident_runs = 100000;
  std::string event_format = "protobuf";
};

void AddFlags(CLI::App& app, Flags& f) {
  app.add_option("--nats", f.nats_url, "NATS server URL")->envname("AION_NATS_URL");
  app.add_option("--data", f.data_dir, "data directory (LMDB under <data>/lmdb)")
      ->envname("AION_DATA_DIR");
  app.add_option("--partitions", f.partitions, "owned partitions, e.g. 0-3,7 (default: all)");
  app.add_option("--partition-count", f.partition_count, "P, fixed when the streams are created")
      ->check(CLI::Range(1u, 4096u));
  app.add_option("--prefix", f.prefix, "subject prefix");
  app.add_option("--log-level", f.log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--executor-threads", f.executor_threads, "threads that run workflow code")
      ->check(CLI::Range(1, 256));
  app.add_option("--activity-threads", f.activity_threads,
                 "threads that run local activities (a bounded pool)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--max-resident-runs", f.max_resident_runs,
                 "idle runs kept in memory; beyond it the least recently used are evicted and "
                 "rebuilt by replay on their next input (0 = no limit)")
      ->capture_default_str();
  app.add_option("--event-format", f.event_format,
                 "body of lifecycle events and dead letters (Content-Type says which)")
      ->check(CLI::IsMember({"protobuf", "json"}))
      ->capture_default_str();
  app.add_flag("--dev", f.dev, "start a local nats-server too (data dir default ./aion-dev)");
  app.add_option("--dev-port", f.dev_port, "port of the --dev nats-server (default: any free)");
}

// SIGINT/SIGTERM are blocked in every thread (set before any is created) and
// taken synchronously by main with sigwait.
sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

int Fail(const std::string& message) {
  std::cerr << "aion-worker: " << message << "\n";
  return 1;
}

// Starts the --dev nats-server and prints where it is.
aion::Result<std::unique_ptr<aion::bus::NatsServerProcess>> StartDevServer(const Flags& f) {
  aion::bus::NatsServerOptions options;
  options.directory = std::filesystem::path(f.data_dir) / "nats";
  options.prefix = f.prefix;
  options.partitions = f.partition_count;
  options.port = f.dev_port;
  auto server = aion::bus::NatsServerProcess::Start(options);
  if (!server.ok()) return server.status();
  std::cout << "aion-worker --dev: nats-server (pid " << (*server)->pid() << ") at "
            << (*server)->url() << ", data in " << f.data_dir << "\n"
            << "  for the aion CLI in another shell:\n"
            << "  export AION_NATS_URL=" << (*server)->url() << "\n"
            << "  Ctrl-C stops the worker and the server.\n"
            << std::flush;
  return server;
}

aion::Result<aion::worker::WorkerOptions> ToOptions(const Flags& f) {
  aion::worker::WorkerOptions options;
  options.nats_url = f.nats_url;
  options.data_dir = f.data_dir;
  options.partition_count = f.partition_count;
  options.prefix = f.prefix;
  options.executor_threads = f.executor_threads;
  options.activity_threads = f.activity_threads;
  options.max_resident_runs = f.max_resident_runs;
  auto events = aion::bus::ParseEventFormat(f.event_format);
  if (!events.ok()) return events.status();
  options.event_format = *events;
  if (!f.partitions.empty()) {
    auto owned = aion::worker::ParsePartitions(f.partitions, f.partition_count);
    if (!owned.ok()) return owned.status();
    options.partitions = *owned;
  }
  return options;
}

int Run(Flags f) {
  if (f.dev && f.data_dir.empty()) f.data_dir = "aion-dev";
  auto options = ToOptions(f);
  if (!options.ok()) return Fail(options.status().message());
  std::unique_ptr<aion::bus::NatsServerProcess> dev_server;
  if (f.dev) {
    auto server = StartDevServer(f);
    if (!server.ok()) return Fail("cannot start nats-server: " + server.status().message());
    dev_server = std::move(*server);
    options->nats_url = dev_server->url();
  }
  auto worker = aion::worker::Worker::Start(*options);
  if (!worker.ok()) return Fail(worker.status().message());
  const sigset_t stop = StopSignals();
  int signal_number = 0;
  sigwait(&stop, &signal_number);
  spdlog::info("received {}; draining", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  (*worker)->Shutdown();
  if (dev_server) {
    aion::Status stopped = dev_server->Stop();
    if (!stopped.ok()) spdlog::warn("{}", stopped.message());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const sigset_t stop = StopSignals();
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  CLI::App app{"aion-worker: runs Aion workflows from NATS JetStream (DESIGN §5)"};
  Flags flags;
  AddFlags(app, flags);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int printed = app.exit(e);  // prints help, or the error and a hint
    return printed == 0 ? 0 : 2;
  }
  spdlog::set_level(spdlog::level::from_str(flags.log_level));
  return Run(std::move(flags));
}
