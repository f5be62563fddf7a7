#include "commands.h"

#include <algorithm>
#include <ostream>
#include <set>
#include <string>

#include "aion/bus/codec.h"
#include "aion/bus/nats_mappings.h"
#include "aion/bus/subjects.h"
#include "client.h"
#include "render.h"

namespace aion::cli {
namespace {

// Extra time to wait beyond a ResultRequest's timeout_ms, so the worker's own
// deadline_exceeded answer arrives before our request gives up.
constexpr milliseconds kReplyGrace{5000};
// How long `list` waits for more replies after the last one.
constexpr milliseconds kListQuiet{300};
// HistoryRequest page size; keeps every reply far below NATS' 1 MB payload limit.
constexpr std::uint32_t kHistoryPage = 500;

// Shared state of one command: where to print, and the exit-code policy.
class Session {
 public:
  Session(const Invocation& inv, std::ostream& out, std::ostream& err)
      : inv_(inv), subjects_(inv.prefix), render_(inv.json, out, err) {}

  Renderer& render() { return render_; }
  const Invocation& inv() const { return inv_; }
  std::string Workflow(bus::IngressKind kind) const {
    return subjects_.Workflow(inv_.workflow_id, kind);
  }
  std::string Request(bus::ApiOp op) const { return subjects_.Request(inv_.workflow_id, op); }

  Status Connect() {
    auto client = Client::Connect(inv_.nats_url);
    if (!client.ok()) return client.status();
    client_ = std::move(*client);
    return Status::Ok();
  }
  Client& client() { return *client_; }

  // Local and transport failures: bad input is 2, everything else means "nobody answered".
  int Fail(const Status& s) {
    render_.LocalError(s);
    return s.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitUnreachable;
  }
  int ServerFail(const wire::Error& e) {
    render_.ServerError(e);
    return e.code() == "deadline_exceeded" ? kExitStillRunning : kExitFailed;
  }

 private:
  const Invocation& inv_;
  bus::Subjects subjects_;
  Renderer render_;
  std::unique_ptr<Client> client_;
};

template <typename Reply>
Result<Reply> Ask(Session& s, bus::ApiOp op, const google::protobuf::Message& request,
                  milliseconds timeout) {
  auto msg = s.client().Request(s.Request(op), request.SerializeAsString(), timeout);
  if (!msg.ok()) return msg.status();
  Reply reply;
  AION_RETURN_IF_ERROR(Decode(*msg, reply));
  return reply;
}

int AwaitResult(Session& s, milliseconds timeout) {
  wire::ResultRequest req;
  req.set_timeout_ms(static_cast<std::uint32_t>(timeout.count()));
  auto reply = Ask<wire::ResultReply>(s, bus::ApiOp::kResult, req, timeout + kReplyGrace);
  if (!reply.ok()) return s.Fail(reply.status());
  if (reply->has_error()) return s.ServerFail(reply->error());
  s.render().Result(s.inv().workflow_id, *reply);
  return reply->status() == "completed" ? kExitOk : kExitFailed;
}

// Start, signal, cancel, terminate: a JetStream publish, then the worker's
// post-commit reply.
int Ingress(Session& s, bus::IngressKind kind, const google::protobuf::Message& msg,
            std::string_view verb) {
  auto reply_msg =
      s.client().PublishAndAwaitReply(s.Workflow(kind), msg.SerializeAsString(), s.inv().timeout);
  if (!reply_msg.ok()) return s.Fail(reply_msg.status());
  wire::IngressReply reply;
  if (Status st = Decode(*reply_msg, reply); !st.ok()) return s.Fail(st);
  if (reply.has_error()) return s.ServerFail(reply.error());
  s.render().Ingress(verb, reply);
  return kExitOk;
}

// start --wait: one exchange (header Aion-Reply-When: closed). The reply
// after the commit prints `started`; the one when the run closed, its result.
int StartAndAwait(Session& s, const wire::StartWorkflow& start) {
  bool recorded = false;
  int rc = kExitOk;
  Status st = s.client().PublishAndAwaitClose(
      s.Workflow(bus::IngressKind::kStart), start.SerializeAsString(), s.inv().timeout,
      [&](const Message& m) {
        wire::IngressReply reply;
        if (Status d = Decode(m, reply); !d.ok()) {
          rc = s.Fail(d);
          return false;
        }
        if (reply.has_error()) {
          rc = s.ServerFail(reply.error());
          return false;
        }
        if (!recorded) s.render().Ingress("started", reply);
        recorded = true;
        if (reply.status().empty()) return true;  // recorded; the close comes later
        wire::ResultReply result;
        result.set_status(reply.status());
        result.set_run_id(reply.run_id());
        if (reply.has_output()) *result.mutable_output() = reply.output();
        result.set_failure(reply.failure());
        s.render().Result(s.inv().workflow_id, result);
        rc = reply.status() == "completed" ? kExitOk : kExitFailed;
        return false;
      });
  if (st.code() == StatusCode::kDeadlineExceeded && recorded) {
    wire::Error e;
    e.set_code("deadline_exceeded");
    e.set_message(st.message());
    return s.ServerFail(e);
  }
  if (!st.ok()) return s.Fail(st);
  return rc;
}

int Start(Session& s) {
  const Invocation& inv = s.inv();
  wire::StartWorkflow start;
  start.set_workflow_type(inv.workflow_type);
  if (inv.input_text) bus::ValueFromJson(inv.input, start.mutable_input());
  start.set_request_id(inv.request_id);
  start.set_run_timeout_ms(inv.run_timeout.count());
  start.set_id_reuse_policy(static_cast<wire::IdReusePolicy>(inv.id_reuse));
  if (!inv.wait) return Ingress(s, bus::IngressKind::kStart, start, "started");
  return StartAndAwait(s, start);
}

int Signal(Session& s) {
  const Invocation& inv = s.inv();
  wire::SignalWorkflow signal;
  signal.set_name(inv.signal_name);
  if (inv.input_text) bus::ValueFromJson(inv.input, signal.mutable_input());
  signal.set_request_id(inv.request_id);
  return Ingress(s, bus::IngressKind::kSignal, signal, "signaled");
}

int SignalWithStart(Session& s) {
  const Invocation& inv = s.inv();
  wire::SignalWithStartWorkflow msg;
  msg.set_workflow_type(inv.workflow_type);
  if (inv.input_text) bus::ValueFromJson(inv.input, msg.mutable_input());
  msg.set_signal_name(inv.signal_name);
  if (inv.signal_input_text) bus::ValueFromJson(inv.signal_input, msg.mutable_signal_input());
  msg.set_request_id(inv.request_id);
  msg.set_run_timeout_ms(inv.run_timeout.count());
  msg.set_id_reuse_policy(static_cast<wire::IdReusePolicy>(inv.id_reuse));
  return Ingress(s, bus::IngressKind::kSignalWithStart, msg, "signaled");
}

int Query(Session& s) {
  const Invocation& inv = s.inv();
  wire::QueryRequest req;
  req.set_name(inv.query_name);
  if (inv.args_text) bus::ValueFromJson(inv.args, req.mutable_args());
  req.set_timeout_ms(static_cast<std::uint32_t>(inv.timeout.count()));
  // The worker answers query_timeout itself; the grace lets that answer arrive.
  auto reply = Ask<wire::QueryReply>(s, bus::ApiOp::kQuery, req, inv.timeout + kReplyGrace);
  if (!reply.ok()) return s.Fail(reply.status());
  if (reply->has_error()) return s.ServerFail(reply->error());
  s.render().Query(*reply);
  return kExitOk;
}

// Scatter/gather on aion.api.list: one page from every worker, merged.
int List(Session& s) {
  const Invocation& inv = s.inv();
  wire::ListRequest req;
  for (const std::string& status : inv.statuses) req.add_statuses(status);
  req.set_workflow_type(inv.workflow_type);
  req.set_started_after_us(inv.started_after_us);
  req.set_started_before_us(inv.started_before_us);
  req.set_limit(inv.limit);
  auto replies = s.client().Gather(bus::Subjects(inv.prefix).List(), req.SerializeAsString(),
                                   std::min(kListQuiet, inv.timeout), inv.timeout);
  if (!replies.ok()) return s.Fail(replies.status());
  if (replies->empty()) {
    return s.Fail(Status(StatusCode::kDeadlineExceeded,
                         "no worker answered on '" + bus::Subjects(inv.prefix).List() +
                             "' within " + std::to_string(inv.timeout.count()) + " ms"));
  }
  wire::ListReply merged;
  bool more = false;
  std::set<std::string> versions;  // of the workers that answered
  for (const Message& m : *replies) {
    wire::ListReply reply;
    if (Status st = Decode(m, reply); !st.ok()) return s.Fail(st);
    if (reply.has_error()) return s.ServerFail(reply.error());
    for (auto& w : *reply.mutable_workflows()) *merged.add_workflows() = std::move(w);
    for (std::uint32_t p : reply.partitions()) merged.add_partitions(p);
    more = more || !reply.next_page_token().empty();
    versions.insert(reply.aion_version().empty() ? "unknown" : reply.aion_version());
  }
  for (const std::string& v : versions) {
    merged.set_aion_version(merged.aion_version() + (merged.aion_version().empty() ? "" : ",") + v);
  }
  std::sort(merged.mutable_workflows()->begin(), merged.mutable_workflows()->end(),
            [](const wire::WorkflowSummary& a, const wire::WorkflowSummary& b) {
              return a.workflow_id() < b.workflow_id();
            });
  std::sort(merged.mutable_partitions()->begin(), merged.mutable_partitions()->end());
  s.render().List(merged, replies->size(), more);
  return kExitOk;
}

int Cancel(Session& s) {
  const Invocation& inv = s.inv();
  wire::CancelWorkflow cancel;
  cancel.set_reason(inv.reason);
  cancel.set_request_id(inv.request_id);
  return Ingress(s, bus::IngressKind::kCancel, cancel, "cancel requested for");
}

int Terminate(Session& s) {
  const Invocation& inv = s.inv();
  wire::TerminateWorkflow terminate;
  terminate.set_reason(inv.reason);
  terminate.set_request_id(inv.request_id);
  return Ingress(s, bus::IngressKind::kTerminate, terminate, "terminated");
}

int Describe(Session& s) {
  auto reply =
      Ask<wire::DescribeReply>(s, bus::ApiOp::kDescribe, wire::DescribeRequest{}, s.inv().timeout);
  if (!reply.ok()) return s.Fail(reply.status());
  if (reply->has_error()) return s.ServerFail(reply->error());
  s.render().Describe(*reply);
  return kExitOk;
}

// Pages through the history so a long one never exceeds one NATS message.
int History(Session& s) {
  std::vector<history::HistoryEvent> events;
  std::uint64_t next = 1;
  while (true) {
    wire::HistoryRequest req;
    req.set_from_seq(next);
    req.set_limit(kHistoryPage);
    auto reply = Ask<wire::HistoryReply>(s, bus::ApiOp::kHistory, req, s.inv().timeout);
    if (!reply.ok()) return s.Fail(reply.status());
    if (reply->has_error()) return s.ServerFail(reply->error());
    for (auto& e : *reply->mutable_events()) {
      // Guards against a server that ignores from_seq: never print an event twice.
      if (e.seq() >= next) events.push_back(std::move(e));
    }
    const std::uint64_t last = events.empty() ? 0 : events.back().seq();
    if (reply->events_size() < static_cast<int>(kHistoryPage) || last < next) break;
    next = last + 1;
  }
  s.render().History(events);
  return kExitOk;
}

int Pub(Session& s) {
  const Invocation& inv = s.inv();
  auto ack = s.client().Publish(inv.subject, inv.body_text, /*json=*/true, inv.timeout);
  if (!ack.ok()) return s.Fail(ack.status());
  s.render().Published(inv.subject, ack->stream, ack->sequence, ack->duplicate);
  return kExitOk;
}

int Sub(Session& s) {
  const Invocation& inv = s.inv();
  int seen = 0;
  Status st = s.client().Subscribe(inv.subject, inv.timeout, [&](const Message& m) {
    s.render().Seen(m.subject, m.data, m.json, inv.prefix);
    return inv.count == 0 || ++seen < inv.count;
  });
  return st.ok() ? kExitOk : s.Fail(st);
}

}  // namespace

int Run(const Invocation& inv, std::ostream& out, std::ostream& err) {
  if (inv.command == Command::kNatsConfig) {  // offline: no connection
    out << bus::NatsMappingsConfig(bus::Subjects(inv.prefix), inv.partitions);
    return kExitOk;
  }
  Session s(inv, out, err);
  if (Status st = s.Connect(); !st.ok()) return s.Fail(st);
  switch (inv.command) {
    case Command::kStart:
      return Start(s);
    case Command::kSignal:
      return Signal(s);
    case Command::kCancel:
      return Cancel(s);
    case Command::kTerminate:
      return Terminate(s);
    case Command::kDescribe:
      return Describe(s);
    case Command::kHistory:
      return History(s);
    case Command::kResult:
      return AwaitResult(s, inv.timeout);
    case Command::kQuery:
      return Query(s);
    case Command::kList:
      return List(s);
    case Command::kSignalWithStart:
      return SignalWithStart(s);
    case Command::kPub:
      return Pub(s);
    case Command::kSub:
      return Sub(s);
    case Command::kNatsConfig:
      break;  // handled above
  }
  return kExitUsage;
}

}  // namespace aion::cli
