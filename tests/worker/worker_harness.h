// WorkerHarness: what the worker-level integration tests share. A real
// nats-server (tests/support/nats_test_server.h), a client connection, a
// fresh data dir and one real `aion-worker` child process (WorkerProcess),
// plus client helpers: typed requests (describe/history/result), JetStream
// publishes with retries, reading streams back, and running the `aion` CLI.
// Header-only (it needs aion::bus, which tests/support's library does not
// link). One owner thread, except where a helper says otherwise.
#pragma once

#include <boost/test/results_collector.hpp>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "aion/bus/codec.h"
#include "aion/bus/nats_connection.h"
#include "aion/bus/streams.h"
#include "aion/bus/subjects.h"
#include "aion/engine/ids.h"
#include "aion/wire.pb.h"
#include "support/nats_test_server.h"
#include "support/temp_dir.h"
#include "support/wait.h"
#include "support/worker_process.h"

namespace aion::testing {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

inline constexpr std::uint32_t kPartitions = 16;
inline constexpr const char* kProbeId = "aion-test-ready-probe";

// An id in partition `p` (of kPartitions): "<stem>-<n>" for the first n that fits.
inline std::string IdInPartition(std::uint32_t p, const std::string& stem) {
  for (int n = 0;; ++n) {
    std::string id = stem + "-" + std::to_string(n);
    if (PartitionOf(id, kPartitions) == p) return id;
  }
}

inline std::string MsgData(natsMsg* msg) { return Body(msg); }

// A core request with a binary protobuf body; the reply decoded as `Reply`.
// Returns false (and leaves `out` cleared) on a transport error or timeout.
template <typename Reply>
bool TryAsk(bus::NatsConnection& conn, const std::string& subject,
            const google::protobuf::Message& request, Reply* out, std::chrono::milliseconds timeout,
            std::string* error = nullptr) {
  out->Clear();
  auto msg = MakeNatsMsg(subject, request.SerializeAsString());
  natsMsg* reply = nullptr;
  natsStatus s = natsConnection_RequestMsg(&reply, conn.nc(), msg.get(), timeout.count());
  if (s != NATS_OK) {
    if (error != nullptr) *error = bus::NatsStatus(s, "request " + subject).ToString();
    return false;
  }
  NatsMsgPtr owned(reply);
  if (!out->ParseFromString(Body(reply))) {
    if (error != nullptr) *error = "reply on " + subject + " is not a " + out->GetTypeName();
    return false;
  }
  return true;
}

// Readiness probe for WorkerProcess: a describe of an id nobody started
// answers not_found once the worker serves its partitions.
inline std::function<bool()> DescribeProbe(bus::NatsConnection& conn) {
  return [&conn] {
    wire::DescribeReply reply;
    const bus::Subjects subjects;
    return TryAsk(conn, subjects.Request(kProbeId, bus::ApiOp::kDescribe), wire::DescribeRequest{},
                  &reply, 500ms) &&
           reply.error().code() == "not_found";
  };
}

struct StreamMessage {
  std::uint64_t seq = 0;
  std::string subject;
  std::string data;
};

struct StreamInfoHolder {
  jsStreamInfo* si = nullptr;
  ~StreamInfoHolder() { jsStreamInfo_Destroy(si); }
};

// Message count of `stream`; `subjects_filter` (if set) also fills `per_subject`.
inline std::uint64_t StreamCount(bus::NatsConnection& conn, const std::string& stream,
                                 const std::string& subjects_filter = "",
                                 std::map<std::string, std::uint64_t>* per_subject = nullptr) {
  jsOptions o;
  jsOptions_Init(&o);
  if (!subjects_filter.empty()) o.Stream.Info.SubjectsFilter = subjects_filter.c_str();
  StreamInfoHolder info;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&info.si, conn.js(), stream.c_str(), &o, &jerr);
  if (s != NATS_OK)
    throw std::runtime_error(bus::NatsStatus(s, "stream info " + stream, jerr).ToString());
  if (per_subject != nullptr) {
    per_subject->clear();
    if (info.si->State.Subjects != nullptr) {
      for (int i = 0; i < info.si->State.Subjects->Count; ++i) {
        const auto& e = info.si->State.Subjects->List[i];
        (*per_subject)[e.Subject] = e.Msgs;
      }
    }
  }
  return info.si->State.Msgs;
}

// Every message of `stream`, by sequence (direct reads; streams here are small).
inline std::vector<StreamMessage> ReadStream(bus::NatsConnection& conn, const std::string& stream) {
  StreamInfoHolder info;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&info.si, conn.js(), stream.c_str(), nullptr, &jerr);
  if (s != NATS_OK)
    throw std::runtime_error(bus::NatsStatus(s, "stream info " + stream, jerr).ToString());
  std::vector<StreamMessage> out;
  if (info.si->State.Msgs == 0) return out;
  for (std::uint64_t seq = info.si->State.FirstSeq; seq <= info.si->State.LastSeq; ++seq) {
    natsMsg* raw = nullptr;
    jerr = static_cast<jsErrCode>(0);
    s = js_GetMsg(&raw, conn.js(), stream.c_str(), seq, nullptr, &jerr);
    if (s == NATS_NOT_FOUND) continue;  // deleted
    if (s != NATS_OK) {
      throw std::runtime_error(
          bus::NatsStatus(s, "get " + stream + " seq " + std::to_string(seq), jerr).ToString());
    }
    NatsMsgPtr owned(raw);
    out.push_back({seq, natsMsg_GetSubject(raw), Body(raw)});
  }
  return out;
}

// Pending (undelivered) and unacked messages of partition `p`'s consumer.
struct ConsumerBacklog {
  std::uint64_t pending = 0;
  std::int64_t ack_pending = 0;
};
inline ConsumerBacklog Backlog(bus::NatsConnection& conn, std::uint32_t p) {
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const std::string stream(bus::kInStream), name = bus::ConsumerName(p);
  natsStatus s = js_GetConsumerInfo(&ci, conn.js(), stream.c_str(), name.c_str(), nullptr, &jerr);
  if (s != NATS_OK)
    throw std::runtime_error(bus::NatsStatus(s, "consumer info " + name, jerr).ToString());
  ConsumerBacklog b{ci->NumPending, ci->NumAckPending};
  jsConsumerInfo_Destroy(ci);
  return b;
}

// JetStream publish retried until the PubAck arrives or `limit` passes.
// Returns the number of attempts; throws after `limit`. Thread-safe.
inline int JsPublishRetry(bus::NatsConnection& conn, const std::string& subject,
                          const std::string& data, const bus::Headers& headers,
                          std::chrono::milliseconds limit = 30s) {
  const auto deadline = SteadyClock::now() + limit;
  std::string last_error;
  for (int attempt = 1;; ++attempt) {
    auto msg = MakeNatsMsg(subject, data, headers);
    jsPubOptions opts;
    jsPubOptions_Init(&opts);
    opts.MaxWait = 2000;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_PublishMsg(nullptr, conn.js(), msg.get(), &opts, &jerr);
    if (s == NATS_OK) return attempt;
    last_error = bus::NatsStatus(s, "publish " + subject, jerr).ToString();
    if (SteadyClock::now() >= deadline) {
      throw std::runtime_error("no PubAck within the limit: " + last_error);
    }
    std::this_thread::sleep_for(50ms);
  }
}

// Name of an event's attributes: "WorkflowStarted", "TimerFired", ...
inline std::string EventName(const history::HistoryEvent& e) {
  const auto* oneof = e.GetDescriptor()->FindOneofByName("attributes");
  const auto* field = e.GetReflection()->GetOneofFieldDescriptor(e, oneof);
  return field == nullptr ? "Unknown" : field->message_type()->name();
}

inline std::string HistoryText(const std::vector<history::HistoryEvent>& events) {
  std::string out = "[";
  for (const auto& e : events) {
    if (out.size() > 1) out += ", ";
    out += std::to_string(e.seq()) + " " + EventName(e);
  }
  return out + "]";
}

// A nats-server, a client connection and one aion-worker on a fresh data dir.
// The worker is started by the constructor (BOOST_REQUIRE on failure). On a
// failed test the destructor prints the end of the worker's log.
class WorkerHarness {
 public:
  // `executable`: a worker binary built on aion::worker::Main other than
  // aion-worker (default: aion-worker).
  explicit WorkerHarness(std::vector<std::string> worker_args = {},
                         std::filesystem::path executable = {})
      : server_(kPartitions), dir_("aion-worker-test") {
    client_ = server_.Connect("aion-worker-test-client");
    WorkerProcessOptions options;
    options.nats_url = server_.url();
    options.data_dir = dir_.path() / "data";
    options.extra_args = std::move(worker_args);
    options.executable = std::move(executable);
    options.ready = DescribeProbe(*client_);
    worker_ = std::make_unique<WorkerProcess>(options);
    Status started = worker_->Start();
    BOOST_REQUIRE_MESSAGE(started.ok(), started.ToString());
  }
  ~WorkerHarness() {
    namespace ut = boost::unit_test;
    const bool passed =
        ut::results_collector.results(ut::framework::current_test_case().p_id).passed();
    if (!passed && worker_) {
      std::cerr << "---- aion-worker log (" << worker_->log_file() << ") ----\n"
                << worker_->LogTail(12000) << "\n---- end of log ----\n";
    }
    worker_.reset();  // SIGKILLs a worker still running
  }

  NatsTestServer& server() { return server_; }
  bus::NatsConnection& client() { return *client_; }
  WorkerProcess& worker() { return *worker_; }
  const std::string& url() const { return server_.url(); }
  const bus::Subjects& subjects() const { return subjects_; }

  wire::DescribeReply Describe(const std::string& id, std::chrono::milliseconds timeout = 10s) {
    wire::DescribeReply reply;
    std::string error;
    BOOST_REQUIRE_MESSAGE(TryAsk(*client_, subjects_.Request(id, bus::ApiOp::kDescribe),
                                 wire::DescribeRequest{}, &reply, timeout, &error),
                          "describe " << id << ": " << error);
    return reply;
  }

  wire::HistoryReply History(const std::string& id, std::chrono::milliseconds timeout = 10s) {
    wire::HistoryReply reply;
    std::string error;
    BOOST_REQUIRE_MESSAGE(TryAsk(*client_, subjects_.Request(id, bus::ApiOp::kHistory),
                                 wire::HistoryRequest{}, &reply, timeout, &error),
                          "history " << id << ": " << error);
    return reply;
  }

  // Waits (on the worker) up to `wait` for the run to close.
  wire::ResultReply Result(const std::string& id, std::chrono::milliseconds wait = 20s) {
    wire::ResultRequest req;
    req.set_timeout_ms(static_cast<std::uint32_t>(wait.count()));
    wire::ResultReply reply;
    std::string error;
    BOOST_REQUIRE_MESSAGE(TryAsk(*client_, subjects_.Request(id, bus::ApiOp::kResult), req, &reply,
                                 wait + 10s, &error),
                          "result " << id << ": " << error);
    return reply;
  }

  // Polls describe until the history of `id` has `length` events.
  bool AwaitHistoryLength(const std::string& id, std::uint64_t length,
                          std::chrono::milliseconds limit = 20s) {
    const auto deadline = SteadyClock::now() + limit;
    while (SteadyClock::now() < deadline) {
      wire::DescribeReply d;
      if (TryAsk(*client_, subjects_.Request(id, bus::ApiOp::kDescribe), wire::DescribeRequest{},
                 &d, 2s) &&
          !d.has_error() && d.history_length() >= length) {
        return d.history_length() == length;
      }
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  // Runs `aion --nats <url> <args...>` (no --nats when `with_url` is false).
  ProcessResult Aion(std::vector<std::string> args, bool with_url = true) {
    std::vector<std::string> argv = {BinaryPath("aion").string()};
    if (with_url) {
      argv.push_back("--nats");
      argv.push_back(server_.url());
    }
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = RunProcess(argv, 90s);
    BOOST_TEST_MESSAGE("aion " << Joined(args) << " -> exit " << r.exit_code
                               << "\n  stdout: " << r.out << "  stderr: " << r.err);
    return r;
  }

  static std::string Joined(const std::vector<std::string>& args) {
    std::string s;
    for (const auto& a : args) s += (s.empty() ? "" : " ") + a;
    return s;
  }

 private:
  NatsTestServer server_;
  TempDir dir_;
  bus::Subjects subjects_;
  std::unique_ptr<bus::NatsConnection> client_;
  std::unique_ptr<WorkerProcess> worker_;
};

}  // namespace aion::testing
