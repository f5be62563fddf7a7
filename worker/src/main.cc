#include "aion/worker/main.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>
#include <memory>

#include "aion/bus/nats_server_process.h"
#include "aion/engine/version.h"
#include "aion/worker/worker.h"
#include "flags.h"

namespace aion::worker {
namespace {

// SIGINT/SIGTERM are blocked in every thread (set before any is created) and
// taken synchronously by Run with sigwait.
sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// Starts the --dev nats-server and prints where it is.
Result<std::unique_ptr<bus::NatsServerProcess>> StartDevServer(const std::string& program,
                                                               const Flags& f) {
  bus::NatsServerOptions options;
  options.directory = std::filesystem::path(f.data_dir) / "nats";
  options.prefix = f.prefix;
  options.partitions = f.partition_count;
  options.port = f.dev_port;
  auto server = bus::NatsServerProcess::Start(options);
  if (!server.ok()) return server.status();
  std::cout << program << " --dev: nats-server (pid " << (*server)->pid() << ") at "
            << (*server)->url() << ", data in " << f.data_dir << "\n"
            << "  for the aion CLI in another shell:\n"
            << "  export AION_NATS_URL=" << (*server)->url() << "\n"
            << "  Ctrl-C stops the worker and the server.\n"
            << std::flush;
  return server;
}

class Process {
 public:
  Process(std::string program, const Registries& registries)
      : program_(std::move(program)), registries_(registries) {}

  int Run(Flags f) {
    if (f.dev && f.data_dir.empty()) f.data_dir = "aion-dev";
    auto options = ToOptions(f);
    if (!options.ok()) return Fail(options.status());
    options->workflows = &registries_.workflows;
    options->activities = &registries_.activities;
    std::unique_ptr<bus::NatsServerProcess> dev_server;
    if (f.dev) {
      auto server = StartDevServer(program_, f);
      if (!server.ok()) return Fail("cannot start nats-server: " + server.status().message());
      dev_server = std::move(*server);
      options->nats_url = dev_server->url();
    }
    auto worker = Worker::Start(*options);
    if (!worker.ok()) return Fail(worker.status());
    const sigset_t stop = StopSignals();
    int signal_number = 0;
    sigwait(&stop, &signal_number);
    spdlog::info("received {}; draining", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
    (*worker)->Shutdown();
    if (dev_server) {
      Status stopped = dev_server->Stop();
      if (!stopped.ok()) spdlog::warn("{}", stopped.message());
    }
    return 0;
  }

 private:
  int Fail(const Status& status) { return Fail(status.message()); }
  int Fail(const std::string& message) {
    std::cerr << program_ << ": " << message << "\n";
    return 1;
  }

  std::string program_;
  const Registries& registries_;
};

std::string ProgramName(int argc, char** argv) {
  if (argc < 1 || argv[0] == nullptr || argv[0][0] == '\0') return "aion-worker";
  return std::filesystem::path(argv[0]).filename().string();
}

}  // namespace

int Main(int argc, char** argv, const Registries& registries) {
  const sigset_t stop = StopSignals();
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  const std::string program = ProgramName(argc, argv);
  CLI::App app{program + ": runs Aion workflows from NATS JetStream"};
  // "aion-worker 0.1.0"; a team's own worker: "orders-worker (Aion 0.1.0)".
  const std::string version(Version());
  app.set_version_flag("--version", program == "aion-worker" ? program + " " + version
                                                             : program + " (Aion " + version + ")");
  Flags flags;
  AddFlags(app, flags);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int printed = app.exit(e);  // prints help or the version, or the error and a hint
    return printed == 0 ? 0 : 2;
  }
  spdlog::set_level(spdlog::level::from_str(flags.log_level));
  return Process(program, registries).Run(std::move(flags));
}

}  // namespace aion::worker
