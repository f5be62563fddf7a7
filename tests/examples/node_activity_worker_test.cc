// The Node.js activity worker (examples/activity-worker-node) against a real
// nats-server, with this test playing the engine's side of the wire contract
// (DESIGN §5): it creates AION_TASKS, publishes ActivityTask JSON to
// aion.task.q1, answers heartbeats on aion.req.<id>.heartbeat (which the
// server maps to aion.api.<p>.<id>.heartbeat), sends cancel notes on
// aion.task.q1.cancel and reads the results the worker publishes to
// aion.wf.<id>.activity_result (mapped to aion.in.<p>.<id>.activity_result)
// from a stream of its own. It needs only nats.c and POSIX, not the engine:
// the end-to-end test with aion-worker is elsewhere.
//
// Every process it starts (nats-server, node) is a child of this process,
// dies with it (PR_SET_PDEATHSIG) and is signalled by its PID only.
#define BOOST_TEST_MODULE node_activity_worker
#include <fcntl.h>
#include <nats/nats.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.h"
#include "support/temp_dir.h"
#include "support/wait.h"

namespace aion::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

std::string Tail(const std::string& text, std::size_t n = 3000) {
  return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

std::size_t Count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// The first executable `name` in $PATH, then in `extra` directories.
fs::path FindExecutable(const std::string& name, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::stringstream s(path);
    for (std::string d; std::getline(s, d, ':');) dirs.push_back(d.empty() ? "." : d);
  }
  dirs.insert(dirs.end(), extra.begin(), extra.end());
  for (const auto& d : dirs) {
    fs::path p = fs::path(d) / name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  throw std::runtime_error(name + " not found in PATH (run scripts/setup.sh)");
}

// A child process with stdout and stderr appended to files. It owns one PID
// and signals only that PID; the destructor SIGKILLs it if still running.
class Child {
 public:
  Child(const std::vector<std::string>& args, const fs::path& out, const fs::path& err) {
    const int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const int err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out_fd < 0 || err_fd < 0) throw std::runtime_error("cannot open " + out.string());
    const pid_t pid = SpawnChild(args, out_fd, err_fd);
    close(out_fd);
    close(err_fd);
    if (pid < 0) throw std::runtime_error("fork failed for " + args[0]);
    pid_ = pid;
  }
  ~Child() { Kill(); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& last_exit() const { return last_exit_; }

  // True while it runs; reaps it if it ended.
  bool Alive() {
    if (pid_ == 0) return false;
    int ws = 0;
    const pid_t r = waitpid(pid_, &ws, WNOHANG);
    if (r == 0) return true;
    Reaped(r == pid_ ? ws : 0);
    return false;
  }

  // SIGKILL and reap. Idempotent.
  void Kill() {
    if (pid_ == 0) return;
    kill(pid_, SIGKILL);
    int ws = 0;
    while (waitpid(pid_, &ws, 0) < 0 && errno == EINTR) {
    }
    Reaped(ws);
  }

  // SIGTERM and wait up to `limit`: how it ended ("exit code 0", ...), or
  // "timeout" (then it is SIGKILLed).
  std::string Terminate(milliseconds limit) {
    if (pid_ == 0) return last_exit_;
    kill(pid_, SIGTERM);
    if (!WaitFor([&] { return !Alive(); }, limit)) {
      Kill();
      return "timeout";
    }
    return last_exit_;
  }

 private:
  void Reaped(int ws) {
    last_exit_ = DescribeWaitStatus(ws);
    pid_ = 0;
  }

  pid_t pid_ = 0;
  std::string last_exit_;
};

// A nats-server on 127.0.0.1, port chosen by the server, JetStream in a temp
// dir, with the subject mappings of DESIGN §5 (16 partitions).
class NatsServer {
 public:
  NatsServer() : dir_("aion-node-worker-test") {
    const fs::path conf = dir_.path() / "nats.conf";
    std::ofstream(conf) << "listen: \"127.0.0.1:-1\"\n"
                        << "jetstream { store_dir: \"" << (dir_.path() / "js").string() << "\" }\n"
                        << "ports_file_dir: \"" << dir_.path().string() << "\"\n"
                        << "mappings = {\n"
                        << "  \"aion.wf.*.*\": \"aion.in.{{partition(16,1)}}.{{wildcard(1)}}."
                           "{{wildcard(2)}}\"\n"
                        << "  \"aion.req.*.*\": \"aion.api.{{partition(16,1)}}.{{wildcard(1)}}."
                           "{{wildcard(2)}}\"\n"
                        << "}\n";
    fs::path bin;
    if (const char* env = std::getenv("AION_NATS_SERVER"); env != nullptr && *env != '\0') {
      bin = env;
    } else {
      bin = FindExecutable("nats-server", {"/usr/sbin", "/usr/local/bin"});
    }
    const fs::path log = dir_.path() / "nats-server.log";
    process_ = std::make_unique<Child>(std::vector<std::string>{bin.string(), "-c", conf.string()},
                                       log, log);
    const fs::path ports =
        dir_.path() / ("nats-server_" + std::to_string(process_->pid()) + ".ports");
    const std::regex url_re(R"((nats://127\.0\.0\.1:\d+))");
    const bool up = WaitFor(
        [&] {
          std::smatch m;
          const std::string text = ReadFile(ports);
          if (!std::regex_search(text, m, url_re)) return false;
          url_ = m[1];
          return true;
        },
        15s);
    if (!up) {
      throw std::runtime_error("nats-server did not start (" +
                               (process_->Alive() ? "running" : process_->last_exit()) +
                               "); log:\n" + Tail(ReadFile(log)));
    }
  }

  const std::string& url() const { return url_; }
  const fs::path& dir() const { return dir_.path(); }

 private:
  TempDir dir_;
  std::unique_ptr<Child> process_;
  std::string url_;
};

void Check(natsStatus s, const std::string& what, jsErrCode jerr = static_cast<jsErrCode>(0)) {
  if (s != NATS_OK) {
    throw std::runtime_error(what + ": " + natsStatus_GetText(s) + " (js error " +
                             std::to_string(static_cast<int>(jerr)) + ", " +
                             nats_GetLastError(nullptr) + ")");
  }
}

std::string Body(natsMsg* msg) {
  const char* d = natsMsg_GetData(msg);
  return d == nullptr ? "" : std::string(d, static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
}

std::string Header(natsMsg* msg, const char* key) {
  const char* v = nullptr;
  return natsMsgHeader_Get(msg, key, &v) == NATS_OK && v != nullptr ? v : "";
}

// The n-th (0-based) dot-separated token of a subject.
std::string Token(const std::string& subject, int n) {
  std::stringstream s(subject);
  std::string t;
  for (int i = 0; i <= n; ++i) {
    if (!std::getline(s, t, '.')) return "";
  }
  return t;
}

struct StreamInfo {
  jsStreamInfo* si = nullptr;
  ~StreamInfo() { jsStreamInfo_Destroy(si); }
};
struct ConsumerInfo {
  jsConsumerInfo* ci = nullptr;
  ~ConsumerInfo() { jsConsumerInfo_Destroy(ci); }
};

// The test's own NATS connection: plays the engine and the operator.
class Client {
 public:
  explicit Client(const std::string& url) {
    Check(natsConnection_ConnectTo(&nc_, url.c_str()), "connect " + url);
    Check(natsConnection_JetStream(&js_, nc_, nullptr), "jetstream context");
  }
  ~Client() {
    jsCtx_Destroy(js_);
    natsConnection_Destroy(nc_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  natsConnection* nc() { return nc_; }
  jsCtx* js() { return js_; }

  void AddStream(const char* name, const char* subject, jsRetentionPolicy retention) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = name;
    const char* subjects[] = {subject};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Retention = retention;
    cfg.Storage = js_FileStorage;
    cfg.Duplicates = int64_t{120} * 1000 * 1000 * 1000;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    jsStreamInfo* si = nullptr;
    Check(js_AddStream(&si, js_, &cfg, nullptr, &jerr), std::string("add stream ") + name, jerr);
    jsStreamInfo_Destroy(si);
  }

  void JsPublish(const std::string& subject, const std::string& data,
                 const std::map<std::string, std::string>& headers) {
    natsMsg* msg = nullptr;
    Check(
        natsMsg_Create(&msg, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size())),
        "create message");
    for (const auto& [k, v] : headers) natsMsgHeader_Set(msg, k.c_str(), v.c_str());
    jsErrCode jerr = static_cast<jsErrCode>(0);
    jsPubAck* ack = nullptr;
    const natsStatus s = js_PublishMsg(&ack, js_, msg, nullptr, &jerr);
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(msg);
    Check(s, "publish " + subject, jerr);
  }

  void Publish(const std::string& subject, const std::string& data) {
    Check(natsConnection_Publish(nc_, subject.c_str(), data.data(), static_cast<int>(data.size())),
          "publish " + subject);
    Check(natsConnection_Flush(nc_), "flush");
  }

  void GetStream(const char* name, StreamInfo& out) {
    jsErrCode jerr = static_cast<jsErrCode>(0);
    Check(js_GetStreamInfo(&out.si, js_, name, nullptr, &jerr), std::string("stream info ") + name,
          jerr);
  }

  bool GetConsumer(const char* stream, const char* name, ConsumerInfo& out) {
    jsErrCode jerr = static_cast<jsErrCode>(0);
    return js_GetConsumerInfo(&out.ci, js_, stream, name, nullptr, &jerr) == NATS_OK;
  }

  std::uint64_t StreamMessages(const char* name) {
    StreamInfo info;
    GetStream(name, info);
    return info.si->State.Msgs;
  }

 private:
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
};

// A result the worker published, as stored in the test's results stream.
struct Result {
  std::string subject;  // aion.in.<p>.<workflow id>.activity_result
  std::string workflow_id;
  std::string msg_id;
  std::string content_type;
  json body;
};

// Reads the results stream (aion.in.*.*.activity_result) with a durable pull
// consumer; results of other workflows are kept for later calls.
class ResultReader {
 public:
  explicit ResultReader(Client& client) {
    client.AddStream("TEST_RESULTS", "aion.in.*.*.activity_result", js_LimitsPolicy);
    jsErrCode jerr = static_cast<jsErrCode>(0);
    Check(js_PullSubscribe(&sub_, client.js(), "aion.in.*.*.activity_result", "test-results",
                           nullptr, nullptr, &jerr),
          "pull subscribe results", jerr);
  }
  ~ResultReader() { natsSubscription_Destroy(sub_); }
  ResultReader(const ResultReader&) = delete;
  ResultReader& operator=(const ResultReader&) = delete;

  // The result for `workflow_id`, or nullopt after `timeout`.
  std::optional<Result> For(const std::string& workflow_id, milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      for (auto it = kept_.begin(); it != kept_.end(); ++it) {
        if (it->workflow_id == workflow_id) {
          Result r = std::move(*it);
          kept_.erase(it);
          return r;
        }
      }
      const auto left =
          std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left <= 0ms) return std::nullopt;
      FetchOne(std::min<milliseconds>(left, 500ms));
    }
  }

  // Reads for `duration`; the results that arrived (kept for later too).
  std::size_t CountArriving(milliseconds duration) {
    const auto deadline = std::chrono::steady_clock::now() + duration;
    const std::size_t before = kept_.size();
    while (std::chrono::steady_clock::now() < deadline) FetchOne(100ms);
    return kept_.size() - before;
  }

 private:
  void FetchOne(milliseconds timeout) {
    natsMsgList list{};
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s = natsSubscription_Fetch(&list, sub_, 1, timeout.count(), &jerr);
    if (s == NATS_TIMEOUT) return;
    Check(s, "fetch results", jerr);
    for (int i = 0; i < list.Count; ++i) {
      natsMsg* m = list.Msgs[i];
      Result r;
      r.subject = natsMsg_GetSubject(m);
      r.workflow_id = Token(r.subject, 3);
      r.msg_id = Header(m, "Nats-Msg-Id");
      r.content_type = Header(m, "Content-Type");
      r.body = json::parse(Body(m), nullptr, false);
      natsMsg_Ack(m, nullptr);
      kept_.push_back(std::move(r));
    }
    natsMsgList_Destroy(&list);
  }

  natsSubscription* sub_ = nullptr;
  std::deque<Result> kept_;
};

// Answers heartbeat requests (aion.api.*.*.heartbeat) like the engine:
// {"cancel_requested":false}, or true once a workflow's beats pass the
// number set with CancelAfter.
class HeartbeatResponder {
 public:
  struct Beat {
    json body;
    std::string content_type;
    bool answered_cancel = false;
  };

  explicit HeartbeatResponder(Client& client) : nc_(client.nc()) {
    Check(natsConnection_Subscribe(&sub_, nc_, "aion.api.*.*.heartbeat", &OnMsg, this),
          "subscribe heartbeats");
    Check(natsConnection_Flush(nc_), "flush");
  }
  ~HeartbeatResponder() {
    natsSubscription_Unsubscribe(sub_);
    natsSubscription_WaitForDrainCompletion(sub_, 1000);
    natsSubscription_Destroy(sub_);
  }
  HeartbeatResponder(const HeartbeatResponder&) = delete;
  HeartbeatResponder& operator=(const HeartbeatResponder&) = delete;

  // Beats after the first `n` of `workflow_id` get cancel_requested true.
  void CancelAfter(const std::string& workflow_id, std::size_t n) {
    std::lock_guard lock(mu_);
    cancel_after_[workflow_id] = n;
  }

  std::vector<Beat> Beats(const std::string& workflow_id) {
    std::lock_guard lock(mu_);
    return beats_[workflow_id];
  }

  std::size_t Count(const std::string& workflow_id) { return Beats(workflow_id).size(); }

  bool WaitCount(const std::string& workflow_id, std::size_t n, milliseconds timeout = 10s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return beats_[workflow_id].size() >= n; });
  }

 private:
  static void OnMsg(natsConnection* nc, natsSubscription*, natsMsg* msg, void* closure) {
    auto* self = static_cast<HeartbeatResponder*>(closure);
    const std::string workflow_id = Token(natsMsg_GetSubject(msg), 3);
    Beat beat{json::parse(Body(msg), nullptr, false), Header(msg, "Content-Type")};
    {
      std::lock_guard lock(self->mu_);
      auto& beats = self->beats_[workflow_id];
      auto it = self->cancel_after_.find(workflow_id);
      beat.answered_cancel = it != self->cancel_after_.end() && beats.size() >= it->second;
      beats.push_back(beat);
    }
    self->cv_.notify_all();
    if (const char* reply = natsMsg_GetReply(msg)) {
      natsConnection_PublishString(
          nc, reply,
          beat.answered_cancel ? R"({"cancel_requested":true})" : R"({"cancel_requested":false})");
    }
    natsMsg_Destroy(msg);
  }

  natsConnection* nc_;
  natsSubscription* sub_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::vector<Beat>> beats_;
  std::map<std::string, std::size_t> cancel_after_;
};

// An ActivityTask in its JSON form, as the engine publishes it (64-bit
// integers as strings, per the protobuf JSON mapping, unless told otherwise).
json Task(const std::string& workflow_id, const std::string& type, json input, int attempt = 1,
          bool int64_as_strings = true) {
  auto i64 = [&](std::int64_t v) { return int64_as_strings ? json(std::to_string(v)) : json(v); };
  return {{"workflow_id", workflow_id},
          {"run_id", "run-" + workflow_id},
          {"activity_id", "act-1"},
          {"attempt", attempt},
          {"activity_type", type},
          {"task_queue", "q1"},
          {"input", std::move(input)},
          {"start_to_close_ms", i64(30000)},
          {"heartbeat_timeout_ms", i64(0)},
          {"scheduled_at_us", i64(1'700'000'000'000'000)},
          {"started_at_us", i64(1'700'000'000'100'000)},
          {"result_subject", "aion.wf." + workflow_id + ".activity_result"},
          {"heartbeat_subject", "aion.req." + workflow_id + ".heartbeat"}};
}

std::string MsgId(const json& task) {
  return task["workflow_id"].get<std::string>() + ":" + task["run_id"].get<std::string>() + ":" +
         task["activity_id"].get<std::string>() + ":" + std::to_string(task["attempt"].get<int>());
}

std::string ResultMsgId(const json& task) { return "result:" + MsgId(task); }

const std::map<std::string, std::string> kJson = {{"Content-Type", "application/json"}};

// One nats-server, the test's connection, its results stream and heartbeat
// responder, and `node worker.js --queue q1` processes started on demand.
struct Fixture {
  explicit Fixture(bool create_tasks_stream = true)
      : client(server.url()), results(client), heartbeats(client) {
    // AION_TASKS as the contract defines it (the engine's worker creates it).
    if (create_tasks_stream) client.AddStream("AION_TASKS", "aion.task.*", js_WorkQueuePolicy);
    const char* src = std::getenv("AION_SOURCE_DIR");
    if (src == nullptr || *src == '\0') {
      throw std::runtime_error("AION_SOURCE_DIR is not set (run the test through ctest)");
    }
    worker_dir = fs::path(src) / "examples" / "activity-worker-node";
    if (!fs::exists(worker_dir / "node_modules" / "nats" / "package.json")) {
      throw std::runtime_error(worker_dir.string() +
                               "/node_modules lacks the nats package: run scripts/setup.sh");
    }
    if (const char* env = std::getenv("AION_NODE"); env != nullptr && *env != '\0') {
      node = env;
    } else {
      node = FindExecutable("node");
    }
  }

  ~Fixture() {
    for (std::size_t i = 0; i < workers.size(); ++i) {
      if (!workers[i]->Alive()) continue;
      const std::string how = workers[i]->Terminate(15s);
      BOOST_CHECK_MESSAGE(how == "exit code 0", "node worker #" << i << " ended with " << how
                                                                << "; stderr:\n"
                                                                << Tail(Stderr(i)));
    }
  }

  // Starts a worker and waits for its "ready" line; returns its index.
  std::size_t StartWorker(std::vector<std::string> extra = {}) {
    const std::size_t n = workers.size();
    std::vector<std::string> args = {node.string(),
                                     (worker_dir / "worker.js").string(),
                                     "--nats",
                                     server.url(),
                                     "--queue",
                                     "q1",
                                     "--ack-wait-ms",
                                     "3000",
                                     "--pull-expires-ms",
                                     "1000",
                                     "--grace-ms",
                                     "10000"};
    args.insert(args.end(), extra.begin(), extra.end());
    workers.push_back(std::make_unique<Child>(args, StdoutPath(n), StderrPath(n)));
    const bool ready = WaitFor(
        [&] { return ReadFile(StdoutPath(n)).starts_with("ready") || !workers[n]->Alive(); }, 20s);
    if (!ready || !workers[n]->Alive()) {
      BOOST_FAIL("node worker #" << n << " not ready ("
                                 << (workers[n]->Alive() ? "running" : workers[n]->last_exit())
                                 << "); stderr:\n"
                                 << Tail(Stderr(n)));
    }
    return n;
  }

  fs::path StdoutPath(std::size_t n) const {
    return server.dir() / ("worker-" + std::to_string(n) + ".out");
  }
  fs::path StderrPath(std::size_t n) const {
    return server.dir() / ("worker-" + std::to_string(n) + ".err");
  }
  std::string Stderr(std::size_t n) const { return ReadFile(StderrPath(n)); }

  // Waits until worker n's stderr has `needle` at least `times` times (it
  // logs a task after acking it, so after the test may have seen the result).
  bool Logged(std::size_t n, const std::string& needle, std::size_t times = 1) const {
    return WaitFor([&] { return Count(Stderr(n), needle) >= times; }, 5s);
  }

  void PublishTask(const json& task) {
    auto headers = kJson;
    headers["Nats-Msg-Id"] = MsgId(task);
    client.JsPublish("aion.task.q1", task.dump(), headers);
  }

  // The result for the task's workflow; fails the test if none arrives.
  Result ResultOf(const json& task, milliseconds timeout = 10s) {
    auto r = results.For(task["workflow_id"].get<std::string>(), timeout);
    if (!r) {
      BOOST_FAIL("no result for " << task["workflow_id"] << " within " << timeout.count()
                                  << " ms; worker stderr:\n"
                                  << Tail(Stderr(workers.size() - 1)));
    }
    BOOST_TEST(r->msg_id == ResultMsgId(task));
    BOOST_TEST(r->content_type == "application/json");
    BOOST_TEST(r->body.is_object());
    BOOST_TEST(r->body["run_id"] == task["run_id"]);
    BOOST_TEST(r->body["activity_id"] == task["activity_id"]);
    BOOST_TEST(r->body["attempt"] == task["attempt"]);
    return std::move(*r);
  }

  // Every task was acked or terminated: the work-queue stream is empty and
  // the consumer has nothing outstanding.
  bool TasksSettled(milliseconds timeout = 5s) {
    return WaitFor(
        [&] {
          ConsumerInfo ci;
          return client.StreamMessages("AION_TASKS") == 0 &&
                 client.GetConsumer("AION_TASKS", "task-q1", ci) && ci.ci->NumAckPending == 0;
        },
        timeout);
  }

  NatsServer server;
  Client client;
  ResultReader results;
  HeartbeatResponder heartbeats;
  fs::path worker_dir;
  fs::path node;
  std::vector<std::unique_ptr<Child>> workers;
};

void CheckFailure(const Result& r, const std::string& type, bool non_retryable) {
  BOOST_TEST_CONTEXT(r.body.dump()) {
    BOOST_TEST(!r.body.contains("output"));
    BOOST_REQUIRE(r.body.contains("failure"));
    BOOST_TEST(r.body["failure"]["type"] == type);
    BOOST_TEST(r.body["failure"]["non_retryable"] == non_retryable);
    BOOST_TEST(r.body["failure"]["message"].is_string());
    BOOST_TEST(!r.body["failure"]["message"].get<std::string>().empty());
  }
}

BOOST_AUTO_TEST_CASE(creates_stream_and_consumer_when_missing) {
  Fixture f(/*create_tasks_stream=*/false);
  f.StartWorker();
  StreamInfo si;
  f.client.GetStream("AION_TASKS", si);
  BOOST_REQUIRE_EQUAL(si.si->Config->SubjectsLen, 1);
  BOOST_TEST(std::string(si.si->Config->Subjects[0]) == "aion.task.*");
  BOOST_TEST(si.si->Config->Retention == js_WorkQueuePolicy);
  ConsumerInfo ci;
  BOOST_REQUIRE(f.client.GetConsumer("AION_TASKS", "task-q1", ci));
  BOOST_TEST(std::string(ci.ci->Config->Durable) == "task-q1");
  BOOST_TEST(std::string(ci.ci->Config->FilterSubject) == "aion.task.q1");
  BOOST_TEST(ci.ci->Config->AckPolicy == js_AckExplicit);
  BOOST_TEST(ci.ci->Config->MaxDeliver == -1);
  BOOST_TEST(ci.ci->Config->AckWait == int64_t{3} * 1000 * 1000 * 1000);
  const json task = Task("wf-created", "echo", {{"x", 1}});
  f.PublishTask(task);
  BOOST_TEST(f.ResultOf(task).body["output"] == task["input"]);
}

BOOST_AUTO_TEST_CASE(echo_result_follows_the_contract) {
  Fixture f;
  f.StartWorker();
  const json input = {{"a", json::array({1, 2, 3})}, {"s", "text"}, {"nested", {{"t", true}}}};
  const json task = Task("wf-echo", "echo", input);
  f.PublishTask(task);
  const Result r = f.ResultOf(task);
  BOOST_TEST(r.subject.starts_with("aion.in."));  // aion.wf.<id>... went through the mapping
  BOOST_TEST(r.subject.ends_with(".wf-echo.activity_result"));
  BOOST_TEST(r.body == json({{"run_id", "run-wf-echo"},
                             {"activity_id", "act-1"},
                             {"attempt", 1},
                             {"output", input}}),
             r.body.dump());
  // 64-bit integers as JSON numbers work too; a later attempt is reported as such.
  const json numeric = Task("wf-echo-numeric", "echo", "just a string", 3, false);
  f.PublishTask(numeric);
  const Result r2 = f.ResultOf(numeric);
  BOOST_TEST(r2.body["attempt"] == 3);
  BOOST_TEST(r2.body["output"] == "just a string");
  // No input at all: output null.
  json bare = Task("wf-echo-bare", "echo", nullptr);
  bare.erase("input");
  f.PublishTask(bare);
  BOOST_TEST(f.ResultOf(bare).body["output"].is_null());
  // Acked only after the result was stored: nothing left in the work queue.
  BOOST_TEST(f.TasksSettled());
  BOOST_TEST(f.Logged(0, "echo -> completed", 3), f.Stderr(0));
}

BOOST_AUTO_TEST_CASE(failures_are_typed_and_retryability_is_reported) {
  Fixture f;
  f.StartWorker();
  // flaky: retryable failures while attempt <= fail_times, then success.
  const json flaky1 = Task("wf-flaky", "flaky", {{"fail_times", 1}}, 1);
  f.PublishTask(flaky1);
  CheckFailure(f.ResultOf(flaky1), "Flaky", false);
  const json flaky2 = Task("wf-flaky", "flaky", {{"fail_times", 1}}, 2);
  f.PublishTask(flaky2);
  const Result ok = f.ResultOf(flaky2);
  BOOST_TEST(ok.body["output"] == json({{"attempt", 2}}), ok.body.dump());
  BOOST_TEST(!ok.body.contains("failure"));
  // charge: a declined card is final.
  const json declined = Task("wf-declined", "charge", {{"amount", 30}, {"card", "declined"}});
  f.PublishTask(declined);
  CheckFailure(f.ResultOf(declined), "CardDeclined", true);
  // Unknown activity types may be served by another worker later: retryable.
  const json unknown = Task("wf-unknown", "no_such_activity", json::object());
  f.PublishTask(unknown);
  CheckFailure(f.ResultOf(unknown), "UnknownActivityType", false);
  BOOST_TEST(f.TasksSettled());
}

BOOST_AUTO_TEST_CASE(saga_steps_return_receipts_derived_from_their_input) {
  Fixture f;
  f.StartWorker();
  const json order = {
      {"order_id", "o-1"}, {"sku", "A1"}, {"qty", 2}, {"amount", 30}, {"card", "ok"}};
  std::map<std::string, json> out;
  for (const std::string step : {"reserve", "charge", "ship", "release", "refund"}) {
    const json task = Task("wf-saga-" + step, step, order);
    f.PublishTask(task);
    const Result r = f.ResultOf(task);
    BOOST_TEST_CONTEXT(step << ": " << r.body.dump()) {
      BOOST_REQUIRE(r.body.contains("output"));
      BOOST_TEST(r.body["output"].is_object());
    }
    out[step] = r.body["output"];
  }
  BOOST_TEST(out["reserve"]["reservation_id"].get<std::string>().starts_with("res-"));
  BOOST_TEST(out["reserve"]["sku"] == "A1");
  BOOST_TEST(out["reserve"]["qty"] == 2);
  BOOST_TEST(out["charge"]["charge_id"].get<std::string>().starts_with("ch-"));
  BOOST_TEST(out["charge"]["amount"] == 30);
  BOOST_TEST(out["ship"]["shipment_id"].get<std::string>().starts_with("shp-"));
  BOOST_TEST(out["refund"]["refund_id"].get<std::string>().starts_with("rf-"));
  // The compensations take the receipts of the steps they undo.
  const json release = Task("wf-saga-release2", "release", out["reserve"]);
  f.PublishTask(release);
  BOOST_TEST(f.ResultOf(release).body["output"]["released"] == out["reserve"]["reservation_id"]);
  const json refund = Task("wf-saga-refund2", "refund", out["charge"]);
  f.PublishTask(refund);
  BOOST_TEST(f.ResultOf(refund).body["output"]["charge_id"] == out["charge"]["charge_id"]);
  // Same input, same receipt: a retried attempt does not invent a new id.
  const json again = Task("wf-saga-reserve-again", "reserve", order, 2);
  f.PublishTask(again);
  BOOST_TEST(f.ResultOf(again).body["output"] == out["reserve"]);
}

BOOST_AUTO_TEST_CASE(malformed_tasks_are_terminated_and_the_worker_keeps_serving) {
  Fixture f;
  f.StartWorker();
  json no_run = Task("wf-bad-1", "echo", 1);
  no_run.erase("run_id");
  json bad_attempt = Task("wf-bad-2", "echo", 1);
  bad_attempt["attempt"] = "one";
  json zero_attempt = Task("wf-bad-3", "echo", 1);
  zero_attempt["attempt"] = 0;
  const std::vector<std::string> bad = {"{not json",   "[1,2,3]",          "",
                                        no_run.dump(), bad_attempt.dump(), zero_attempt.dump()};
  for (std::size_t i = 0; i < bad.size(); ++i) {
    auto headers = kJson;
    headers["Nats-Msg-Id"] = "bad-" + std::to_string(i);
    f.client.JsPublish("aion.task.q1", bad[i], headers);
  }
  const json task = Task("wf-after-bad", "echo", {{"still", "serving"}});
  f.PublishTask(task);
  BOOST_TEST(f.ResultOf(task).body["output"] == task["input"]);
  BOOST_TEST(f.TasksSettled());
  // None of them was redelivered, none produced a result.
  ConsumerInfo ci;
  BOOST_REQUIRE(f.client.GetConsumer("AION_TASKS", "task-q1", ci));
  BOOST_TEST(ci.ci->NumRedelivered == 0);
  BOOST_TEST(f.results.CountArriving(500ms) == 0u);
  BOOST_TEST(f.workers[0]->Alive());
  BOOST_TEST(f.Logged(0, "malformed task", bad.size()), f.Stderr(0));
}

BOOST_AUTO_TEST_CASE(heartbeats_carry_progress_and_a_cancel_reply_stops_the_activity) {
  Fixture f;
  f.StartWorker();
  const json task = Task("wf-slow", "slow", {{"ms", 20000}, {"heartbeat_ms", 100}});
  f.heartbeats.CancelAfter("wf-slow", 2);  // beats 1 and 2: go on; beat 3: cancel
  f.PublishTask(task);
  BOOST_REQUIRE(f.heartbeats.WaitCount("wf-slow", 3));
  BOOST_TEST(f.TasksSettled());  // the cancelled attempt is acked, not redelivered
  // It stopped: no further beats, no result.
  BOOST_TEST(f.results.CountArriving(1000ms) == 0u);
  const auto beats = f.heartbeats.Beats("wf-slow");
  BOOST_TEST(beats.size() == 3u);
  for (const auto& b : beats) {
    BOOST_TEST_CONTEXT(b.body.dump()) {
      BOOST_TEST(b.content_type == "application/json");
      BOOST_TEST(b.body["run_id"] == "run-wf-slow");
      BOOST_TEST(b.body["activity_id"] == "act-1");
      BOOST_TEST(b.body["attempt"] == 1);
      BOOST_TEST(b.body["details"]["progress"].is_number());
    }
  }
  BOOST_TEST(beats[0].body["details"]["progress"] < beats[1].body["details"]["progress"]);
  BOOST_TEST(f.workers[0]->Alive());
  BOOST_TEST(f.Logged(0, "cancel requested in heartbeat reply"), f.Stderr(0));
  // Still serving.
  const json echo = Task("wf-after-slow", "echo", 7);
  f.PublishTask(echo);
  BOOST_TEST(f.ResultOf(echo).body["output"] == 7);
}

BOOST_AUTO_TEST_CASE(cancel_note_aborts_a_running_attempt) {
  Fixture f;
  f.StartWorker();
  const json task = Task("wf-forever", "sleep_forever", {{"heartbeat_ms", 100}});
  f.PublishTask(task);
  BOOST_REQUIRE(f.heartbeats.WaitCount("wf-forever", 2));
  f.client.Publish("aion.task.q1.cancel", json({{"workflow_id", "wf-forever"},
                                                {"run_id", "run-wf-forever"},
                                                {"activity_id", "act-1"},
                                                {"attempt", "1"},
                                                {"reason", "workflow cancelled"}})
                                              .dump());
  BOOST_TEST(f.TasksSettled());
  const std::size_t beats = f.heartbeats.Count("wf-forever");
  BOOST_TEST(f.results.CountArriving(1000ms) == 0u);
  BOOST_TEST(f.heartbeats.Count("wf-forever") == beats);  // stopped beating
  BOOST_TEST(f.Logged(0, "cancel note: workflow cancelled"), f.Stderr(0));
  // A note for another attempt does not touch a running one; a note that
  // arrives before its task makes the worker skip the task.
  const json other = Task("wf-forever-2", "slow", {{"ms", 800}, {"heartbeat_ms", 100}});
  f.PublishTask(other);
  BOOST_REQUIRE(f.heartbeats.WaitCount("wf-forever-2", 1));
  f.client.Publish("aion.task.q1.cancel", json({{"workflow_id", "wf-forever-2"},
                                                {"run_id", "run-wf-forever-2"},
                                                {"activity_id", "act-1"},
                                                {"attempt", 2}})
                                              .dump());
  BOOST_TEST(f.ResultOf(other).body["output"]["slept_ms"] == 800);
  f.client.Publish("aion.task.q1.cancel", json({{"workflow_id", "wf-early"},
                                                {"run_id", "run-wf-early"},
                                                {"activity_id", "act-1"},
                                                {"attempt", 1}})
                                              .dump());
  f.PublishTask(Task("wf-early", "echo", 1));
  BOOST_TEST(f.TasksSettled());
  BOOST_TEST(f.results.CountArriving(500ms) == 0u);
}

BOOST_AUTO_TEST_CASE(a_task_of_a_killed_worker_is_redelivered_to_a_restarted_one) {
  Fixture f;
  f.StartWorker();
  const json task = Task("wf-crash", "slow", {{"ms", 1500}, {"heartbeat_ms", 100}});
  f.PublishTask(task);
  BOOST_REQUIRE(f.heartbeats.WaitCount("wf-crash", 2));
  f.workers[0]->Kill();  // SIGKILL mid-task: no result, no ack
  const std::size_t beats_before = f.heartbeats.Count("wf-crash");
  BOOST_TEST(f.results.CountArriving(500ms) == 0u);
  BOOST_TEST(f.client.StreamMessages("AION_TASKS") == 1u);
  f.StartWorker();  // redelivered after the consumer's ack wait (3 s)
  const Result r = f.ResultOf(task, 15s);
  BOOST_TEST(r.body["output"]["slept_ms"] == 1500);
  BOOST_TEST(f.heartbeats.Count("wf-crash") > beats_before);  // the second run beat too
  BOOST_TEST(f.Logged(1, "wf-crash/run-wf-crash/act-1#1 slow -> completed"), f.Stderr(1));
  BOOST_TEST(f.TasksSettled());
}

BOOST_AUTO_TEST_CASE(sigterm_finishes_running_tasks_then_exits_cleanly) {
  Fixture f;
  f.StartWorker({"--concurrency", "4"});
  // Four 1.5 s tasks at once: they run side by side.
  std::vector<json> tasks;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 4; ++i) {
    tasks.push_back(
        Task("wf-term-" + std::to_string(i), "slow", {{"ms", 1500}, {"heartbeat_ms", 100}}));
    f.PublishTask(tasks.back());
  }
  for (const auto& t : tasks)
    BOOST_REQUIRE(f.heartbeats.WaitCount(t["workflow_id"].get<std::string>(), 1));
  const std::string how = f.workers[0]->Terminate(15s);
  BOOST_TEST(how == "exit code 0", f.Stderr(0));
  for (const auto& t : tasks) BOOST_TEST(f.ResultOf(t, 1s).body["output"]["slept_ms"] == 1500);
  const auto elapsed_ms =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start).count();
  BOOST_TEST(elapsed_ms < 5000);  // not 4 x 1.5 s one after another
  BOOST_TEST(f.TasksSettled());
  BOOST_TEST(f.Logged(0, "stopped"), f.Stderr(0));
}

}  // namespace
}  // namespace aion::testing
