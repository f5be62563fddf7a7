// Remote activities, cancel, terminate and the run timeout end to end through
// a real nats-server and the real engine: the task a workflow schedules is
// pulled from AION_TASKS by a test "activity worker", which heartbeats and
// answers on the subjects the task names; the workflow sees the result.
#define BOOST_TEST_MODULE activity_pipeline
#include <boost/test/unit_test.hpp>
#include <numeric>

#include "aion/bus/api_server.h"
#include "aion/bus/ingress.h"
#include "aion/bus/outbox_publisher.h"
#include "aion/bus/streams.h"
#include "aion/engine/context.h"
#include "aion/engine/engine.h"
#include "aion/engine/memory_store.h"
#include "support/nats_test_server.h"
#include "support/wait.h"

namespace aion::testing {
namespace {

using namespace std::chrono_literals;

// Charges on task queue "payments"; reports a failure that will not be
// retried as {"failed": message} instead of failing the run.
Task<Json> RemoteCharge(Context& ctx, Json input) {
  ActivityOptions options;
  options.task_queue = "payments";
  options.start_to_close = std::chrono::seconds(30);
  options.retry.initial_interval = std::chrono::milliseconds(50);
  options.retry.maximum_attempts = 3;
  try {
    Json receipt = co_await ctx.activity<Json>("charge", input, options);
    co_return Json{{"receipt", receipt}};
  } catch (const ActivityFailedError& e) {
    co_return Json{{"failed", e.what()}, {"attempt", e.attempt()}};
  }
}

// The bus wired to an engine running RemoteCharge, as a worker wires it.
class Pipeline {
 public:
  explicit Pipeline(const std::string& url) {
    Check(registry_.workflow("remote_charge", &RemoteCharge));
    bus::NatsConnectionOptions conn_options;
    conn_options.url = url;
    conn_options.name = "aion-pipeline";
    conn_ = Take(bus::NatsConnection::Connect(conn_options));
    bus::Subjects subjects;
    bus::Codec codec(subjects, bus::CodecOptions{});
    auto streams = Take(bus::EnsureStreams(*conn_, subjects, {}));
    sink_ = std::make_unique<bus::NatsOutboxSink>(*conn_, subjects, 16);
    EngineOptions engine_options;
    engine_options.store = &memory_;
    engine_options.registry = &registry_;
    engine_options.activities = &activities_;
    engine_options.outbox = sink_.get();
    engine_ = Take(Engine::Open(engine_options));
    std::vector<std::uint32_t> all(16);
    std::iota(all.begin(), all.end(), 0u);
    bus::ApiServerOptions api_options;
    api_options.partitions = all;
    api_ = Take(bus::ApiServer::Start(*conn_, *engine_, codec, api_options));
    bus::IngressOptions ingress_options;
    ingress_options.partitions = all;
    ingress_options.stream_epoch = streams.in_epoch;
    ingress_ = Take(bus::Ingress::Start(*conn_, *engine_, codec, ingress_options));
  }
  ~Pipeline() {
    ingress_->StopFetching();
    api_->Stop();
    engine_->Shutdown();
    ingress_->Stop();
  }
  Engine& engine() { return *engine_; }

 private:
  static void Check(const Status& s) {
    if (!s.ok()) throw std::runtime_error(s.ToString());
  }
  template <typename T>
  static T Take(Result<T> r) {
    Check(r.status());
    return std::move(*r);
  }

  MemoryStore memory_;
  WorkflowRegistry registry_;
  ActivityRegistry activities_;
  std::unique_ptr<bus::NatsConnection> conn_;
  std::unique_ptr<bus::NatsOutboxSink> sink_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<bus::ApiServer> api_;
  std::unique_ptr<bus::Ingress> ingress_;
};

// A stand-in activity worker of queue "payments": pulls from task-payments.
class TaskQueue {
 public:
  explicit TaskQueue(bus::NatsConnection& conn) : conn_(conn) {
    bus::Subjects subjects;
    Status made = bus::EnsureTaskConsumer(conn, subjects, "payments");
    if (!made.ok()) throw std::runtime_error(made.ToString());
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = "AION_TASKS";
    so.Consumer = "task-payments";
    jsErrCode jerr = static_cast<jsErrCode>(0);
    if (js_PullSubscribe(&sub_, conn.js(), "aion.task.payments", "task-payments", nullptr, &so,
                         &jerr) != NATS_OK) {
      throw std::runtime_error("cannot bind to task-payments");
    }
  }
  ~TaskQueue() { natsSubscription_Destroy(sub_); }

  // The next task (acked), its Nats-Msg-Id in `msg_id`; null JSON if none came.
  Json Next(std::string* msg_id = nullptr, std::chrono::milliseconds wait = 20s) {
    natsMsgList list{};
    jsErrCode jerr = static_cast<jsErrCode>(0);
    if (natsSubscription_Fetch(&list, sub_, 1, wait.count(), &jerr) != NATS_OK || list.Count == 0) {
      return nullptr;
    }
    natsMsg* msg = list.Msgs[0];
    const char* id = nullptr;
    if (msg_id != nullptr && natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK) *msg_id = id;
    Json task = Json::parse(Body(msg));
    natsMsg_Ack(msg, nullptr);
    natsMsgList_Destroy(&list);
    return task;
  }

 private:
  bus::NatsConnection& conn_;
  natsSubscription* sub_ = nullptr;
};

bus::Headers ReplyTo(const std::string& subject) {
  bus::Headers h = kJsonHeaders;
  h["Aion-Reply-To"] = subject;
  return h;
}

Json NextJson(NatsCollector& c, const char* what) {
  auto msg = c.Next(20s);
  BOOST_REQUIRE_MESSAGE(msg != nullptr, "nothing arrived: " << what);
  return Json::parse(Body(msg.get()));
}

Json Heartbeat(bus::NatsConnection& conn, const Json& task, const Json& details) {
  Json req = {{"run_id", task["run_id"]},
              {"activity_id", task["activity_id"]},
              {"attempt", task["attempt"]},
              {"details", details}};
  return Json::parse(
      Request(conn, task["heartbeat_subject"].get<std::string>(), req.dump(), /*json=*/true));
}

void StartCharge(bus::NatsConnection& client, NatsCollector& replies, const std::string& id,
                 const std::string& extra = "") {
  JsPublish(client, "aion.wf." + id + ".start",
            R"({"workflow_type":"remote_charge","input":{"amount":12})" + extra + "}",
            ReplyTo("test.replies.start"));
  Json started = NextJson(replies, "start reply");
  BOOST_REQUIRE_MESSAGE(!started.contains("error"), started.dump());
}

BOOST_AUTO_TEST_CASE(a_remote_activity_runs_on_a_task_queue_and_its_result_reaches_the_run) {
  NatsTestServer server;
  Pipeline pipeline(server.url());
  auto client = server.Connect("client");
  TaskQueue queue(*client);
  NatsCollector replies(*client, "test.replies.>");
  NatsCollector events(*client, "aion.evt.>");
  StartCharge(*client, replies, "pay-1");

  std::string msg_id;
  Json task = queue.Next(&msg_id);
  BOOST_REQUIRE_MESSAGE(!task.is_null(), "no task on aion.task.payments");
  BOOST_TEST(task["workflow_id"] == "pay-1");
  BOOST_TEST(task["activity_type"] == "charge");
  BOOST_TEST(task["task_queue"] == "payments");
  BOOST_TEST(task["attempt"] == 1);
  BOOST_TEST((task["input"] == Json{{"amount", 12}}));
  BOOST_TEST(task["start_to_close_ms"] == "30000");
  BOOST_TEST(task["result_subject"] == "aion.wf.pay-1.activity_result");
  const std::string run_id = task["run_id"];
  BOOST_TEST(msg_id == "pay-1:" + run_id + ":" + task["activity_id"].get<std::string>() + ":1");

  // Heartbeats go on; describe shows the attempt and its progress.
  Json beat = Heartbeat(*client, task, Json{{"done", 40}});
  BOOST_TEST(!beat.contains("error"), beat.dump());
  BOOST_TEST(beat.value("cancel_requested", false) == false);
  Json described = Json::parse(Request(*client, "aion.req.pay-1.describe", "", true));
  BOOST_REQUIRE(described["pending_activities"].size() == 1u);
  Json pending = described["pending_activities"][0];
  BOOST_TEST(pending["activity_type"] == "charge");
  BOOST_TEST(pending["task_queue"] == "payments");
  BOOST_TEST(pending["state"] == "started");
  BOOST_TEST((pending["heartbeat_details"] == Json{{"done", 40}}));

  Json result = {{"run_id", run_id},
                 {"activity_id", task["activity_id"]},
                 {"attempt", 1},
                 {"output", {{"charge_id", "ch-9"}}}};
  JsPublish(*client, task["result_subject"], result.dump(), ReplyTo("test.replies.result"));
  Json recorded = NextJson(replies, "result reply");
  BOOST_TEST(!recorded.contains("error"), recorded.dump());
  BOOST_TEST(recorded.value("dropped", false) == false);
  Json done = Json::parse(Request(*client, "aion.req.pay-1.result", "", true));
  BOOST_TEST(done["status"] == "completed");
  BOOST_TEST((done["output"] == Json{{"receipt", {{"charge_id", "ch-9"}}}}));

  // A late copy of the same result is acked and dropped; a heartbeat now says stop.
  JsPublish(*client, task["result_subject"], result.dump(), ReplyTo("test.replies.again"));
  Json again = NextJson(replies, "late result reply");
  BOOST_TEST(!again.contains("error"), again.dump());
  BOOST_TEST(again["dropped"] == true);
  BOOST_TEST(Heartbeat(*client, task, nullptr)["cancel_requested"] == true);
  BOOST_TEST(queue.Next(nullptr, 300ms).is_null());  // no further task
}

BOOST_AUTO_TEST_CASE(failed_attempts_are_retried_as_new_tasks_until_one_is_final) {
  NatsTestServer server;
  Pipeline pipeline(server.url());
  auto client = server.Connect("client");
  TaskQueue queue(*client);
  NatsCollector replies(*client, "test.replies.>");
  StartCharge(*client, replies, "pay-2");
  Json first = queue.Next();
  BOOST_REQUIRE(!first.is_null());
  auto fail = [&](const Json& task, bool final) {
    Json r = {{"run_id", task["run_id"]},
              {"activity_id", task["activity_id"]},
              {"attempt", task["attempt"]},
              {"failure", {{"message", "bank down"}, {"type", "Busy"}, {"non_retryable", final}}}};
    JsPublish(*client, task["result_subject"], r.dump(), kJsonHeaders);
  };
  fail(first, false);
  std::string msg_id;
  Json second = queue.Next(&msg_id);
  BOOST_REQUIRE_MESSAGE(!second.is_null(), "the failed attempt was not retried");
  BOOST_TEST(second["attempt"] == 2);
  BOOST_TEST(second["activity_id"] == first["activity_id"]);
  BOOST_TEST(msg_id.ends_with(":2"));
  fail(second, true);  // non-retryable: final, whatever the policy says
  Json done = Json::parse(Request(*client, "aion.req.pay-2.result", "", true));
  BOOST_TEST(done["status"] == "completed");
  BOOST_TEST(done["output"]["failed"].get<std::string>().find("bank down") != std::string::npos);
  BOOST_TEST(done["output"]["attempt"] == 2);
}

BOOST_AUTO_TEST_CASE(cancel_and_terminate_reach_the_run_and_its_activity_worker) {
  NatsTestServer server;
  Pipeline pipeline(server.url());
  auto client = server.Connect("client");
  TaskQueue queue(*client);
  NatsCollector replies(*client, "test.replies.>");
  NatsCollector notes(*client, "aion.task.payments.cancel");
  NatsCollector events(*client, "aion.evt.>");

  // cancel: the wait on the activity throws CancelledError, which ends the run.
  StartCharge(*client, replies, "pay-3");
  Json task = queue.Next();
  BOOST_REQUIRE(!task.is_null());
  JsPublish(*client, "aion.wf.pay-3.cancel", R"({"reason":"customer asked","request_id":"c-1"})",
            ReplyTo("test.replies.cancel"));
  Json cancel = NextJson(replies, "cancel reply");
  BOOST_TEST(!cancel.contains("error"), cancel.dump());
  Json cancelled = Json::parse(Request(*client, "aion.req.pay-3.result", "", true));
  BOOST_TEST(cancelled["status"] == "cancelled");
  Json note = NextJson(notes, "cancel note");
  BOOST_TEST(note["workflow_id"] == "pay-3");
  BOOST_TEST(note["activity_id"] == task["activity_id"]);
  BOOST_TEST(note["attempt"] == 1);
  BOOST_TEST(Heartbeat(*client, task, nullptr)["cancel_requested"] == true);

  // terminate: ends the run at once; its activity is cancelled too.
  StartCharge(*client, replies, "pay-4");
  Json task4 = queue.Next();
  BOOST_REQUIRE(!task4.is_null());
  wire::TerminateWorkflow terminate;
  terminate.set_reason("stuck");
  JsPublish(*client, "aion.wf.pay-4.terminate", terminate.SerializeAsString());
  Json terminated = Json::parse(Request(*client, "aion.req.pay-4.result", "", true));
  BOOST_TEST(terminated["status"] == "terminated");
  BOOST_TEST(terminated["failure"].get<std::string>().find("stuck") != std::string::npos);
  Json note4 = NextJson(notes, "cancel note after terminate");
  BOOST_TEST(note4["workflow_id"] == "pay-4");
  BOOST_TEST(Heartbeat(*client, task4, nullptr)["cancel_requested"] == true);
  // Its result, arriving afterwards, is dropped.
  JsPublish(*client, task4["result_subject"],
            Json{{"run_id", task4["run_id"]},
                 {"activity_id", task4["activity_id"]},
                 {"attempt", 1},
                 {"output", 1}}
                .dump(),
            ReplyTo("test.replies.late"));
  BOOST_TEST(NextJson(replies, "late result")["dropped"] == true);

  // run timeout: ends as timed_out.
  StartCharge(*client, replies, "pay-5", R"(,"run_timeout_ms":300)");
  Json timed_out = Json::parse(Request(*client, "aion.req.pay-5.result", "", true));
  BOOST_TEST(timed_out["status"] == "timed_out");

  std::map<std::string, std::string> ends;  // workflow id -> terminal event
  for (int i = 0; i < 100 && ends.size() < 3; ++i) {
    auto msg = events.Next(10s);
    BOOST_REQUIRE(msg != nullptr);
    wire::LifecycleEvent e;
    BOOST_REQUIRE(e.ParseFromString(Body(msg.get())));
    if (e.event() != "started") ends[e.workflow_id()] = e.event();
    if (e.event() == "terminated") BOOST_TEST(e.failure() == "stuck");
  }
  BOOST_TEST(ends["pay-3"] == "cancelled");
  BOOST_TEST(ends["pay-4"] == "terminated");
  BOOST_TEST(ends["pay-5"] == "timed_out");
}

}  // namespace
}  // namespace aion::testing
