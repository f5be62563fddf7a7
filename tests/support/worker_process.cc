#include "support/worker_process.h"

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

}  // namespace

fs::path BinaryPath(const std::string& name) {
  const char* dir = std::getenv("AION_BIN_DIR");
  if (dir == nullptr || *dir == '\0') {
    throw std::runtime_error("AION_BIN_DIR is not set (run the test through ctest)");
  }
  fs::path path = fs::path(dir) / name;
  if (access(path.c_str(), X_OK) != 0) {
    throw std::runtime_error(path.string() + " is missing or not executable (build target '" +
                             name + "' first)");
  }
  return path;
}

WorkerProcess::WorkerProcess(WorkerProcessOptions options) : options_(std::move(options)) {
  if (options_.executable.empty()) options_.executable = BinaryPath("aion-worker");
  log_file_ = options_.data_dir / "aion-worker.log";
}

WorkerProcess::~WorkerProcess() { Kill(); }

Status WorkerProcess::Launch() {
  if (pid_ != 0)
    return InvalidArgument("aion-worker is already running (pid " + std::to_string(pid_) + ")");
  if (options_.nats_url.empty() || options_.data_dir.empty()) {
    return InvalidArgument("WorkerProcessOptions needs nats_url and data_dir");
  }
  std::error_code ec;
  fs::create_directories(options_.data_dir, ec);
  if (ec) return Unavailable("cannot create " + options_.data_dir.string() + ": " + ec.message());
  const int log_fd = open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Unavailable("cannot open " + log_file_.string());
  {
    // Mark each incarnation in the log, so a reader can tell the runs apart.
    std::string banner = "==== test harness: start #" + std::to_string(starts_ + 1) + " ====\n";
    (void)!write(log_fd, banner.data(), banner.size());
  }
  std::vector<std::string> args = {options_.executable.string(), "--nats", options_.nats_url,
                                   "--data", options_.data_dir.string()};
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  const pid_t pid = SpawnChild(args, log_fd, log_fd);
  close(log_fd);
  if (pid < 0) return Unavailable("fork failed for aion-worker");
  pid_ = pid;
  ++starts_;
  return Status::Ok();
}

Status WorkerProcess::Start() {
  AION_RETURN_IF_ERROR(Launch());
  const auto deadline = SteadyClock::now() + options_.start_timeout;
  while (true) {
    if (!Alive()) {
      return Unavailable("aion-worker exited during startup (" + last_exit_ + "); log:\n" +
                         LogTail());
    }
    if (!options_.ready || options_.ready()) return Status::Ok();
    if (SteadyClock::now() >= deadline) {
      Kill();
      return Unavailable("aion-worker was not ready within " +
                         std::to_string(options_.start_timeout.count()) + " ms; log:\n" +
                         LogTail());
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
}

void WorkerProcess::Reaped(int wait_status) {
  last_wait_status_ = wait_status;
  last_exit_ = DescribeWaitStatus(wait_status);
  pid_ = 0;
}

bool WorkerProcess::Alive() {
  if (pid_ == 0) return false;
  int ws = 0;
  if (WaitPid(pid_, milliseconds(0), &ws)) {
    Reaped(ws);
    return false;
  }
  return true;
}

void WorkerProcess::Kill() {
  if (pid_ == 0) return;
  kill(pid_, SIGKILL);
  int ws = 0;
  while (waitpid(pid_, &ws, 0) < 0 && errno == EINTR) {
  }
  Reaped(ws);
  last_verdict_ = Status::Ok();
}

Status WorkerProcess::Terminate() {
  if (pid_ == 0) return last_verdict_;
  const pid_t pid = pid_;
  kill(pid, SIGTERM);
  int ws = 0;
  if (!WaitPid(pid, options_.stop_timeout, &ws)) {
    Kill();
    last_verdict_ = Status(StatusCode::kDeadlineExceeded,
                           "aion-worker pid " + std::to_string(pid) + " did not exit within " +
                               std::to_string(options_.stop_timeout.count()) +
                               " ms of SIGTERM (killed); log:\n" + LogTail());
    return last_verdict_;
  }
  Reaped(ws);
  if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) {
    last_verdict_ = Status::Ok();
  } else {
    last_verdict_ = Internal("aion-worker pid " + std::to_string(pid) + " ended with " +
                             last_exit_ + " after SIGTERM; log:\n" + LogTail());
  }
  return last_verdict_;
}

Status WorkerProcess::Restart() {
  if (pid_ != 0)
    return InvalidArgument("Restart: aion-worker is still running; Kill or Terminate it first");
  return Start();
}

std::string WorkerProcess::LogTail(std::size_t max_bytes) const {
  std::string all = ReadFile(log_file_);
  if (all.size() > max_bytes) all = "..." + all.substr(all.size() - max_bytes);
  return all;
}

ProcessResult RunProcess(const std::vector<std::string>& argv, milliseconds timeout) {
  ProcessResult result;
  if (argv.empty()) throw std::invalid_argument("RunProcess: empty argv");
  char out_name[] = "/tmp/aion-run-out-XXXXXX";
  char err_name[] = "/tmp/aion-run-err-XXXXXX";
  const int out_fd = mkostemp(out_name, O_CLOEXEC);
  const int err_fd = mkostemp(err_name, O_CLOEXEC);
  if (out_fd < 0 || err_fd < 0) throw std::runtime_error("RunProcess: mkostemp failed");
  const pid_t pid = SpawnChild(argv, out_fd, err_fd);
  close(out_fd);
  close(err_fd);
  if (pid < 0) throw std::runtime_error("RunProcess: fork failed");
  int ws = 0;
  if (!WaitPid(pid, timeout, &ws)) {
    kill(pid, SIGKILL);
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    result.timed_out = true;
  }
  if (!result.timed_out && WIFEXITED(ws)) result.exit_code = WEXITSTATUS(ws);
  result.out = ReadFile(out_name);
  result.err = ReadFile(err_name);
  unlink(out_name);
  unlink(err_name);
  return result;
}

}  // namespace aion::testing
