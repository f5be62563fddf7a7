// WorkerProcess: a real `aion-worker` child process for integration tests, and
// RunProcess: runs a short command (the `aion` CLI) and captures its output.
//
// Contract of WorkerProcess:
// - Start() fork/execs `$AION_BIN_DIR/aion-worker --nats <url> --data <dir>
//   [extra args]` (or `options.executable`), with stdin from /dev/null and
//   stdout+stderr appended to `<data dir>/aion-worker.log`, then polls
//   `options.ready` (e.g. "a describe request for an unknown id answers
//   not_found") until it holds, the child exits, or `start_timeout` passes.
// - The child gets PR_SET_PDEATHSIG(SIGKILL): it dies with the *thread* that
//   started it, so call Start/Restart from a thread that outlives the worker
//   (the test's main thread).
// - It owns exactly one PID and signals only that PID: Kill() = SIGKILL and
//   reap (a crash); Terminate() = SIGTERM and wait for the exit (graceful
//   drain), reporting a non-zero exit code or a timeout as an error;
//   Restart() = Start() again with the same options (same data dir).
// - The destructor SIGKILLs a still-running child.
// - Depends on nothing but POSIX (no NATS): the readiness check is the
//   caller's. Not thread-safe: one owner thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "aion/engine/status.h"

namespace aion::testing {

// $AION_BIN_DIR/<name>; throws std::runtime_error if AION_BIN_DIR is unset or
// the file is not executable.
std::filesystem::path BinaryPath(const std::string& name);

struct WorkerProcessOptions {
  std::string nats_url;                 // required
  std::filesystem::path data_dir;       // required; created if missing
  std::vector<std::string> extra_args;  // appended after --nats/--data
  std::filesystem::path executable;     // default BinaryPath("aion-worker")
  std::function<bool()> ready;          // polled after launch; null: ready at once
  std::chrono::milliseconds start_timeout{30000};
  std::chrono::milliseconds stop_timeout{30000};  // Terminate(): SIGTERM grace
};

class WorkerProcess {
 public:
  explicit WorkerProcess(WorkerProcessOptions options);
  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  // Launches the worker and waits until `ready` holds. kUnavailable (quoting
  // the end of the log) if it exits or is not ready in time; then no child
  // is left running. kInvalidArgument if already running.
  Status Start();
  // SIGKILL and reap. Idempotent.
  void Kill();
  // SIGTERM and wait up to stop_timeout. Ok only if it exited with code 0;
  // else an error naming the exit code or signal (after a timeout the child
  // is SIGKILLed). Idempotent once stopped (returns the last verdict).
  Status Terminate();
  // Start() again after Kill/Terminate (same data dir, same arguments).
  Status Restart();

  // True while the child runs (reaps it, without blocking, if it exited).
  bool Alive();
  pid_t pid() const { return pid_; }
  int starts() const { return starts_; }
  const std::filesystem::path& log_file() const { return log_file_; }
  // The last `max_bytes` of the log.
  std::string LogTail(std::size_t max_bytes = 4000) const;
  // How the last child ended: "exit code N", "signal N" or "" if none ended.
  const std::string& last_exit() const { return last_exit_; }

 private:
  Status Launch();
  void Reaped(int wait_status);

  WorkerProcessOptions options_;
  std::filesystem::path log_file_;
  pid_t pid_ = 0;
  int starts_ = 0;
  int last_wait_status_ = 0;
  std::string last_exit_;
  Status last_verdict_;
};

struct ProcessResult {
  int exit_code = -1;  // -1 if killed by a signal or timed out
  bool timed_out = false;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `argv` (argv[0] is a path) to completion with stdin from /dev/null,
// capturing stdout and stderr; SIGKILLs it after `timeout`.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace aion::testing
