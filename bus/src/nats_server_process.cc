#include "aion/bus/nats_server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "aion/bus/nats_mappings.h"

namespace aion::bus {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

bool IsExecutable(const fs::path& p) {
  return access(p.c_str(), X_OK) == 0 && fs::is_regular_file(p);
}

Result<fs::path> FindExecutable(const std::string& configured) {
  std::string name = configured;
  if (name.empty()) {
    const char* env = std::getenv("AION_NATS_SERVER");
    name = (env != nullptr && *env != '\0') ? env : "nats-server";
  }
  if (name.find('/') != std::string::npos) {
    if (IsExecutable(name)) return fs::path(name);
    return InvalidArgument("nats-server binary '" + name + "' is not an executable file");
  }
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    for (std::string dir; std::getline(ss, dir, ':');) dirs.push_back(dir);
  }
  for (const char* extra : {"/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"}) {
    dirs.emplace_back(extra);
  }
  for (const auto& dir : dirs) {
    if (!dir.empty() && IsExecutable(fs::path(dir) / name)) return fs::path(dir) / name;
  }
  return InvalidArgument("cannot find '" + name +
                         "' in PATH or /usr/sbin (install the nats-server package or set "
                         "AION_NATS_SERVER)");
}

std::string Quote(const std::string& s) { return nlohmann::json(s).dump(); }

Status WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Unavailable("cannot write " + path.string());
  return Status::Ok();
}

// The port in "nats://127.0.0.1:<port>", or -1.
int PortOf(const std::string& url) {
  auto colon = url.rfind(':');
  if (colon == std::string::npos) return -1;
  return std::atoi(url.c_str() + colon + 1);
}

// The client URL from a ports file ({"nats":["nats://127.0.0.1:4222"],...}), or "".
std::string ReadPortsFile(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return "";
  auto json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.contains("nats") || !json["nats"].is_array() ||
      json["nats"].empty() || !json["nats"][0].is_string()) {
    return "";  // not fully written yet
  }
  return json["nats"][0].get<std::string>();
}

bool AcceptsConnections(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

std::string ExitText(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped";
}

}  // namespace

std::string NatsServerConfig(const NatsServerOptions& o, int port) {
  const fs::path store = o.store_dir.empty() ? o.directory / "jetstream" : o.store_dir;
  std::ostringstream c;
  c << "# written by aion (NatsServerProcess); DESIGN §5\n"
    << "listen: 127.0.0.1:" << port << "\n"
    << "max_payload: " << o.max_payload_bytes << "\n"
    << "jetstream {\n  store_dir: " << Quote(store.string()) << "\n}\n"
    << (o.mappings_config ? *o.mappings_config
                          : NatsMappingsBlock(Subjects(o.prefix), o.partitions));
  return c.str();
}

NatsServerProcess::NatsServerProcess(NatsServerOptions options) : options_(std::move(options)) {
  config_file_ = options_.directory / "nats-server.conf";
  ports_dir_ = options_.directory / "ports";
  log_file_ = options_.directory / "nats-server.log";
}

Result<std::unique_ptr<NatsServerProcess>> NatsServerProcess::Start(NatsServerOptions options) {
  if (options.directory.empty()) return InvalidArgument("NatsServerOptions.directory is empty");
  auto exe = FindExecutable(options.executable);
  if (!exe.ok()) return exe.status();
  std::error_code ec;
  fs::create_directories(options.directory / "ports", ec);
  if (ec) {
    return InvalidArgument("cannot create " + options.directory.string() + ": " + ec.message());
  }
  std::unique_ptr<NatsServerProcess> server(new NatsServerProcess(std::move(options)));
  server->executable_ = *exe;
  AION_RETURN_IF_ERROR(server->LockDirectory());
  AION_RETURN_IF_ERROR(server->Launch(server->options_.port));
  return server;
}

NatsServerProcess::~NatsServerProcess() {
  Status s = Stop();
  if (!s.ok()) spdlog::warn("stopping nats-server: {}", s.ToString());
  if (lock_fd_ >= 0) close(lock_fd_);
}

// nats-server does not lock its store dir: two servers on one would both
// write it. The flock is dropped by the kernel when this process ends.
Status NatsServerProcess::LockDirectory() {
  const fs::path file = options_.directory / "LOCK";
  lock_fd_ = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return InvalidArgument("cannot open " + file.string());
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) == 0) return Status::Ok();
  return Unavailable("'" + options_.directory.string() +
                     "' is in use by another process that runs a nats-server there (it holds "
                     "the lock on " +
                     file.string() + "); one data dir serves one aion-worker --dev");
}

Status NatsServerProcess::Launch(int port) {
  AION_RETURN_IF_ERROR(WriteFile(config_file_, NatsServerConfig(options_, port)));
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(ports_dir_, ec)) fs::remove(entry.path(), ec);
  int log_fd = open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Unavailable("cannot open " + log_file_.string());
  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls are allowed in a multi-threaded parent.
  std::vector<std::string> args = {executable_.string(), "-c", config_file_.string(),
                                   "--ports_file_dir", ports_dir_.string()};
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    return Unavailable("fork failed for nats-server");
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    int null_fd = open("/dev/null", O_RDONLY);
    dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    close_range(3, ~0U, 0);
    // A parent that waits for signals with sigwait blocks them; exec keeps
    // the mask, and a server that cannot see SIGTERM cannot stop gracefully.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(log_fd);
  pid_ = pid;
  return AwaitReady();
}

Status NatsServerProcess::AwaitReady() {
  const auto deadline = Clock::now() + options_.start_timeout;
  const fs::path ports_file = ports_dir_ / ("nats-server_" + std::to_string(pid_) + ".ports");
  while (Clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      return Unavailable("nats-server " + ExitText(status) + " during startup; log:\n" + LogTail());
    }
    std::string url = ReadPortsFile(ports_file);
    if (!url.empty() && AcceptsConnections(PortOf(url))) {
      url_ = url;
      port_ = PortOf(url);
      spdlog::info("nats-server (pid {}) listening on {}", pid_, url_);
      return Status::Ok();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Kill();
  return Unavailable("nats-server did not accept connections within " +
                     std::to_string(options_.start_timeout.count()) + " ms; log:\n" + LogTail());
}

Status NatsServerProcess::WaitForExit(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      return Status::Ok();
    }
    if (Clock::now() >= deadline) return Status(StatusCode::kDeadlineExceeded, "still running");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Status NatsServerProcess::Stop() {
  if (pid_ == 0) return Status::Ok();
  kill(pid_, SIGTERM);
  if (WaitForExit(options_.stop_timeout).ok()) return Status::Ok();
  const pid_t pid = pid_;
  Kill();
  return Unavailable("nats-server (pid " + std::to_string(pid) + ") ignored SIGTERM for " +
                     std::to_string(options_.stop_timeout.count()) + " ms; killed it");
}

void NatsServerProcess::Kill() {
  if (pid_ == 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = 0;
}

Status NatsServerProcess::Restart() {
  Status stopped = Stop();  // it is down either way; the warning is for the log
  if (!stopped.ok()) spdlog::warn("{}", stopped.message());
  return Launch(port_);
}

std::string NatsServerProcess::LogTail() const {
  std::ifstream in(log_file_, std::ios::binary);
  if (!in) return "(no log)";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff start = size > 2000 ? size - 2000 : 0;
  in.seekg(start);
  std::string tail(static_cast<std::size_t>(size - start), '\0');
  in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  return tail;
}

}  // namespace aion::bus
