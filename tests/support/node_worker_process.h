// NodeWorkerProcess: the Node.js activity worker of
// examples/activity-worker-node as a child process of an integration test:
// `node worker.js --nats <url> --queue <q1,q2> [extra args]`.
//
// Contract:
// - node is $AION_NODE or the first `node` in PATH; worker.js is under
//   $AION_SOURCE_DIR/examples/activity-worker-node (set by aion_test), whose
//   node_modules (`npm ci`, done by scripts/setup.sh) must exist: the
//   constructor throws std::runtime_error otherwise, naming the fix.
// - Start() fork/execs it with stdin from /dev/null, stdout appended to
//   `<log_dir>/node-worker.out` and stderr to `<log_dir>/node-worker.err`,
//   and waits until stdout holds a new "ready" line (printed once its
//   consumers exist), the child exits, or `start_timeout` passes.
// - The child gets PR_SET_PDEATHSIG(SIGKILL): call Start/Restart from a
//   thread that outlives it (the test's main thread).
// - It owns exactly one PID and signals only that PID: Kill() = SIGKILL and
//   reap; Terminate() = SIGTERM (the worker drains) and wait. The destructor
//   SIGKILLs a still-running child. Not thread-safe: one owner thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "aion/engine/status.h"

namespace aion::testing {

struct NodeWorkerOptions {
  std::string nats_url;                 // required
  std::vector<std::string> queues;      // required: --queue a,b
  std::filesystem::path log_dir;        // required; created if missing
  std::vector<std::string> extra_args;  // appended (e.g. --ack-wait-ms 15000)
  std::chrono::milliseconds start_timeout{30000};
  std::chrono::milliseconds stop_timeout{30000};  // Terminate(): SIGTERM grace
};

class NodeWorkerProcess {
 public:
  explicit NodeWorkerProcess(NodeWorkerOptions options);
  ~NodeWorkerProcess();
  NodeWorkerProcess(const NodeWorkerProcess&) = delete;
  NodeWorkerProcess& operator=(const NodeWorkerProcess&) = delete;

  // Launches it and waits for its "ready" line; kUnavailable (quoting its
  // stderr) if it exits or is not ready in time (then nothing is left
  // running); kInvalidArgument if already running.
  Status Start();
  // SIGKILL and reap. Idempotent.
  void Kill();
  // SIGTERM and wait up to stop_timeout: ok only for exit code 0 (after a
  // timeout the child is SIGKILLed).
  Status Terminate();
  Status Restart() { return Start(); }

  bool Alive();
  pid_t pid() const { return pid_; }
  int starts() const { return starts_; }
  const std::string& last_exit() const { return last_exit_; }
  const std::filesystem::path& stderr_file() const { return err_file_; }
  std::string StderrTail(std::size_t max_bytes = 4000) const;
  std::string Stderr() const;

 private:
  void Reaped(int wait_status);

  NodeWorkerOptions options_;
  std::filesystem::path node_;
  std::filesystem::path script_;
  std::filesystem::path out_file_;
  std::filesystem::path err_file_;
  pid_t pid_ = 0;
  int starts_ = 0;
  std::string last_exit_;
};

}  // namespace aion::testing
