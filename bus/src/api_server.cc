#include "aion/bus/api_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <queue>
#include <thread>

#include "aion/engine/history.h"
#include "nats_util.h"

namespace aion::bus {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Room left for the reply envelope when a history is cut to fit max_payload.
constexpr std::int64_t kEnvelopeBytes = std::int64_t{64} * 1024;

// Every reply type has `error` as field 15, so an error for a request whose
// operation is unknown can be sent as any of them.
template <typename Reply>
Reply ErrorReply(const Status& status) {
  Reply reply;
  *reply.mutable_error() = ErrorFromStatus(status);
  return reply;
}

}  // namespace

struct ApiServer::Impl {
  // Where and how to answer one request.
  struct Requester {
    std::string reply_to;
    bool json = false;
  };
  // A request waiting for the engine: `result` for its run to close, a
  // heartbeat for its commit, a query for a pool thread and the run's
  // answer. Answered exactly once, by whichever comes first: the engine, the
  // deadline (with `on_expire`) or Stop.
  enum class Kind { kResult, kHeartbeat, kQuery };
  struct PendingResult {
    Requester requester;
    Kind kind = Kind::kResult;
    std::uint64_t token = 0;  // OnClosed token (result only)
    Status on_expire;
    std::atomic<bool> answered{false};
  };
  // A query waiting for a pool thread.
  struct QueryJob {
    std::shared_ptr<PendingResult> pending;
    QueryCall call;
    SteadyClock::time_point deadline;
  };
  struct Deadline {
    SteadyClock::time_point at;
    std::weak_ptr<PendingResult> pending;
    bool operator>(const Deadline& o) const { return at > o.at; }
  };
  // Shared with engine callbacks; see Stop.
  struct Life {
    std::mutex mu;
    bool alive = true;
  };

  Impl(NatsConnection& c, Engine& e, Codec cd, ApiServerOptions o)
      : conn(c), engine(e), codec(std::move(cd)), options(std::move(o)) {}

  static void OnMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);
  static void OnList(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);
  void Handle(natsMsg* msg);
  void HandleList(natsMsg* msg);
  void Query(const std::string& id, const WireMessage& wire, const Requester& to);
  void QueryLoop();
  void AnswerQuery(PendingResult& pending, const Result<Payload>& result);
  void Dispatch(const ApiSubject& subject, const WireMessage& wire, const Requester& to);
  void Describe(const std::string& id, const Requester& to);
  void History(const std::string& id, const WireMessage& wire, const Requester& to);
  void AwaitResult(const std::string& id, const WireMessage& wire, const Requester& to);
  void Heartbeat(const std::string& id, const WireMessage& wire, const Requester& to);
  void AddDeadline(const std::shared_ptr<PendingResult>& pending, std::chrono::milliseconds after);
  void Send(const Requester& to, const google::protobuf::Message& reply);
  void Answer(PendingResult& pending, const Result<Outcome>& outcome);
  void AnswerHeartbeat(PendingResult& pending, const Status& engine_status);
  // Answers a pending request that the engine did not answer in time.
  void Expire(PendingResult& pending, const Status& why);
  void TimerLoop();
  void CancelAll();

  NatsConnection& conn;
  Engine& engine;
  const Codec codec;
  const ApiServerOptions options;
  std::vector<natsSubscription*> subs;
  std::shared_ptr<Life> life = std::make_shared<Life>();

  std::mutex mu;
  std::condition_variable cv;
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<>> deadlines;  // guarded by mu
  bool stopping = false;                                                           // guarded by mu
  std::condition_variable query_cv;
  std::deque<QueryJob> queries;       // guarded by mu
  std::size_t queries_in_flight = 0;  // queued or running; guarded by mu
  std::thread timer;
  std::vector<std::thread> query_pool;
  bool stopped = false;  // owner thread only
};

void ApiServer::Impl::OnMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  MsgPtr owned(msg);
  static_cast<Impl*>(closure)->Handle(owned.get());
}

void ApiServer::Impl::OnList(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  MsgPtr owned(msg);
  static_cast<Impl*>(closure)->HandleList(owned.get());
}

// One page of the owned partitions' workflows. Every worker answers; the
// client merges what arrives.
void ApiServer::Impl::HandleList(natsMsg* msg) {
  const char* reply_to = natsMsg_GetReply(msg);
  if (reply_to == nullptr || *reply_to == '\0') return;
  WireMessage wire = ToWire(msg);
  Requester to{reply_to, IsJson(wire.headers)};
  auto request = codec.DecodeList(wire);
  Result<ListPage> page = Status::Ok();
  if (request.ok()) {
    request->partitions = options.partitions;
    page = engine.List(*request);
  } else {
    page = request.status();
  }
  if (!page.ok()) {
    auto reply = ErrorReply<wire::ListReply>(page.status());
    for (std::uint32_t p : options.partitions) reply.add_partitions(p);
    return Send(to, reply);
  }
  Send(to, MakeListReply(*page, options.partitions));
}

void ApiServer::Impl::Handle(natsMsg* msg) {
  const char* reply_to = natsMsg_GetReply(msg);
  if (reply_to == nullptr || *reply_to == '\0') return;  // nobody to answer
  WireMessage wire = ToWire(msg);
  Requester to{reply_to, IsJson(wire.headers)};
  auto subject = codec.subjects().ParseApi(wire.subject);
  if (!subject.ok()) {
    Send(to, ErrorReply<wire::DescribeReply>(subject.status()));
    return;
  }
  Dispatch(*subject, wire, to);
}

void ApiServer::Impl::Dispatch(const ApiSubject& subject, const WireMessage& wire,
                               const Requester& to) {
  switch (subject.op) {
    case ApiOp::kDescribe:
      return Describe(subject.workflow_id, to);
    case ApiOp::kHistory:
      return History(subject.workflow_id, wire, to);
    case ApiOp::kResult:
      return AwaitResult(subject.workflow_id, wire, to);
    case ApiOp::kHeartbeat:
      return Heartbeat(subject.workflow_id, wire, to);
    case ApiOp::kQuery:
      return Query(subject.workflow_id, wire, to);
    default:
      Send(to, ErrorReply<wire::DescribeReply>(InvalidArgument(
                   "operation '" + std::string(ApiOpName(subject.op)) + "' is not supported yet")));
  }
}

void ApiServer::Impl::Describe(const std::string& id, const Requester& to) {
  auto description = engine.Describe(id);
  if (!description.ok()) return Send(to, ErrorReply<wire::DescribeReply>(description.status()));
  Send(to, MakeDescribeReply(*description));
}

// Events from `from_seq` on, at most `limit`, cut short where the reply would
// no longer fit the server's max_payload: the client pages on from the last seq.
void ApiServer::Impl::History(const std::string& id, const WireMessage& wire, const Requester& to) {
  wire::HistoryRequest request;
  Status decoded = codec.DecodeRequest(wire, &request);
  if (!decoded.ok()) return Send(to, ErrorReply<wire::HistoryReply>(decoded));
  auto events = engine.History(id);
  if (!events.ok()) return Send(to, ErrorReply<wire::HistoryReply>(events.status()));
  const std::uint64_t from = std::max<std::uint64_t>(request.from_seq(), 1);
  const std::size_t limit = request.limit() == 0 ? events->size() : request.limit();
  const auto room = static_cast<std::size_t>(
      std::max<std::int64_t>(kEnvelopeBytes, conn.max_payload() - kEnvelopeBytes));
  wire::HistoryReply reply;
  std::size_t bytes = 0;
  for (const HistoryEvent& e : *events) {
    if (e.seq() < from) continue;
    if (static_cast<std::size_t>(reply.events_size()) >= limit) break;
    bytes += e.ByteSizeLong() + 8;
    if (bytes > room) break;
    *reply.add_events() = e;
  }
  Send(to, reply);
}

void ApiServer::Impl::AwaitResult(const std::string& id, const WireMessage& wire,
                                  const Requester& to) {
  wire::ResultRequest request;
  Status decoded = codec.DecodeRequest(wire, &request);
  if (!decoded.ok()) return Send(to, ErrorReply<wire::ResultReply>(decoded));
  // Capped: every waiting request holds memory until its deadline.
  const auto timeout =
      request.timeout_ms() == 0
          ? options.default_result_timeout
          : std::min(std::chrono::milliseconds(request.timeout_ms()), options.max_result_timeout);
  auto pending = std::make_shared<PendingResult>();
  pending->requester = to;
  pending->on_expire = Status(StatusCode::kDeadlineExceeded, "the run did not close in time");
  // The callback may run at once (the run already closed), on this thread.
  pending->token =
      engine.OnClosed(id, [this, pending, life = life](const Result<Outcome>& outcome) {
        std::lock_guard lock(life->mu);
        if (life->alive) Answer(*pending, outcome);
      });
  if (pending->answered) return;
  AddDeadline(pending, timeout);
}

// The engine answers after the commit that recorded the heartbeat; a writer
// that is stuck (a failing disk) must not leave the activity worker waiting
// forever, so the request also gets a deadline.
void ApiServer::Impl::Heartbeat(const std::string& id, const WireMessage& wire,
                                const Requester& to) {
  auto heartbeat = codec.DecodeHeartbeat(wire, id);
  if (!heartbeat.ok()) return Send(to, ErrorReply<wire::HeartbeatReply>(heartbeat.status()));
  auto pending = std::make_shared<PendingResult>();
  pending->requester = to;
  pending->kind = Kind::kHeartbeat;
  pending->on_expire = Unavailable("the worker did not record the heartbeat in time");
  AddDeadline(pending, options.heartbeat_timeout);
  // The callback runs on the writer thread (or at once, on this one).
  engine.Heartbeat(std::move(*heartbeat), [this, pending, life = life](Status status) {
    std::lock_guard lock(life->mu);
    if (life->alive) AnswerHeartbeat(*pending, status);
  });
}

// Engine::Query blocks its caller until the run answers or the timeout
// passes, so it runs on the query pool, never on a delivery thread. The
// deadline answers query_timeout if the pool is busy for that long.
void ApiServer::Impl::Query(const std::string& id, const WireMessage& wire, const Requester& to) {
  auto call = codec.DecodeQuery(wire, id);
  if (!call.ok()) return Send(to, ErrorReply<wire::QueryReply>(call.status()));
  const auto timeout = call->timeout_ms == 0 ? options.default_query_timeout
                                             : std::min(std::chrono::milliseconds(call->timeout_ms),
                                                        options.max_query_timeout);
  auto pending = std::make_shared<PendingResult>();
  pending->requester = to;
  pending->kind = Kind::kQuery;
  pending->on_expire =
      Status(StatusCode::kQueryTimeout, "workflow '" + id + "' did not answer the query within " +
                                            std::to_string(timeout.count()) + " ms");
  {
    std::lock_guard lock(mu);
    if (queries_in_flight >= options.max_queued_queries) {
      pending.reset();
    } else {
      ++queries_in_flight;
      queries.push_back(QueryJob{pending, std::move(*call), SteadyClock::now() + timeout});
    }
  }
  if (!pending) {
    return Send(to, ErrorReply<wire::QueryReply>(
                        Status(StatusCode::kResourceExhausted,
                               "the worker has " + std::to_string(options.max_queued_queries) +
                                   " queries in flight; retry later")));
  }
  query_cv.notify_one();
  AddDeadline(pending, timeout);
}

void ApiServer::Impl::QueryLoop() {
  std::unique_lock lock(mu);
  while (true) {
    query_cv.wait(lock, [this] { return stopping || !queries.empty(); });
    if (stopping) return;  // queued queries are answered by CancelAll
    QueryJob job = std::move(queries.front());
    queries.pop_front();
    lock.unlock();
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(job.deadline - SteadyClock::now());
    if (!job.pending->answered && left.count() > 0) {
      auto result = engine.Query(job.call.workflow_id, std::move(job.call.name),
                                 std::move(job.call.args), left);
      AnswerQuery(*job.pending, result);
    }
    lock.lock();
    --queries_in_flight;
  }
}

void ApiServer::Impl::AnswerQuery(PendingResult& pending, const Result<Payload>& result) {
  if (pending.answered.exchange(true)) return;
  Send(pending.requester, MakeQueryReply(result));
}

void ApiServer::Impl::AddDeadline(const std::shared_ptr<PendingResult>& pending,
                                  std::chrono::milliseconds after) {
  {
    std::lock_guard lock(mu);
    deadlines.push(Deadline{SteadyClock::now() + after, pending});
  }
  cv.notify_one();
}

void ApiServer::Impl::Answer(PendingResult& pending, const Result<Outcome>& outcome) {
  if (pending.answered.exchange(true)) return;
  Send(pending.requester, MakeResultReply(outcome));
}

void ApiServer::Impl::AnswerHeartbeat(PendingResult& pending, const Status& engine_status) {
  if (pending.answered.exchange(true)) return;
  Send(pending.requester, MakeHeartbeatReply(engine_status));
}

void ApiServer::Impl::Expire(PendingResult& pending, const Status& why) {
  switch (pending.kind) {
    case Kind::kHeartbeat:
      return AnswerHeartbeat(pending, why);
    case Kind::kQuery:
      return AnswerQuery(pending, why);
    case Kind::kResult:
      engine.CancelOnClosed(pending.token);
      return Answer(pending, why);
  }
}

void ApiServer::Impl::Send(const Requester& to, const google::protobuf::Message& reply) {
  Status s = CorePublish(conn, to.reply_to, EncodeMessage(reply, to.json), ReplyHeaders(to.json));
  if (!s.ok()) spdlog::warn("api reply to '{}' failed: {}", to.reply_to, s.ToString());
}

void ApiServer::Impl::TimerLoop() {
  std::unique_lock lock(mu);
  while (!stopping) {
    if (deadlines.empty()) {
      cv.wait(lock);
      continue;
    }
    // A copy: top() moves when a request pushes while we wait.
    const SteadyClock::time_point next = deadlines.top().at;
    if (SteadyClock::now() < next) {
      cv.wait_until(lock, next);
      continue;
    }
    auto pending = deadlines.top().pending.lock();
    deadlines.pop();
    if (!pending || pending->answered) continue;
    lock.unlock();
    Expire(*pending, pending->on_expire);
    lock.lock();
  }
}

void ApiServer::Impl::CancelAll() {
  std::unique_lock lock(mu);
  while (!deadlines.empty()) {
    auto pending = deadlines.top().pending.lock();
    deadlines.pop();
    if (!pending || pending->answered) continue;
    lock.unlock();
    Expire(*pending, Unavailable("the worker is shutting down"));
    lock.lock();
  }
}

Result<std::unique_ptr<ApiServer>> ApiServer::Start(NatsConnection& conn, Engine& engine,
                                                    Codec codec, ApiServerOptions options) {
  auto impl = std::make_unique<Impl>(conn, engine, std::move(codec), std::move(options));
  Impl* raw = impl.get();
  impl->timer = std::thread([raw] { raw->TimerLoop(); });
  for (int i = 0; i < std::max(1, raw->options.query_threads); ++i) {
    impl->query_pool.emplace_back([raw] { raw->QueryLoop(); });
  }
  std::unique_ptr<ApiServer> server(new ApiServer(std::move(impl)));
  for (std::uint32_t p : raw->options.partitions) {
    const std::string subject = raw->codec.subjects().ApiFilter(p);
    natsSubscription* sub = nullptr;
    natsStatus s = natsConnection_QueueSubscribe(
        &sub, conn.nc(), subject.c_str(), raw->options.queue_group.c_str(), &Impl::OnMessage, raw);
    if (s != NATS_OK) return NatsStatus(s, "cannot subscribe to " + subject);  // ~ApiServer stops
    raw->subs.push_back(sub);
  }
  if (!raw->options.partitions.empty()) {
    const std::string subject = raw->codec.subjects().List();
    natsSubscription* sub = nullptr;
    natsStatus s = natsConnection_Subscribe(&sub, conn.nc(), subject.c_str(), &Impl::OnList, raw);
    if (s != NATS_OK) return NatsStatus(s, "cannot subscribe to " + subject);
    raw->subs.push_back(sub);
  }
  Status flushed = conn.Flush();  // the subscriptions are live once this returns
  if (!flushed.ok()) return flushed;
  return server;
}

ApiServer::ApiServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ApiServer::~ApiServer() { Stop(); }

void ApiServer::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  // Drain, not Unsubscribe: requests already received are answered, and the
  // wait guarantees no message callback still runs when Impl goes away.
  for (natsSubscription* sub : impl_->subs) natsSubscription_DrainTimeout(sub, 5000);
  for (natsSubscription* sub : impl_->subs) {
    natsSubscription_WaitForDrainCompletion(sub, 6000);
    natsSubscription_Destroy(sub);
  }
  impl_->subs.clear();
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->query_cv.notify_all();
  if (impl_->timer.joinable()) impl_->timer.join();
  for (std::thread& t : impl_->query_pool) t.join();
  impl_->query_pool.clear();
  impl_->CancelAll();
  std::lock_guard lock(impl_->life->mu);
  impl_->life->alive = false;
}

}  // namespace aion::bus
