#include "aion/bus/ingress.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "aion/bus/reply_when.h"
#include "aion/bus/streams.h"
#include "nats_util.h"

namespace aion::bus {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Headroom left for the DeadLetter envelope when a message must be cut down
// to fit the server's max_payload.
constexpr std::int64_t kEnvelopeBytes = std::int64_t{64} * 1024;

// One fetched message, kept until it is acked, nacked or terminated.
struct Delivery {
  MsgPtr msg;
  WireMessage wire;
  std::uint64_t stream_seq = 0;
  std::uint64_t num_delivered = 1;
  std::string workflow_id;  // "" if the subject did not parse
  bool signal = false;      // the subject's kind is `signal`
};

struct DeadLetterJob {
  Delivery delivery;
  std::string kind;
  Status reason;
};

// What to do with a message once the engine reported on it.
enum class Disposition {
  kAck,          // committed, a duplicate, or refused for good: ack and answer
  kDeadLetter,   // input that can never succeed: DLQ, Term, answer
  kRetry,        // nothing committed (DESIGN §4.10): do not ack, pause the partition
  kRetryPoison,  // unexpected error: retry, dead-letter after poison_deliveries
};

Disposition Classify(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
    case StatusCode::kAlreadyStarted:
    case StatusCode::kNotFound:
    case StatusCode::kNotRunning:
      return Disposition::kAck;
    case StatusCode::kUnknownWorkflowType:
    case StatusCode::kInvalidArgument:
      return Disposition::kDeadLetter;
    case StatusCode::kUnavailable:
    case StatusCode::kResourceExhausted:
      return Disposition::kRetry;
    default:
      return Disposition::kRetryPoison;
  }
}

// A signal to an id with no workflow can never be delivered: it is
// dead-lettered (with its not_found answer) rather than dropped unseen.
Disposition Classify(const Delivery& d, StatusCode code) {
  if (d.signal && code == StatusCode::kNotFound) return Disposition::kDeadLetter;
  return Classify(code);
}

bool NoMessages(natsStatus s) { return s == NATS_TIMEOUT || s == NATS_NOT_FOUND || s == NATS_OK; }

// One pull request. `no_wait`: answer with what is there now.
std::vector<MsgPtr> FetchOnce(natsSubscription* sub, int batch, bool no_wait, milliseconds wait,
                              natsStatus* status) {
  jsFetchRequest req;
  jsFetchRequest_Init(&req);
  req.Batch = batch;
  req.NoWait = no_wait;
  req.Expires = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
  natsMsgList list{};
  *status = natsSubscription_FetchRequest(&list, sub, &req);
  std::vector<MsgPtr> out;
  if (*status != NATS_OK) return out;
  for (int i = 0; i < list.Count; ++i) {
    out.emplace_back(list.Msgs[i]);
    list.Msgs[i] = nullptr;  // owned by `out` now; the list frees only its array
  }
  natsMsgList_Destroy(&list);
  return out;
}

}  // namespace

struct Ingress::Impl {
  struct Partition {
    std::uint32_t id = 0;
    natsSubscription* sub = nullptr;
    std::thread thread;
    std::mutex mu;
    std::condition_variable cv;
    int inflight = 0;                     // guarded by mu
    SteadyClock::time_point resume_at{};  // guarded by mu: no fetching before
    milliseconds backoff{0};              // guarded by mu
    bool paused = false;                  // guarded by mu
    // Fetch thread only: supervision of the consumer loop.
    int failures = 0;                      // failed fetches in a row
    SteadyClock::time_point last_check{};  // the consumer was last seen then
  };
  // Shared with engine callbacks. Once `alive` is false (Stop gave up
  // waiting), a late callback touches nothing of the Ingress.
  struct Life {
    std::mutex mu;
    bool alive = true;
  };

  Impl(NatsConnection& c, Engine& e, Codec cd, IngressOptions o)
      : conn(c), engine(e), codec(std::move(cd)), options(std::move(o)) {}

  Status Bind(Partition& p);
  void FetchLoop(Partition& p);
  bool WaitForTurn(Partition& p);
  void Sleep(Partition& p, milliseconds d);
  std::vector<MsgPtr> Fetch(Partition& p);
  void Supervise(Partition& p, const std::string& failure);
  bool ConsumerMissing(Partition& p);
  void Restart(Partition& p);
  Delivery Receive(MsgPtr msg) const;
  void Dispatch(Partition& p, std::vector<MsgPtr> msgs);
  void OnCommitted(Partition& p, std::vector<Delivery>& items,
                   const std::vector<IngressOutcome>& outcomes);
  void Settle(Partition& p, Delivery& d, const IngressOutcome& o, Status* transient,
              bool* committed);
  void UpdatePause(Partition& p, const Status& transient, bool committed);
  void Ack(Delivery& d);
  void Nak(Delivery& d);
  void Reply(const Delivery& d, const google::protobuf::Message& reply);
  void EnqueueDeadLetter(Delivery d, Status reason);
  void DeadLetterLoop();
  void DeadLetter(DeadLetterJob& job);
  void WaitForInflight();
  void StopDeadLetters();

  NatsConnection& conn;
  Engine& engine;
  const Codec codec;
  const IngressOptions options;
  std::vector<std::unique_ptr<Partition>> partitions;
  std::atomic<bool> stopping{false};
  bool fetch_stopped = false;  // owner thread only
  bool stopped = false;        // owner thread only
  std::shared_ptr<Life> life = std::make_shared<Life>();

  std::mutex dlq_mu;
  std::condition_variable dlq_cv;
  std::deque<DeadLetterJob> dlq_jobs;    // guarded by dlq_mu
  bool dlq_stop = false;                 // guarded by dlq_mu
  SteadyClock::time_point dlq_deadline;  // guarded by dlq_mu: set with dlq_stop
  std::thread dlq_thread;

  std::atomic<std::uint64_t> fetched{0}, acked{0}, dead_lettered{0}, nacked{0}, pauses{0},
      restarts{0};
};

Status Ingress::Impl::Bind(Partition& p) {
  if (p.id >= codec.options().partitions) {
    return InvalidArgument("partition " + std::to_string(p.id) + " is out of range (P = " +
                           std::to_string(codec.options().partitions) + ")");
  }
  const std::string name = ConsumerName(p.id);
  const std::string stream(kInStream);
  const std::string filter = codec.subjects().InboxFilter(p.id);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Consumer = name.c_str();
  so.ManualAck = true;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s =
      js_PullSubscribe(&p.sub, conn.js(), filter.c_str(), name.c_str(), nullptr, &so, &jerr);
  if (s != NATS_OK) return NatsStatus(s, "cannot bind to consumer " + name, jerr);
  return Status::Ok();
}

bool Ingress::Impl::WaitForTurn(Partition& p) {
  std::unique_lock lock(p.mu);
  while (!stopping) {
    const auto now = SteadyClock::now();
    const auto resume_at = p.resume_at;  // a copy: callbacks move it while we wait
    if (now < resume_at) {
      p.cv.wait_until(lock, resume_at);
    } else if (p.inflight >= options.max_inflight_batches) {
      p.cv.wait(lock);
    } else {
      return true;
    }
  }
  return false;
}

void Ingress::Impl::Sleep(Partition& p, milliseconds d) {
  std::unique_lock lock(p.mu);
  p.cv.wait_for(lock, d, [&] { return stopping.load(); });
}

// One pull with no_wait and an expiry: the server answers at once with what
// is queued (up to a batch, so batches grow under load) and, when nothing is,
// as soon as the first message arrives (nats-server >= 2.9), so an idle
// partition reacts without delay and still checks `stopping` every idle_wait.
std::vector<MsgPtr> Ingress::Impl::Fetch(Partition& p) {
  natsStatus s = NATS_OK;
  auto msgs = FetchOnce(p.sub, options.max_batch, true, options.idle_wait, &s);
  if (msgs.empty() && s == NATS_NOT_FOUND) {
    // An older server answered "no messages" at once: long-poll for one instead.
    msgs = FetchOnce(p.sub, 1, false, options.idle_wait, &s);
  }
  if (stopping) return msgs;
  if (msgs.empty() && !NoMessages(s)) {
    Supervise(p, NatsStatus(s, "fetch from " + ConsumerName(p.id)).message());
    return msgs;
  }
  if (p.failures > 0) spdlog::info("partition {}: fetching again", p.id);
  p.failures = 0;
  // A deleted consumer may look like an idle one: check it now and then.
  if (msgs.empty() && SteadyClock::now() - p.last_check >= options.consumer_check) {
    p.last_check = SteadyClock::now();
    if (ConsumerMissing(p)) Restart(p);
  }
  return msgs;
}

// Backs off after a failure of the loop; restarts it after several in a row.
void Ingress::Impl::Supervise(Partition& p, const std::string& failure) {
  ++p.failures;
  if (p.failures == 1 || p.failures % 20 == 0) {
    spdlog::warn("partition {}: consumer loop failed ({} in a row): {}", p.id, p.failures, failure);
  }
  const auto backoff =
      std::min(options.max_fetch_backoff, milliseconds(250) * (1 << std::min(p.failures - 1, 10)));
  Sleep(p, backoff);
  if (!stopping && p.failures % options.rebind_after == 0) Restart(p);
}

bool Ingress::Impl::ConsumerMissing(Partition& p) {
  jsConsumerInfo* info = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetConsumerInfo(&info, conn.js(), std::string(kInStream).c_str(),
                                          ConsumerName(p.id).c_str(), nullptr, &jerr);
  jsConsumerInfo_Destroy(info);
  return s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr || jerr == JSStreamNotFoundErr;
}

// Restarts the partition's consumer loop: repairs what the worker set up
// (a deleted consumer is recreated), then binds to the consumer again.
void Ingress::Impl::Restart(Partition& p) {
  ++restarts;
  if (options.repair) {
    if (Status s = options.repair(); !s.ok()) {
      spdlog::warn("partition {}: repair before restart failed: {}", p.id, s.ToString());
    }
  }
  natsSubscription* old = p.sub;
  p.sub = nullptr;
  if (Status s = Bind(p); !s.ok()) {
    spdlog::warn("partition {}: cannot restart its consumer loop yet: {}", p.id, s.ToString());
    p.sub = old;  // keep a subscription to retry with
    return;
  }
  natsSubscription_Destroy(old);
  spdlog::info("partition {}: consumer loop restarted", p.id);
}

void Ingress::Impl::FetchLoop(Partition& p) {
  while (WaitForTurn(p)) {
    try {
      auto msgs = Fetch(p);
      if (!msgs.empty()) Dispatch(p, std::move(msgs));
    } catch (const std::exception& e) {
      Supervise(p, std::string("exception: ") + e.what());
    }
  }
}

Delivery Ingress::Impl::Receive(MsgPtr msg) const {
  Delivery d;
  d.wire = ToWire(msg.get());
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, msg.get()) == NATS_OK) {
    d.stream_seq = meta->Sequence.Stream;
    d.num_delivered = meta->NumDelivered;
    jsMsgMetaData_Destroy(meta);
  }
  auto subject = codec.subjects().ParseInbox(d.wire.subject);
  if (subject.ok()) {
    d.workflow_id = subject->workflow_id;
    d.signal = subject->kind == IngressKind::kSignal;
  }
  d.msg = std::move(msg);
  return d;
}

void Ingress::Impl::Dispatch(Partition& p, std::vector<MsgPtr> msgs) {
  fetched += msgs.size();
  auto items = std::make_shared<std::vector<Delivery>>();
  std::vector<IngressMessage> batch;
  for (auto& m : msgs) {
    Delivery d = Receive(std::move(m));
    auto decoded = codec.DecodeIngress(d.wire, d.stream_seq, options.stream_epoch);
    if (!decoded.ok()) {
      EnqueueDeadLetter(std::move(d), decoded.status());
      continue;
    }
    batch.push_back(std::move(*decoded));
    items->push_back(std::move(d));
  }
  if (batch.empty()) return;
  {
    std::lock_guard lock(p.mu);
    ++p.inflight;
  }
  engine.Submit(std::move(batch),
                [this, &p, items, life = life](const std::vector<IngressOutcome>& outcomes) {
                  std::lock_guard lock(life->mu);
                  if (life->alive) OnCommitted(p, *items, outcomes);
                });
}

void Ingress::Impl::OnCommitted(Partition& p, std::vector<Delivery>& items,
                                const std::vector<IngressOutcome>& outcomes) {
  Status transient;
  bool committed = false;
  for (std::size_t i = 0; i < items.size(); ++i) {
    IngressOutcome o;
    if (i < outcomes.size()) {
      o = outcomes[i];
    } else {
      o.status = Internal("the engine reported no outcome for this message");
    }
    Settle(p, items[i], o, &transient, &committed);
  }
  UpdatePause(p, transient, committed);
  {
    std::lock_guard lock(p.mu);
    --p.inflight;
  }
  p.cv.notify_all();
}

void Ingress::Impl::Settle(Partition& p, Delivery& d, const IngressOutcome& o, Status* transient,
                           bool* committed) {
  switch (Classify(d, o.status.code())) {
    case Disposition::kAck:
      if (o.dropped) {
        // An activity result for an attempt no longer running, or a repeated
        // cancel: nothing to record (DESIGN §4.6), nothing to retry.
        spdlog::debug("partition {}: message {} on {} accepted, nothing recorded", p.id,
                      d.stream_seq, d.wire.subject);
      }
      Ack(d);
      Reply(d, MakeIngressReply(d.workflow_id, o));
      *committed = true;
      return;
    case Disposition::kDeadLetter:
      *committed = true;  // the engine answered; the message itself is bad
      EnqueueDeadLetter(std::move(d), o.status);
      return;
    case Disposition::kRetry:
      *transient = o.status;
      Nak(d);
      return;
    case Disposition::kRetryPoison:
      spdlog::error("partition {}: message {} on {} failed (delivery {}): {}", p.id, d.stream_seq,
                    d.wire.subject, d.num_delivered, o.status.ToString());
      if (d.num_delivered >= options.poison_deliveries) {
        EnqueueDeadLetter(std::move(d), o.status);
      } else {
        Nak(d);
      }
      return;
  }
}

void Ingress::Impl::UpdatePause(Partition& p, const Status& transient, bool committed) {
  std::lock_guard lock(p.mu);
  if (!transient.ok()) {
    p.backoff = std::clamp(p.backoff * 2, options.nak_delay, options.max_pause);
    p.resume_at = SteadyClock::now() + p.backoff;
    if (!p.paused) {
      p.paused = true;
      ++pauses;
      spdlog::warn("partition {}: commit failed ({}); messages stay unacked and fetching pauses",
                   p.id, transient.ToString());
    }
  } else if (committed && p.paused) {
    p.paused = false;
    p.backoff = milliseconds(0);
    p.resume_at = {};
    spdlog::info("partition {}: commits succeed again; fetching resumes", p.id);
  }
}

void Ingress::Impl::Ack(Delivery& d) {
  // A lost ack means a redelivery, which the dedupe table absorbs (DESIGN §4.2).
  natsStatus s = natsMsg_Ack(d.msg.get(), nullptr);
  if (s != NATS_OK) spdlog::debug("ack of {} failed: {}", d.stream_seq, natsStatus_GetText(s));
  ++acked;
}

void Ingress::Impl::Nak(Delivery& d) {
  natsStatus s = natsMsg_NakWithDelay(d.msg.get(), options.nak_delay.count(), nullptr);
  if (s != NATS_OK) spdlog::debug("nak of {} failed: {}", d.stream_seq, natsStatus_GetText(s));
  ++nacked;
}

void Ingress::Impl::Reply(const Delivery& d, const google::protobuf::Message& reply) {
  const std::string to(HeaderValue(d.wire.headers, kReplyToHeader));
  if (to.empty()) return;
  if (Status allowed = CheckReplySubject(to, codec.subjects().prefix()); !allowed.ok()) {
    spdlog::warn("not replying to '{}': {}", SanitizeUtf8(to), allowed.message());
    return;
  }
  const bool json = IsJson(d.wire.headers);
  Status s = CorePublish(conn, to, EncodeMessage(reply, json), ReplyHeaders(json));
  if (!s.ok()) spdlog::warn("reply to '{}' failed: {}", to, s.ToString());
}

void Ingress::Impl::EnqueueDeadLetter(Delivery d, Status reason) {
  std::string kind = codec.DlqKind(d.wire.subject);
  {
    std::lock_guard lock(dlq_mu);
    dlq_jobs.push_back(DeadLetterJob{std::move(d), std::move(kind), std::move(reason)});
  }
  dlq_cv.notify_one();
}

void Ingress::Impl::DeadLetterLoop() {
  std::unique_lock lock(dlq_mu);
  while (true) {
    dlq_cv.wait(lock, [&] { return dlq_stop || !dlq_jobs.empty(); });
    if (dlq_jobs.empty()) return;  // stopping and drained
    if (dlq_stop && SteadyClock::now() > dlq_deadline) {
      // Out of time: the rest stay unacked and are redelivered to the next owner.
      spdlog::warn("{} rejected message(s) not dead-lettered before shutdown", dlq_jobs.size());
      dlq_jobs.clear();
      return;
    }
    DeadLetterJob job = std::move(dlq_jobs.front());
    dlq_jobs.pop_front();
    lock.unlock();
    DeadLetter(job);
    lock.lock();
  }
}

// Publishes the rejected message with its reason, then Terms it: if the
// publish fails the message is nacked and dead-lettered on redelivery.
void Ingress::Impl::DeadLetter(DeadLetterJob& job) {
  Delivery& d = job.delivery;
  wire::DeadLetter letter;
  // Strings in the envelope must be UTF-8 for it to parse; the original bytes
  // stay intact in `data`.
  letter.set_subject(SanitizeUtf8(d.wire.subject));
  letter.set_kind(job.kind);
  letter.set_code(std::string(StatusCodeName(job.reason.code())));
  letter.set_reason(SanitizeUtf8(job.reason.message()));
  letter.set_time_us(std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count());
  for (const auto& [k, v] : d.wire.headers) {
    (*letter.mutable_headers())[SanitizeUtf8(k)] = SanitizeUtf8(v);
  }
  auto room =
      static_cast<std::size_t>(std::max<std::int64_t>(0, conn.max_payload() - kEnvelopeBytes));
  if (options.dead_letters == EventFormat::kJson) room = room / 4 * 3;  // data goes as base64
  letter.set_data(d.wire.data.substr(0, room));
  if (d.wire.data.size() > room) {
    letter.set_reason(letter.reason() + " (data cut to " + std::to_string(room) + " of " +
                      std::to_string(d.wire.data.size()) + " bytes)");
  }
  const std::string msg_id =
      d.stream_seq == 0 ? "" : "dlq:" + options.stream_epoch + ":" + std::to_string(d.stream_seq);
  Status s =
      JsPublish(conn, codec.subjects().Dlq(job.kind), EncodeEvent(letter, options.dead_letters),
                EventHeaders(options.dead_letters), msg_id);
  if (!s.ok()) {
    spdlog::warn("cannot dead-letter message {} from {}: {}; it will be retried", d.stream_seq,
                 d.wire.subject, s.ToString());
    Nak(d);
    return;
  }
  natsMsg_Term(d.msg.get(), nullptr);
  ++dead_lettered;
  spdlog::warn("rejected message on {} ({}): {}", d.wire.subject, job.kind, job.reason.ToString());
  IngressOutcome refused;
  refused.status = job.reason;
  Reply(d, MakeIngressReply(d.workflow_id, refused));
}

void Ingress::Impl::WaitForInflight() {
  const auto deadline = SteadyClock::now() + options.drain_timeout;
  for (auto& p : partitions) {
    std::unique_lock lock(p->mu);
    if (!p->cv.wait_until(lock, deadline, [&] { return p->inflight == 0; })) {
      spdlog::warn(
          "partition {}: {} batch(es) still uncommitted at shutdown; they stay unacked "
          "and will be redelivered",
          p->id, p->inflight);
    }
  }
  std::lock_guard lock(life->mu);
  life->alive = false;
}

void Ingress::Impl::StopDeadLetters() {
  {
    std::lock_guard lock(dlq_mu);
    dlq_stop = true;
    dlq_deadline = SteadyClock::now() + options.drain_timeout;
  }
  dlq_cv.notify_all();
  if (dlq_thread.joinable()) dlq_thread.join();
}

Result<std::unique_ptr<Ingress>> Ingress::Start(NatsConnection& conn, Engine& engine, Codec codec,
                                                IngressOptions options) {
  if (options.max_batch < 1 || options.max_inflight_batches < 1) {
    return InvalidArgument("ingress max_batch and max_inflight_batches must be at least 1");
  }
  auto impl = std::make_unique<Impl>(conn, engine, std::move(codec), std::move(options));
  for (std::uint32_t id : impl->options.partitions) {
    auto p = std::make_unique<Impl::Partition>();
    p->id = id;
    Status bound = impl->Bind(*p);
    impl->partitions.push_back(std::move(p));
    if (!bound.ok()) {
      for (auto& q : impl->partitions) natsSubscription_Destroy(q->sub);
      return bound;
    }
  }
  Impl* raw = impl.get();
  impl->dlq_thread = std::thread([raw] { raw->DeadLetterLoop(); });
  for (auto& p : impl->partitions) {
    Impl::Partition* part = p.get();
    p->thread = std::thread([raw, part] { raw->FetchLoop(*part); });
  }
  return std::unique_ptr<Ingress>(new Ingress(std::move(impl)));
}

Ingress::Ingress(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Ingress::~Ingress() { Stop(); }

void Ingress::StopFetching() {
  if (impl_->fetch_stopped) return;
  impl_->fetch_stopped = true;
  impl_->stopping = true;
  for (auto& p : impl_->partitions) {
    { std::lock_guard lock(p->mu); }
    p->cv.notify_all();
  }
  for (auto& p : impl_->partitions) {
    if (p->thread.joinable()) p->thread.join();
  }
}

void Ingress::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  StopFetching();
  impl_->WaitForInflight();
  impl_->StopDeadLetters();
  for (auto& p : impl_->partitions) {
    natsSubscription_Destroy(p->sub);  // keeps the durable consumer
    p->sub = nullptr;
  }
}

IngressStats Ingress::stats() const {
  return IngressStats{impl_->fetched.load(), impl_->acked.load(),  impl_->dead_lettered.load(),
                      impl_->nacked.load(),  impl_->pauses.load(), impl_->restarts.load()};
}

}  // namespace aion::bus
