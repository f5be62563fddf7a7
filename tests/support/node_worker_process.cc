#include "support/node_worker_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/child_process.h"

namespace aion::testing {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Lines of `text` that start with "ready".
std::size_t ReadyLines(const std::string& text) {
  std::size_t n = 0;
  std::istringstream s(text);
  for (std::string line; std::getline(s, line);) n += line.rfind("ready", 0) == 0 ? 1 : 0;
  return n;
}

fs::path FindNode() {
  if (const char* env = std::getenv("AION_NODE"); env != nullptr && *env != '\0') return env;
  if (const char* path = std::getenv("PATH")) {
    std::stringstream s(path);
    for (std::string d; std::getline(s, d, ':');) {
      fs::path p = fs::path(d.empty() ? "." : d) / "node";
      if (access(p.c_str(), X_OK) == 0) return p;
    }
  }
  throw std::runtime_error("node not found in PATH nor $AION_NODE (run scripts/setup.sh)");
}

}  // namespace

NodeWorkerProcess::NodeWorkerProcess(NodeWorkerOptions options) : options_(std::move(options)) {
  const char* src = std::getenv("AION_SOURCE_DIR");
  if (src == nullptr || *src == '\0') {
    throw std::runtime_error("AION_SOURCE_DIR is not set (run the test through ctest)");
  }
  const fs::path dir = fs::path(src) / "examples" / "activity-worker-node";
  script_ = dir / "worker.js";
  if (!fs::exists(dir / "node_modules" / "nats" / "package.json")) {
    throw std::runtime_error(dir.string() +
                             "/node_modules lacks the nats package: run scripts/setup.sh "
                             "(or npm ci there)");
  }
  node_ = FindNode();
  if (options_.nats_url.empty() || options_.queues.empty() || options_.log_dir.empty()) {
    throw std::runtime_error("NodeWorkerOptions needs nats_url, queues and log_dir");
  }
  fs::create_directories(options_.log_dir);
  out_file_ = options_.log_dir / "node-worker.out";
  err_file_ = options_.log_dir / "node-worker.err";
}

NodeWorkerProcess::~NodeWorkerProcess() { Kill(); }

Status NodeWorkerProcess::Start() {
  if (pid_ != 0) {
    return InvalidArgument("node worker is already running (pid " + std::to_string(pid_) + ")");
  }
  const std::size_t ready_before = ReadyLines(ReadFile(out_file_));
  const int out_fd = open(out_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int err_fd = open(err_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out_fd < 0 || err_fd < 0) {
    if (out_fd >= 0) close(out_fd);
    if (err_fd >= 0) close(err_fd);
    return Unavailable("cannot open the node worker's log files in " + options_.log_dir.string());
  }
  {
    const std::string banner =
        "==== test harness: node worker start #" + std::to_string(starts_ + 1) + " ====\n";
    (void)!write(err_fd, banner.data(), banner.size());
  }
  std::string queues;
  for (const auto& q : options_.queues) queues += (queues.empty() ? "" : ",") + q;
  std::vector<std::string> args = {node_.string(),    script_.string(), "--nats",
                                   options_.nats_url, "--queue",        queues};
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  const pid_t pid = SpawnChild(args, out_fd, err_fd);
  close(out_fd);
  close(err_fd);
  if (pid < 0) return Unavailable("fork failed for the node worker");
  pid_ = pid;
  ++starts_;
  const auto deadline = SteadyClock::now() + options_.start_timeout;
  while (true) {
    if (!Alive()) {
      return Unavailable("node worker exited during startup (" + last_exit_ + "); stderr:\n" +
                         StderrTail());
    }
    if (ReadyLines(ReadFile(out_file_)) > ready_before) return Status::Ok();
    if (SteadyClock::now() >= deadline) {
      Kill();
      return Unavailable("node worker was not ready within " +
                         std::to_string(options_.start_timeout.count()) + " ms; stderr:\n" +
                         StderrTail());
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
}

void NodeWorkerProcess::Reaped(int wait_status) {
  last_exit_ = DescribeWaitStatus(wait_status);
  pid_ = 0;
}

bool NodeWorkerProcess::Alive() {
  if (pid_ == 0) return false;
  int ws = 0;
  if (WaitPid(pid_, milliseconds(0), &ws)) {
    Reaped(ws);
    return false;
  }
  return true;
}

void NodeWorkerProcess::Kill() {
  if (pid_ == 0) return;
  kill(pid_, SIGKILL);
  int ws = 0;
  while (waitpid(pid_, &ws, 0) < 0 && errno == EINTR) {
  }
  Reaped(ws);
}

Status NodeWorkerProcess::Terminate() {
  if (pid_ == 0) return Status::Ok();
  const pid_t pid = pid_;
  kill(pid, SIGTERM);
  int ws = 0;
  if (!WaitPid(pid, options_.stop_timeout, &ws)) {
    Kill();
    return Status(StatusCode::kDeadlineExceeded,
                  "node worker pid " + std::to_string(pid) + " did not exit within the grace time");
  }
  Reaped(ws);
  if (last_exit_ != "exit code 0") {
    return Unavailable("node worker pid " + std::to_string(pid) + " ended with " + last_exit_ +
                       "; stderr:\n" + StderrTail());
  }
  return Status::Ok();
}

std::string NodeWorkerProcess::Stderr() const { return ReadFile(err_file_); }

std::string NodeWorkerProcess::StderrTail(std::size_t max_bytes) const {
  const std::string text = ReadFile(err_file_);
  return text.size() <= max_bytes ? text : "..." + text.substr(text.size() - max_bytes);
}

}  // namespace aion::testing
