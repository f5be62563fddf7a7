#include "support/worker_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace aion::testing {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string DescribeWaitStatus(int ws) {
  if (WIFEXITED(ws)) return "exit code " + std::to_string(WEXITSTATUS(ws));
  if (WIFSIGNALED(ws)) return "signal " + std::to_string(WTERMSIG(ws));
  return "wait status " + std::to_string(ws);
}

// Everything a child needs, prepared before fork: after it only
// async-signal-safe calls are allowed in a multi-threaded parent.
struct ChildSpec {
  std::vector<std::string> args;
  std::vector<char*> argv;
  int out_fd = -1;
  int err_fd = -1;
  bool die_with_parent = true;

  void Seal() {
    argv.clear();
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
  }
};

// fork + exec; returns the child's pid or -1.
pid_t Spawn(ChildSpec& spec) {
  spec.Seal();
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid != 0) return pid;
  // Child.
  if (spec.die_with_parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
  }
  // A fresh process group of its own is not wanted: signals go to this PID only.
  int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd >= 0) dup2(null_fd, 0);
  dup2(spec.out_fd, 1);
  dup2(spec.err_fd, 2);
  close_range(3, ~0U, 0);
  // Reset signal dispositions the test runner may have changed.
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execv(spec.argv[0], spec.argv.data());
  _exit(127);
}

// Waits for `pid` up to `timeout`; true and `*ws` set if it ended.
bool WaitPid(pid_t pid, milliseconds timeout, int* ws) {
  const auto deadline = SteadyClock::now() + timeout;
  while (true) {
    const pid_t r = waitpid(pid, ws, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) {
      *ws = 0;
      return true;  // not our child any more (should not happen)
    }
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

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
  ChildSpec spec;
  spec.args = {options_.executable.string(), "--nats", options_.nats_url, "--data",
               options_.data_dir.string()};
  spec.args.insert(spec.args.end(), options_.extra_args.begin(), options_.extra_args.end());
  spec.out_fd = log_fd;
  spec.err_fd = log_fd;
  const pid_t pid = Spawn(spec);
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
  ChildSpec spec;
  spec.args = argv;
  spec.out_fd = out_fd;
  spec.err_fd = err_fd;
  const pid_t pid = Spawn(spec);
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
