#include "bench_common.h"

#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "aion/bus/streams.h"
#include "aion/bus/subjects.h"
#include "aion/wire.pb.h"

namespace aion::bench {

namespace {
// stdout carries only the figure lines: the libraries' logs go to stderr.
const bool kLogsToStderr = [] {
  spdlog::set_default_logger(spdlog::stderr_color_mt("bench"));
  return true;
}();
}  // namespace

int Guard(int argc, char** argv, int (*main_fn)(int, char**)) {
  try {
    return main_fn(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << argv[0] << ": " << e.what() << std::endl;
    return 1;
  }
}

// ---- statistics -----------------------------------------------------------

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double rank = std::ceil(p / 100.0 * static_cast<double>(v.size()));
  const std::size_t i = rank < 1 ? 0 : static_cast<std::size_t>(rank) - 1;
  return v[std::min(i, v.size() - 1)];
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
double Millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---- figures --------------------------------------------------------------

namespace {

std::string Num(double v) {
  char buf[64];
  if (std::fabs(v) >= 100 || v == std::floor(v)) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.4g", v);
  }
  return buf;
}

bool Met(const Figure& f, double value) {
  if (f.goal == Goal::kAtLeast) return value >= f.target;
  if (f.goal == Goal::kAtMost) return value <= f.target;
  return true;
}

}  // namespace

void Emit(const Figure& f) {
  const double value = Median(f.reps);
  nlohmann::ordered_json line{
      {"figure", f.name},
      {"value", value},
      {"unit", f.unit},
      {"reps", f.reps},
      {"min", f.reps.empty() ? 0 : *std::min_element(f.reps.begin(), f.reps.end())},
      {"max", f.reps.empty() ? 0 : *std::max_element(f.reps.begin(), f.reps.end())}};
  if (f.goal != Goal::kNone) {
    line["target"] = (f.goal == Goal::kAtLeast ? ">= " : "<= ") + Num(f.target);
    line["met"] = Met(f, value);
  }
  if (!f.note.empty()) line["note"] = f.note;
  std::cout << line.dump() << std::endl;
  std::cerr << "  => " << f.name << " = " << Num(value) << " " << f.unit;
  if (f.goal != Goal::kNone)
    std::cerr << "  (target " << line["target"].get<std::string>()
              << (Met(f, value) ? ", met)" : ", NOT met)");
  std::cerr << std::endl;
}

// ---- process and files ----------------------------------------------------

TempDir::TempDir(const std::string& tag) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/aion-bench-" + tag + "-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + pattern);
  path_ = pattern;
}

TempDir::~TempDir() {
  if (EnvInt("AION_BENCH_KEEP", 0) == 1) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::filesystem::path BinDir() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw std::runtime_error("cannot read /proc/self/exe");
  return self.parent_path();
}

std::int64_t EnvInt(const char* name, std::int64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoll(v, nullptr, 10);
}

Child::Child(std::vector<std::string> args, std::filesystem::path log)
    : args_(std::move(args)), log_(std::move(log)) {}

Child::~Child() { Kill(); }

void Child::Start() {
  if (pid_ != 0) throw std::runtime_error("already running: " + args_[0]);
  const int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + log_.string());
  std::vector<std::string> copy = args_;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    const int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fd);
  if (pid < 0) throw std::runtime_error("fork failed for " + args_[0]);
  pid_ = pid;
}

void Child::Kill() {
  if (pid_ == 0) return;
  kill(pid_, SIGKILL);
  int ws = 0;
  waitpid(pid_, &ws, 0);
  pid_ = 0;
}

bool Child::Terminate() {
  if (pid_ == 0) return true;
  kill(pid_, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  int ws = 0;
  while (waitpid(pid_, &ws, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      Kill();
      return false;
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  pid_ = 0;
  return WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
}

bool Child::Alive() {
  if (pid_ == 0) return false;
  int ws = 0;
  if (waitpid(pid_, &ws, WNOHANG) == pid_) {
    pid_ = 0;
    return false;
  }
  return true;
}

std::string Child::LogTail(std::size_t bytes) const {
  std::ifstream in(log_, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  std::string all = s.str();
  return all.size() > bytes ? all.substr(all.size() - bytes) : all;
}

Rss ReadRss(pid_t pid) {
  Rss rss;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  std::int64_t value = 0;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    fields >> key >> value;
    if (key == "VmRSS:") rss.vm_rss_kib = value;
    if (key == "RssAnon:") rss.rss_anon_kib = value;
    if (key == "RssFile:") rss.rss_file_kib = value;
  }
  return rss;
}

double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = all.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(all.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// ---- NATS -----------------------------------------------------------------

std::unique_ptr<bus::NatsServerProcess> StartNats(const std::filesystem::path& dir) {
  bus::NatsServerOptions options;
  options.directory = dir;
  auto server = bus::NatsServerProcess::Start(options);
  if (!server.ok()) throw std::runtime_error(server.status().ToString());
  std::cerr << "nats-server pid " << (*server)->pid() << " at " << (*server)->url() << "\n";
  return std::move(*server);
}

std::unique_ptr<bus::NatsConnection> Connect(const std::string& url, const std::string& name) {
  bus::NatsConnectionOptions options;
  options.url = url;
  options.name = name;
  options.jetstream_timeout = milliseconds(30000);
  auto conn = bus::NatsConnection::Connect(options);
  if (!conn.ok()) throw std::runtime_error(conn.status().ToString());
  return std::move(*conn);
}

void EnsureAionStreams(bus::NatsConnection& conn) {
  bus::StreamsOptions options;
  auto info = bus::EnsureStreams(conn, bus::Subjects(), options);
  if (!info.ok()) throw std::runtime_error(info.status().ToString());
}

std::unique_ptr<Child> MakeWorker(const std::string& url, const std::filesystem::path& data,
                                  std::vector<std::string> extra) {
  std::filesystem::create_directories(data);
  std::vector<std::string> args{(BinDir() / "aion-worker").string(),
                                "--nats",
                                url,
                                "--data",
                                data.string(),
                                "--log-level",
                                "warn"};
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<Child>(std::move(args), data / "aion-worker.log");
}

bool WorkerAnswers(bus::NatsConnection& conn, milliseconds timeout) {
  natsMsg* reply = nullptr;
  const std::string body = wire::DescribeRequest().SerializeAsString();
  natsStatus s =
      natsConnection_Request(&reply, conn.nc(), "aion.req.bench-ready-probe.describe", body.data(),
                             static_cast<int>(body.size()), timeout.count());
  if (reply != nullptr) natsMsg_Destroy(reply);
  return s == NATS_OK;
}

void StartWorker(Child& worker, bus::NatsConnection& conn, milliseconds timeout) {
  worker.Start();
  const auto deadline = Clock::now() + timeout;
  while (!WorkerAnswers(conn, milliseconds(200))) {
    if (!worker.Alive()) throw std::runtime_error("aion-worker exited:\n" + worker.LogTail());
    if (Clock::now() > deadline) throw std::runtime_error("aion-worker not ready in time");
  }
}

std::int64_t StreamMessages(bus::NatsConnection& conn, const std::string& stream) {
  jsStreamInfo* info = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&info, conn.js(), stream.c_str(), nullptr, &jerr);
  if (s == NATS_NOT_FOUND) return 0;
  if (s != NATS_OK) return -1;
  const auto msgs = static_cast<std::int64_t>(info->State.Msgs);
  jsStreamInfo_Destroy(info);
  return msgs;
}

namespace {

google::protobuf::Value ToValue(const Json& json) {
  google::protobuf::Value value;
  auto s = google::protobuf::util::JsonStringToMessage(json.dump(), &value);
  if (!s.ok()) throw std::runtime_error("bad JSON value");
  return value;
}

}  // namespace

std::string StartBody(const std::string& workflow_type, const Json& input) {
  wire::StartWorkflow start;
  start.set_workflow_type(workflow_type);
  *start.mutable_input() = ToValue(input);
  return start.SerializeAsString();
}

std::string SignalBody(const std::string& name, const Json& input) {
  wire::SignalWorkflow signal;
  signal.set_name(name);
  *signal.mutable_input() = ToValue(input);
  return signal.SerializeAsString();
}

AsyncPublisher::AsyncPublisher(bus::NatsConnection& conn, std::int64_t max_pending) {
  jsOptions options;
  jsOptions_Init(&options);
  options.PublishAsync.MaxPending = max_pending;
  options.PublishAsync.ErrHandler = &AsyncPublisher::OnError;
  options.PublishAsync.ErrHandlerClosure = this;
  options.PublishAsync.StallWait = 60000;
  options.Wait = 30000;
  if (natsConnection_JetStream(&js_, conn.nc(), &options) != NATS_OK) {
    throw std::runtime_error("cannot create a JetStream context");
  }
}

AsyncPublisher::~AsyncPublisher() { jsCtx_Destroy(js_); }

void AsyncPublisher::OnError(jsCtx*, jsPubAckErr* pae, void* closure) {
  static_cast<AsyncPublisher*>(closure)->failures_.fetch_add(1);
  (void)pae;
}

void AsyncPublisher::Publish(const std::string& subject, const std::string& data) {
  natsStatus s =
      js_PublishAsync(js_, subject.c_str(), data.data(), static_cast<int>(data.size()), nullptr);
  if (s != NATS_OK) {
    throw std::runtime_error("js_PublishAsync " + subject + ": " + natsStatus_GetText(s));
  }
}

void AsyncPublisher::Publish(const std::string& subject, const std::string& data,
                             const std::vector<std::pair<std::string, std::string>>& headers) {
  natsMsg* msg = nullptr;
  if (natsMsg_Create(&msg, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size())) !=
      NATS_OK) {
    throw std::runtime_error("natsMsg_Create " + subject);
  }
  for (const auto& [k, v] : headers) natsMsgHeader_Set(msg, k.c_str(), v.c_str());
  natsStatus s = js_PublishMsgAsync(js_, &msg, nullptr);
  if (msg != nullptr) natsMsg_Destroy(msg);  // not taken: it failed
  if (s != NATS_OK) {
    throw std::runtime_error("js_PublishMsgAsync " + subject + ": " + natsStatus_GetText(s));
  }
}

std::int64_t AsyncPublisher::Complete(milliseconds timeout) {
  jsPubOptions options;
  jsPubOptions_Init(&options);
  options.MaxWait = timeout.count();
  natsStatus s = js_PublishAsyncComplete(js_, &options);
  if (s != NATS_OK) throw std::runtime_error("async publishes not acknowledged in time");
  return failures_.load();
}

Subscription::Subscription(bus::NatsConnection& conn, const std::string& subject, Handler on_msg)
    : handler_(std::move(on_msg)) {
  if (natsConnection_Subscribe(&sub_, conn.nc(), subject.c_str(), &Subscription::OnMsg, this) !=
      NATS_OK) {
    throw std::runtime_error("cannot subscribe to " + subject);
  }
  natsSubscription_SetPendingLimits(sub_, -1, -1);
  natsConnection_Flush(conn.nc());
}

Subscription::~Subscription() {
  // Drain: no callback is running or will run once this returns.
  if (natsSubscription_Drain(sub_) == NATS_OK) natsSubscription_WaitForDrainCompletion(sub_, 10000);
  natsSubscription_Destroy(sub_);
}

void Subscription::OnMsg(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto* self = static_cast<Subscription*>(closure);
  self->handler_(natsMsg_GetSubject(msg), msg);
  natsMsg_Destroy(msg);
}

std::string EventWorkflowId(const char* subject) {
  // aion.evt.<type>.<id>.<event>
  std::string s(subject);
  std::vector<std::size_t> dots;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (s[i] == '.') dots.push_back(i);
  if (dots.size() != 4) return "";
  return s.substr(dots[2] + 1, dots[3] - dots[2] - 1);
}

std::int64_t IdIndex(const std::string& id) {
  const auto dash = id.rfind('-');
  if (dash == std::string::npos || dash + 1 >= id.size()) return -1;
  return std::strtoll(id.c_str() + dash + 1, nullptr, 10);
}

std::int64_t LifecycleTimeUs(natsMsg* msg) {
  wire::LifecycleEvent event;
  if (!event.ParseFromArray(natsMsg_GetData(msg), natsMsg_GetDataLength(msg))) return 0;
  return event.time_us();
}

// ---- closed-loop load ------------------------------------------------------

struct ClosedLoop::State {
  std::int64_t total = 0;
  std::int64_t window = 0;
  std::mutex mu;
  std::condition_variable cv;
  std::int64_t in_flight = 0;
  std::int64_t completed = 0;
  std::vector<Clock::time_point> sent;
  std::vector<double> latencies_ms;
  std::vector<char> done;
  Clock::time_point last;
};

ClosedLoop::ClosedLoop(std::int64_t total, std::int64_t window)
    : state_(std::make_shared<State>()) {
  state_->total = total;
  state_->window = window;
  state_->sent.resize(static_cast<std::size_t>(total));
  state_->done.resize(static_cast<std::size_t>(total), 0);
  state_->latencies_ms.reserve(static_cast<std::size_t>(total));
}

void ClosedLoop::Completed(std::int64_t i) {
  const auto now = Clock::now();
  State& s = *state_;
  std::lock_guard<std::mutex> g(s.mu);
  if (i < 0 || i >= s.total || s.done[static_cast<std::size_t>(i)]) return;
  s.done[static_cast<std::size_t>(i)] = 1;
  s.latencies_ms.push_back(Millis(now - s.sent[static_cast<std::size_t>(i)]));
  --s.in_flight;
  ++s.completed;
  s.last = now;
  s.cv.notify_all();
}

LoadResult ClosedLoop::Run(const std::function<void(std::int64_t)>& publish, milliseconds timeout) {
  State& s = *state_;
  const auto start = Clock::now();
  const auto deadline = start + timeout;
  for (std::int64_t i = 0; i < s.total; ++i) {
    {
      std::unique_lock<std::mutex> lk(s.mu);
      if (!s.cv.wait_until(lk, deadline, [&] { return s.in_flight < s.window; })) break;
      ++s.in_flight;
      s.sent[static_cast<std::size_t>(i)] = Clock::now();
    }
    publish(i);
  }
  std::unique_lock<std::mutex> lk(s.mu);
  s.cv.wait_until(lk, deadline, [&] { return s.completed >= s.total; });
  LoadResult r;
  r.completed = s.completed;
  r.seconds = s.completed > 0 ? Seconds(s.last - start) : 0;
  r.latencies_ms = s.latencies_ms;
  return r;
}

LoadResult RunWorkflows(
    bus::NatsConnection& conn, const std::string& workflow_type, const std::string& tag,
    std::int64_t total, std::int64_t window,
    const std::function<void(AsyncPublisher&, const std::string&, std::int64_t)>& publish) {
  ClosedLoop loop(total, window);
  const std::string prefix = tag + "-";
  Subscription sub(conn, "aion.evt." + workflow_type + ".*.completed",
                   [&](const char* subject, natsMsg*) {
                     const std::string id = EventWorkflowId(subject);
                     if (id.rfind(prefix, 0) == 0) loop.Completed(IdIndex(id));
                   });
  AsyncPublisher pub(conn);
  auto result = loop.Run([&](std::int64_t i) { publish(pub, prefix + std::to_string(i), i); },
                         std::chrono::minutes(5));
  pub.Complete();
  if (result.completed < total) {
    std::cerr << "warning: " << tag << ": only " << result.completed << " of " << total
              << " completed in time\n";
  }
  return result;
}

void EmitLatencies(const std::string& name, std::int64_t window, int reps, const std::string& note,
                   const std::function<LoadResult(int)>& load) {
  const std::string w = std::to_string(window);
  Figure p50{name + "_latency_p50_ms_w" + w, "ms"}, p99{name + "_latency_p99_ms_w" + w, "ms"};
  for (int r = 0; r < reps; ++r) {
    const LoadResult res = load(r);
    p50.reps.push_back(Percentile(res.latencies_ms, 50));
    p99.reps.push_back(Percentile(res.latencies_ms, 99));
    std::cerr << "window " << w << " rep " << r + 1 << ": p50 " << p50.reps.back() << " ms, p99 "
              << p99.reps.back() << " ms\n";
  }
  p50.note = p99.note = note;
  Emit(p50);
  Emit(p99);
}

}  // namespace aion::bench
