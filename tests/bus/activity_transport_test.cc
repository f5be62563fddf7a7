// The transport of activities, cancel and terminate against a real
// nats-server: the AION_TASKS stream and task consumers, the outbox sink's
// routing of task rows (JetStream, JSON, Nats-Msg-Id per attempt) and cancel
// notes (core NATS), the API server's heartbeat op, and ingress of
// activity_result / cancel / terminate. The engine is a scripted fake here,
// so these tests pin the bus's half of the contract on their own.
#define BOOST_TEST_MODULE activity_transport
#include <boost/test/unit_test.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "aion/bus/api_server.h"
#include "aion/bus/ingress.h"
#include "aion/bus/outbox_publisher.h"
#include "aion/bus/streams.h"
#include "aion/engine/ids.h"
#include "support/nats_test_server.h"
#include "support/wait.h"

namespace aion::testing {
namespace {

using namespace std::chrono_literals;

struct StreamInfoPtr {
  jsStreamInfo* si = nullptr;
  ~StreamInfoPtr() { jsStreamInfo_Destroy(si); }
};

std::uint64_t StreamMessages(bus::NatsConnection& conn, std::string_view name) {
  StreamInfoPtr info;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const std::string stream(name);
  BOOST_REQUIRE(js_GetStreamInfo(&info.si, conn.js(), stream.c_str(), nullptr, &jerr) == NATS_OK);
  return info.si->State.Msgs;
}

std::string Header(natsMsg* msg, const char* name) {
  const char* value = nullptr;
  if (natsMsgHeader_Get(msg, name, &value) != NATS_OK || value == nullptr) return "";
  return value;
}

// The last message stored on `subject` in AION_TASKS, or null.
NatsMsgPtr LastTask(bus::NatsConnection& conn, const std::string& subject) {
  natsMsg* raw = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (js_GetLastMsg(&raw, conn.js(), "AION_TASKS", subject.c_str(), nullptr, &jerr) != NATS_OK) {
    return nullptr;
  }
  return NatsMsgPtr(raw);
}

OutboxRow TaskRow(std::uint32_t attempt = 2, OutboxRow::Kind kind = OutboxRow::KIND_ACTIVITY_TASK,
                  const std::string& queue = "payments") {
  OutboxRow row;
  row.set_key("order-7/0000000000000000000" + std::to_string(attempt));
  row.set_kind(kind);
  row.set_workflow_id("order-7");
  row.set_workflow_type("order");
  auto* t = row.mutable_task();
  t->set_run_id("run-1");
  t->set_activity_id("#1");
  t->set_attempt(attempt);
  t->set_activity_type("charge");
  t->set_task_queue(queue);
  *t->mutable_input() = JsonPayload(Json{{"amount", 12}});
  t->set_start_to_close_us(10'000'000);
  t->set_scheduled_at_us(1'700'000'000'000'000);
  t->set_started_at_us(1'700'000'000'100'000);
  t->set_reason("workflow cancelled");
  return row;
}

BOOST_AUTO_TEST_CASE(tasks_stream_is_a_work_queue_with_a_consumer_per_queue) {
  NatsTestServer server;
  auto conn = server.Connect();
  bus::Subjects subjects;
  BOOST_REQUIRE(bus::EnsureStreams(*conn, subjects, {}).ok());
  BOOST_REQUIRE(bus::EnsureStreams(*conn, subjects, {}).ok());  // idempotent
  StreamInfoPtr tasks;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  BOOST_REQUIRE(js_GetStreamInfo(&tasks.si, conn->js(), "AION_TASKS", nullptr, &jerr) == NATS_OK);
  BOOST_REQUIRE(tasks.si->Config->SubjectsLen == 1);
  BOOST_TEST(std::string(tasks.si->Config->Subjects[0]) == "aion.task.*");
  BOOST_TEST(tasks.si->Config->Retention == js_WorkQueuePolicy);
  BOOST_TEST(tasks.si->Config->Storage == js_FileStorage);
  BOOST_TEST(tasks.si->Config->Duplicates == std::int64_t{120'000'000'000});

  // The worker creates no task consumers; activity workers do.
  BOOST_REQUIRE(bus::EnsureTaskConsumer(*conn, subjects, "echo", {.ack_wait = 45s}).ok());
  BOOST_REQUIRE(bus::EnsureTaskConsumer(*conn, subjects, "echo", {.ack_wait = 45s}).ok());
  BOOST_REQUIRE(bus::EnsureTaskConsumer(*conn, subjects, "payments").ok());
  jsConsumerInfo* ci = nullptr;
  BOOST_REQUIRE(js_GetConsumerInfo(&ci, conn->js(), "AION_TASKS", "task-echo", nullptr, &jerr) ==
                NATS_OK);
  BOOST_TEST(std::string(ci->Config->FilterSubject) == "aion.task.echo");
  BOOST_TEST(ci->Config->AckPolicy == js_AckExplicit);
  BOOST_TEST(ci->Config->AckWait == std::int64_t{45'000'000'000});
  jsConsumerInfo_Destroy(ci);
  Status bad = bus::EnsureTaskConsumer(*conn, subjects, "a.b");
  BOOST_TEST((bad.code() == StatusCode::kInvalidArgument), bad.ToString());
  BOOST_TEST(bus::TaskConsumerName("echo") == "task-echo");

  // A stream-less publish of a cancel note subject is not captured (two tokens after task).
  NatsCollector notes(*conn, "aion.task.>");
  BOOST_REQUIRE(natsConnection_PublishString(conn->nc(), "aion.task.echo.cancel", "{}") == NATS_OK);
  BOOST_REQUIRE(notes.Next() != nullptr);
  BOOST_TEST(StreamMessages(*conn, "AION_TASKS") == 0u);
}

BOOST_AUTO_TEST_CASE(outbox_sink_publishes_tasks_as_json_once_per_attempt) {
  NatsTestServer server;
  auto conn = server.Connect("aion-test", 1s);
  bus::Subjects subjects;
  BOOST_REQUIRE(bus::EnsureStreams(*conn, subjects, {}).ok());
  BOOST_REQUIRE(bus::EnsureTaskConsumer(*conn, subjects, "payments").ok());
  bus::NatsOutboxSink sink(*conn, subjects, 16);

  BOOST_TEST(sink.Publish(TaskRow(2)).ok());
  BOOST_TEST(sink.Publish(TaskRow(2)).ok());  // republished after a crash: one copy
  BOOST_TEST(StreamMessages(*conn, "AION_TASKS") == 1u);
  BOOST_TEST(StreamMessages(*conn, "AION_EVENTS") == 0u);
  auto stored = LastTask(*conn, "aion.task.payments");
  BOOST_REQUIRE(stored != nullptr);
  BOOST_TEST(Header(stored.get(), "Content-Type") == "application/json");
  BOOST_TEST(Header(stored.get(), "Nats-Msg-Id") == "order-7:run-1:#1:2");
  const Json task = Json::parse(Body(stored.get()));
  BOOST_TEST(task["workflow_id"] == "order-7");
  BOOST_TEST(task["run_id"] == "run-1");
  BOOST_TEST(task["activity_id"] == "#1");
  BOOST_TEST(task["attempt"] == 2);
  BOOST_TEST(task["activity_type"] == "charge");
  BOOST_TEST(task["task_queue"] == "payments");
  BOOST_TEST((task["input"] == Json{{"amount", 12}}));
  BOOST_TEST(task["start_to_close_ms"] == "10000");
  BOOST_TEST(task["heartbeat_timeout_ms"] == "0");  // present although 0
  BOOST_TEST(task["result_subject"] == "aion.wf.order-7.activity_result");
  BOOST_TEST(task["heartbeat_subject"] == "aion.req.order-7.heartbeat");

  // The next attempt is a new task; another queue another subject.
  BOOST_TEST(sink.Publish(TaskRow(3)).ok());
  BOOST_TEST(sink.Publish(TaskRow(1, OutboxRow::KIND_ACTIVITY_TASK, "shipping")).ok());
  BOOST_TEST(StreamMessages(*conn, "AION_TASKS") == 3u);
  BOOST_TEST(LastTask(*conn, "aion.task.shipping") != nullptr);

  // An activity worker pulls its queue's tasks from task-<queue> and acks them.
  natsSubscription* sub = nullptr;
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = "AION_TASKS";
  so.Consumer = "task-payments";
  jsErrCode jerr = static_cast<jsErrCode>(0);
  BOOST_REQUIRE(js_PullSubscribe(&sub, conn->js(), "aion.task.payments", "task-payments", nullptr,
                                 &so, &jerr) == NATS_OK);
  natsMsgList list{};
  BOOST_REQUIRE(natsSubscription_Fetch(&list, sub, 10, 2000, &jerr) == NATS_OK);
  BOOST_TEST(list.Count == 2);
  std::set<std::string> ids;
  for (int i = 0; i < list.Count; ++i) {
    ids.insert(Header(list.Msgs[i], "Nats-Msg-Id"));
    BOOST_TEST(natsMsg_Ack(list.Msgs[i], nullptr) == NATS_OK);
  }
  natsMsgList_Destroy(&list);
  natsSubscription_Destroy(sub);
  BOOST_TEST((ids == std::set<std::string>{"order-7:run-1:#1:2", "order-7:run-1:#1:3"}));
  BOOST_TEST(WaitFor([&] { return StreamMessages(*conn, "AION_TASKS") == 1u; }));  // shipping's

  // Tasks wait for JetStream like lifecycle events: no PubAck, no Ok.
  BOOST_REQUIRE(server.process().Stop().ok());
  Status down = sink.Publish(TaskRow(4));
  BOOST_TEST((down.code() == StatusCode::kUnavailable), down.ToString());
  BOOST_REQUIRE(server.process().Restart().ok());
  BOOST_TEST(WaitFor([&] { return sink.Publish(TaskRow(4)).ok(); }));
}

BOOST_AUTO_TEST_CASE(a_task_that_can_never_be_sent_is_dropped_not_retried_forever) {
  NatsTestServer server;
  auto conn = server.Connect();
  bus::Subjects subjects;
  BOOST_REQUIRE(bus::EnsureStreams(*conn, subjects, {}).ok());
  bus::NatsOutboxSink sink(*conn, subjects, 16);
  OutboxRow huge = TaskRow();
  *huge.mutable_task()->mutable_input() =
      JsonPayload(Json(std::string(static_cast<std::size_t>(conn->max_payload()), 'x')));
  BOOST_TEST(sink.Publish(huge).ok());
  OutboxRow bad_queue = TaskRow(1, OutboxRow::KIND_ACTIVITY_TASK, "a.b");
  BOOST_TEST(sink.Publish(bad_queue).ok());
  OutboxRow unknown = TaskRow();
  unknown.set_kind(static_cast<OutboxRow::Kind>(42));
  BOOST_TEST(sink.Publish(unknown).ok());
  BOOST_TEST(StreamMessages(*conn, "AION_TASKS") == 0u);
  // ... while a task that fits still goes out.
  BOOST_TEST(sink.Publish(TaskRow()).ok());
  BOOST_TEST(StreamMessages(*conn, "AION_TASKS") == 1u);
}

BOOST_AUTO_TEST_CASE(cancel_notes_reach_core_subscribers_and_are_not_stored) {
  NatsTestServer server;
  auto conn = server.Connect();
  auto worker = server.Connect("activity-worker");
  bus::Subjects subjects;
  BOOST_REQUIRE(bus::EnsureStreams(*conn, subjects, {}).ok());
  bus::NatsOutboxSink sink(*conn, subjects, 16);
  NatsCollector notes(*worker, "aion.task.payments.cancel");
  BOOST_TEST(sink.Publish(TaskRow(2, OutboxRow::KIND_ACTIVITY_CANCEL)).ok());
  auto note = notes.Next(5s);
  BOOST_REQUIRE(note != nullptr);
  BOOST_TEST(Header(note.get(), "Content-Type") == "application/json");
  BOOST_TEST((Json::parse(Body(note.get())) == Json{{"workflow_id", "order-7"},
                                                    {"run_id", "run-1"},
                                                    {"activity_id", "#1"},
                                                    {"attempt", 2},
                                                    {"reason", "workflow cancelled"}}));
  BOOST_TEST(StreamMessages(*conn, "AION_TASKS") == 0u);
  BOOST_TEST(StreamMessages(*conn, "AION_EVENTS") == 0u);
  // Nobody listening is fine: best effort.
  BOOST_TEST(sink.Publish(TaskRow(2, OutboxRow::KIND_ACTIVITY_CANCEL, "nobody")).ok());
  // Not Ok while the server is gone: the row stays and is sent later.
  BOOST_REQUIRE(server.process().Stop().ok());
  Status down = sink.Publish(TaskRow(3, OutboxRow::KIND_ACTIVITY_CANCEL));
  BOOST_TEST(!down.ok());
  BOOST_REQUIRE(server.process().Restart().ok());
  BOOST_TEST(
      WaitFor([&] { return sink.Publish(TaskRow(3, OutboxRow::KIND_ACTIVITY_CANCEL)).ok(); }));
}

// ---- a scripted engine for the API server and ingress ----

class FakeEngine final : public Engine {
 public:
  enum class HeartbeatMode { kOk, kNotFound, kUnavailable, kNever };

  void Shutdown() override {}

  void Submit(std::vector<IngressMessage> batch, IngressCallback done) override {
    std::vector<IngressOutcome> outcomes;
    {
      std::lock_guard lock(mu_);
      for (auto& m : batch) {
        IngressOutcome o;
        o.run_id = "run-1";
        if (m.kind == IngressMessage::Kind::kActivityResult && m.attempt == 1) o.dropped = true;
        if (m.kind == IngressMessage::Kind::kCancel && m.workflow_id == "closed") {
          o.status = Status(StatusCode::kNotRunning, "workflow 'closed' is closed (completed)");
        }
        outcomes.push_back(o);
        submitted_.push_back(std::move(m));
      }
    }
    cv_.notify_all();
    done(std::move(outcomes));
  }

  IngressOutcome Start(std::string, std::string, Payload, std::string) override { return {}; }
  IngressOutcome Signal(std::string, std::string, Payload, std::string) override { return {}; }
  IngressOutcome Send(IngressMessage) override { return {}; }

  void Heartbeat(ActivityHeartbeat heartbeat, std::function<void(Status)> done) override {
    std::lock_guard lock(mu_);
    heartbeats_.push_back(heartbeat);
    switch (heartbeat_mode_) {
      case HeartbeatMode::kOk:
        return done(Status::Ok());
      case HeartbeatMode::kNotFound:
        return done(NotFound("attempt " + std::to_string(heartbeat.attempt) + " is not running"));
      case HeartbeatMode::kUnavailable:
        return done(Unavailable("disk unplugged"));
      case HeartbeatMode::kNever:
        unanswered_.push_back(std::move(done));
        return;
    }
  }

  Result<Payload> Query(std::string_view, std::string, Payload,
                        std::chrono::milliseconds) override {
    return NotFound("fake");
  }
  Result<Description> Describe(std::string_view) override { return NotFound("fake"); }
  Result<ListPage> List(const ListRequest&) override { return ListPage{}; }
  Result<std::vector<HistoryEvent>> History(std::string_view) override { return NotFound("fake"); }
  std::uint64_t OnClosed(std::string_view, std::function<void(Result<Outcome>)> cb) override {
    cb(NotFound("fake"));
    return 1;
  }
  void CancelOnClosed(std::uint64_t) override {}
  Result<Outcome> AwaitResult(std::string_view, std::chrono::milliseconds) override {
    return NotFound("fake");
  }

  void set_heartbeat_mode(HeartbeatMode m) {
    std::lock_guard lock(mu_);
    heartbeat_mode_ = m;
  }
  std::vector<ActivityHeartbeat> heartbeats() {
    std::lock_guard lock(mu_);
    return heartbeats_;
  }
  // Answers the heartbeats left waiting (kNever), late.
  void AnswerLate(Status s) {
    std::vector<std::function<void(Status)>> late;
    {
      std::lock_guard lock(mu_);
      late.swap(unanswered_);
    }
    for (auto& done : late) done(s);
  }
  // The ingress messages submitted so far, once there are at least `n`.
  std::vector<IngressMessage> AwaitSubmitted(std::size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 20s, [&] { return submitted_.size() >= n; });
    return submitted_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  HeartbeatMode heartbeat_mode_ = HeartbeatMode::kOk;
  std::vector<ActivityHeartbeat> heartbeats_;
  std::vector<std::function<void(Status)>> unanswered_;
  std::vector<IngressMessage> submitted_;
};

std::vector<std::uint32_t> AllPartitions() {
  std::vector<std::uint32_t> all(16);
  for (std::uint32_t p = 0; p < 16; ++p) all[p] = p;
  return all;
}

const std::string kBeat =
    R"({"run_id":"run-1","activity_id":"#1","attempt":2,"details":{"done":40}})";

BOOST_AUTO_TEST_CASE(heartbeats_are_answered_with_stop_or_go_on) {
  NatsTestServer server;
  auto conn = server.Connect();
  FakeEngine engine;
  bus::ApiServerOptions options;
  options.partitions = AllPartitions();
  options.heartbeat_timeout = 400ms;
  auto api = bus::ApiServer::Start(*conn, engine, bus::Codec(), options);
  BOOST_REQUIRE(api.ok());
  auto client = server.Connect("activity-worker");

  Json going = Json::parse(Request(*client, "aion.req.order-7.heartbeat", kBeat, true));
  BOOST_TEST(!going.contains("error"), going.dump());
  BOOST_TEST(going.value("cancel_requested", false) == false);
  auto beats = engine.heartbeats();
  BOOST_REQUIRE(beats.size() == 1u);
  BOOST_TEST(beats[0].workflow_id == "order-7");
  BOOST_TEST(beats[0].run_id == "run-1");
  BOOST_TEST(beats[0].activity_id == "#1");
  BOOST_TEST(beats[0].attempt == 2u);
  BOOST_TEST((*ParseJsonPayload(beats[0].details) == Json{{"done", 40}}));

  engine.set_heartbeat_mode(FakeEngine::HeartbeatMode::kNotFound);
  Json stop = Json::parse(Request(*client, "aion.req.order-7.heartbeat", kBeat, true));
  BOOST_TEST(stop["cancel_requested"] == true);
  BOOST_TEST(!stop.contains("error"));
  wire::HeartbeatRequest binary_request;
  binary_request.set_run_id("run-1");
  binary_request.set_activity_id("#1");
  binary_request.set_attempt(2);
  wire::HeartbeatReply binary;
  BOOST_REQUIRE(binary.ParseFromString(
      Request(*client, "aion.req.order-7.heartbeat", binary_request.SerializeAsString(), false)));
  BOOST_TEST(binary.cancel_requested());

  engine.set_heartbeat_mode(FakeEngine::HeartbeatMode::kUnavailable);
  Json busy = Json::parse(Request(*client, "aion.req.order-7.heartbeat", kBeat, true));
  BOOST_TEST(busy["error"]["code"] == "unavailable");
  BOOST_TEST(busy.value("cancel_requested", false) == false);

  // Bad requests never reach the engine.
  const std::size_t before = engine.heartbeats().size();
  Json bad = Json::parse(Request(*client, "aion.req.order-7.heartbeat",
                                 R"({"run_id":"run-1","activity_id":"#1","attempt":0})", true));
  BOOST_TEST(bad["error"]["code"] == "invalid_argument");
  BOOST_TEST(bad["error"]["message"].get<std::string>().find("attempt") != std::string::npos);
  Json empty = Json::parse(Request(*client, "aion.req.order-7.heartbeat", "", true));
  BOOST_TEST(empty["error"]["code"] == "invalid_argument");
  wire::HeartbeatReply garbage;
  BOOST_REQUIRE(garbage.ParseFromString(
      Request(*client, "aion.req.order-7.heartbeat", "\xff\xff\xff", false)));
  BOOST_TEST(garbage.error().code() == "invalid_argument");
  BOOST_TEST(engine.heartbeats().size() == before);

  // An engine that does not answer: unavailable after heartbeat_timeout, not
  // never; its late answer is swallowed (one reply per request).
  engine.set_heartbeat_mode(FakeEngine::HeartbeatMode::kNever);
  NatsCollector replies(*client, "test.hb.>");
  natsMsg* raw = nullptr;
  BOOST_REQUIRE(natsMsg_Create(&raw, "aion.req.order-7.heartbeat", "test.hb.1", kBeat.data(),
                               static_cast<int>(kBeat.size())) == NATS_OK);
  NatsMsgPtr request(raw);
  natsMsgHeader_Set(request.get(), "Content-Type", "application/json");
  const auto t0 = std::chrono::steady_clock::now();
  BOOST_REQUIRE(natsConnection_PublishMsg(client->nc(), request.get()) == NATS_OK);
  auto slow_msg = replies.Next(5s);
  const auto waited = std::chrono::steady_clock::now() - t0;
  BOOST_REQUIRE(slow_msg != nullptr);
  Json slow = Json::parse(Body(slow_msg.get()));
  BOOST_TEST(slow["error"]["code"] == "unavailable");
  BOOST_TEST((waited >= 400ms && waited < 4s));
  engine.AnswerLate(Status::Ok());
  BOOST_TEST(replies.Next(300ms) == nullptr);

  // A heartbeat pending at Stop is answered unavailable.
  auto pending = std::async(std::launch::async, [&] {
    return Json::parse(Request(*client, "aion.req.order-7.heartbeat", kBeat, true, 5s));
  });
  BOOST_REQUIRE(WaitFor([&] { return engine.heartbeats().size() == before + 2; }));
  (*api)->Stop();
  Json at_stop = pending.get();
  BOOST_TEST(at_stop["error"]["code"] == "unavailable");
  engine.AnswerLate(Status::Ok());  // after Stop: touches nothing
}

// Ingress decodes the new kinds and acks what the engine accepted, including
// results it dropped; bad activity results are dead-lettered.
BOOST_AUTO_TEST_CASE(ingress_feeds_results_cancels_and_terminations_to_the_engine) {
  NatsTestServer server;
  auto conn = server.Connect();
  bus::Subjects subjects;
  auto streams = bus::EnsureStreams(*conn, subjects, {});
  BOOST_REQUIRE(streams.ok());
  FakeEngine engine;
  bus::IngressOptions options;
  options.partitions = AllPartitions();
  options.stream_epoch = streams->in_epoch;
  auto ingress = bus::Ingress::Start(*conn, engine, bus::Codec(), options);
  BOOST_REQUIRE(ingress.ok());
  auto client = server.Connect("client");
  NatsCollector replies(*client, "test.replies.>");
  NatsCollector dlq(*client, "aion.dlq.>");
  auto reply_to = [](const std::string& name) {
    bus::Headers h = kJsonHeaders;
    h["Aion-Reply-To"] = "test.replies." + name;
    return h;
  };
  auto next_reply = [&](const std::string& name) {
    auto msg = replies.Next(20s);
    BOOST_REQUIRE_MESSAGE(msg != nullptr, "no reply for " << name);
    BOOST_TEST(std::string(natsMsg_GetSubject(msg.get())) == "test.replies." + name);
    return Json::parse(Body(msg.get()));
  };

  JsPublish(*client, "aion.wf.order-7.activity_result",
            R"({"run_id":"run-1","activity_id":"#1","attempt":2,"output":{"ok":true}})",
            reply_to("result"));
  Json accepted = next_reply("result");
  BOOST_TEST(!accepted.contains("error"), accepted.dump());
  BOOST_TEST(accepted.value("dropped", false) == false);
  JsPublish(*client, "aion.wf.order-7.activity_result",
            R"({"run_id":"run-1","activity_id":"#1","attempt":1,"failure":{"message":"late"}})",
            reply_to("late"));
  Json late = next_reply("late");
  BOOST_TEST(!late.contains("error"), late.dump());
  BOOST_TEST(late["dropped"] == true);  // acked, nothing recorded
  JsPublish(*client, "aion.wf.order-7.cancel", R"({"reason":"customer asked","request_id":"c-1"})",
            reply_to("cancel"));
  BOOST_TEST(!next_reply("cancel").contains("error"));
  JsPublish(*client, "aion.wf.closed.cancel", "{}", reply_to("closed"));
  BOOST_TEST(next_reply("closed")["error"]["code"] == "not_running");
  wire::TerminateWorkflow terminate;
  terminate.set_reason("stuck");
  JsPublish(*client, "aion.wf.order-7.terminate", terminate.SerializeAsString());

  // Partitions run in parallel: look at order-7's messages, in their order.
  std::vector<IngressMessage> submitted;
  for (auto& m : engine.AwaitSubmitted(5)) {
    if (m.workflow_id == "order-7") submitted.push_back(m);
  }
  BOOST_REQUIRE(submitted.size() == 4u);
  BOOST_TEST((submitted[0].kind == IngressMessage::Kind::kActivityResult));
  BOOST_TEST(submitted[0].workflow_id == "order-7");
  BOOST_TEST(submitted[0].activity_id == "#1");
  BOOST_TEST(submitted[0].attempt == 2u);
  BOOST_TEST(submitted[0].input.data() == R"({"ok":true})");
  BOOST_TEST(submitted[1].activity_failed);
  BOOST_TEST(submitted[1].failure.message() == "late");
  BOOST_TEST((submitted[2].kind == IngressMessage::Kind::kCancel));
  BOOST_TEST(submitted[2].reason == "customer asked");
  BOOST_TEST(submitted[2].dedupe_key == "cancel:order-7:c-1");
  BOOST_TEST((submitted[3].kind == IngressMessage::Kind::kTerminate));
  BOOST_TEST(submitted[3].reason == "stuck");
  BOOST_TEST(submitted[3].dedupe_key.rfind("seq:" + streams->in_epoch + ":", 0) == 0u);

  // A result no engine could use is dead-lettered under its kind, and answered.
  JsPublish(*client, "aion.wf.order-7.activity_result", R"({"activity_id":"#1","attempt":2})",
            reply_to("bad"));
  Json bad = next_reply("bad");
  BOOST_TEST(bad["error"]["code"] == "invalid_argument");
  auto letter_msg = dlq.Next(10s);
  BOOST_REQUIRE(letter_msg != nullptr);
  BOOST_TEST(std::string(natsMsg_GetSubject(letter_msg.get())) == "aion.dlq.activity_result");
  wire::DeadLetter letter;
  BOOST_REQUIRE(letter.ParseFromString(Body(letter_msg.get())));
  BOOST_TEST(letter.reason() == "run_id is empty");
  BOOST_TEST(WaitFor([&] { return StreamMessages(*client, "AION_IN") == 0u; }));
  BOOST_TEST((*ingress)->stats().acked == 5u);
  BOOST_TEST((*ingress)->stats().dead_lettered == 1u);
  BOOST_TEST(engine.AwaitSubmitted(5).size() == 5u);  // the bad one never reached it
  (*ingress)->Stop();
}

}  // namespace
}  // namespace aion::testing
