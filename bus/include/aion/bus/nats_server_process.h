// NatsServerProcess: a real nats-server child process for dev mode and tests.
//
// Writes a config (127.0.0.1 only, a port chosen by the server unless given,
// JetStream with a store dir, the partition mappings of DESIGN §5), starts the
// server, learns its URL from the ports file and waits until it accepts
// connections. Holds flock on <directory>/LOCK while it lives, so no second
// server uses the same store. Owns exactly one PID and signals only that PID. The child dies
// with the thread that started it (PR_SET_PDEATHSIG): start it from a thread
// that lives as long as the server should. Not thread-safe: one owner.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "aion/engine/status.h"

namespace aion::bus {

struct NatsServerOptions {
  std::filesystem::path directory;  // required: config, ports file and log live here
  std::filesystem::path store_dir;  // JetStream store; default <directory>/jetstream
  // The nats-server binary; default: $AION_NATS_SERVER, else found in PATH,
  // /usr/sbin or /usr/local/bin.
  std::string executable;
  std::string prefix = "aion";
  std::uint32_t partitions = 16;
  // The mappings part of the config; unset: NatsMappingsBlock(prefix,
  // partitions). Tests of misconfigured servers give other text ("" = none).
  std::optional<std::string> mappings_config;
  int port = -1;  // -1: any free port, chosen by the server
  std::int64_t max_payload_bytes = std::int64_t{8} << 20;
  std::chrono::milliseconds start_timeout{15000};
  std::chrono::milliseconds stop_timeout{10000};  // SIGTERM grace before SIGKILL
};

// The nats-server config text for `options` listening on `port` (-1: any).
std::string NatsServerConfig(const NatsServerOptions& options, int port);

class NatsServerProcess {
 public:
  // Errors: kInvalidArgument (no directory, binary not found), kUnavailable
  // (the directory is locked by another NatsServerProcess; the server exited
  // or did not accept connections in time: the message quotes the end of its log).
  static Result<std::unique_ptr<NatsServerProcess>> Start(NatsServerOptions options);
  ~NatsServerProcess();  // Stop()
  NatsServerProcess(const NatsServerProcess&) = delete;
  NatsServerProcess& operator=(const NatsServerProcess&) = delete;

  const std::string& url() const { return url_; }  // nats://127.0.0.1:<port>
  int port() const { return port_; }
  pid_t pid() const { return pid_; }  // 0 while not running
  bool running() const { return pid_ != 0; }
  const std::filesystem::path& log_file() const { return log_file_; }

  // SIGTERM, wait up to stop_timeout, then SIGKILL. Idempotent.
  Status Stop();
  // SIGKILL at once (a crash, for tests) and reap the child. Idempotent.
  void Kill();
  // Starts the server again on the same store dir and port (after Stop/Kill).
  Status Restart();

 private:
  explicit NatsServerProcess(NatsServerOptions options);
  Status Launch(int port);
  Status AwaitReady();
  Status WaitForExit(std::chrono::milliseconds timeout);
  std::string LogTail() const;

  NatsServerOptions options_;
  std::filesystem::path executable_;
  std::filesystem::path config_file_;
  std::filesystem::path ports_dir_;
  std::filesystem::path log_file_;
  Status LockDirectory();

  pid_t pid_ = 0;
  int lock_fd_ = -1;  // flock on <directory>/LOCK, held while this object lives
  int port_ = -1;
  std::string url_;
};

}  // namespace aion::bus
