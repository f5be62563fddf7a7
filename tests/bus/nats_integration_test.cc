// The bus against a real nats-server: streams, the server's partition mapping,
// the outbox sink, and ingress + API end to end with an in-process engine.
#define BOOST_TEST_MODULE nats_integration
#include <boost/test/unit_test.hpp>
#include <functional>
#include <future>
#include <set>
#include <thread>

#include "aion/bus/outbox_publisher.h"
#include "aion/bus/streams.h"
#include "aion/engine/ids.h"
#include "support/fault_injection_store.h"
#include "support/nats_pipeline.h"
#include "support/nats_test_server.h"
#include "support/wait.h"
#include "support/workflow_messages.h"

namespace aion::testing {
namespace {

using namespace std::chrono_literals;

struct StreamInfoPtr {
  jsStreamInfo* si = nullptr;
  ~StreamInfoPtr() { jsStreamInfo_Destroy(si); }
};

void ReadStream(bus::NatsConnection& conn, const char* name, StreamInfoPtr& out) {
  jsErrCode jerr = static_cast<jsErrCode>(0);
  BOOST_REQUIRE(js_GetStreamInfo(&out.si, conn.js(), name, nullptr, &jerr) == NATS_OK);
}

std::uint64_t StreamMessages(bus::NatsConnection& conn, const char* name) {
  StreamInfoPtr info;
  ReadStream(conn, name, info);
  return info.si->State.Msgs;
}

// An id of partition `p` (of 16) that is not in `taken`.
std::string IdInPartition(std::uint32_t p, const std::string& stem,
                          std::set<std::string>* taken = nullptr) {
  for (int n = 0;; ++n) {
    std::string id = stem + "-" + std::to_string(n);
    if (PartitionOf(id, 16) == p && (taken == nullptr || taken->insert(id).second)) return id;
  }
}

std::string StartJson(const std::string& type, const std::string& input,
                      const std::string& request_id = "") {
  std::string body = R"({"workflow_type":")" + type + R"(","input":)" + input;
  if (!request_id.empty()) body += R"(,"request_id":")" + request_id + "\"";
  return body + "}";
}

bus::Headers ReplyTo(const std::string& subject, bool json = true) {
  bus::Headers h = json ? kJsonHeaders : bus::Headers{};
  h["Aion-Reply-To"] = subject;
  return h;
}

wire::LifecycleEvent NextEvent(NatsCollector& events) {
  auto msg = events.Next();
  BOOST_REQUIRE_MESSAGE(msg != nullptr, "no lifecycle event arrived");
  wire::LifecycleEvent event;
  BOOST_REQUIRE(event.ParseFromString(Body(msg.get())));
  return event;
}

// Waits for the lifecycle event `name` of `id`, skipping others.
wire::LifecycleEvent AwaitEvent(NatsCollector& events, const std::string& id,
                                const std::string& name) {
  for (int i = 0; i < 100; ++i) {
    auto event = NextEvent(events);
    if (event.workflow_id() == id && event.event() == name) return event;
  }
  BOOST_FAIL("no '" + name + "' event for " + id);
  return {};
}

Json NextJsonReply(NatsCollector& replies) {
  auto msg = replies.Next();
  BOOST_REQUIRE_MESSAGE(msg != nullptr, "no reply arrived");
  return Json::parse(Body(msg.get()));
}

NatsPipelineOptions On(Store* store) {
  NatsPipelineOptions options;
  options.store = store;
  return options;
}

int CountStarted(Engine& engine, const std::string& id) {
  auto history = engine.History(id);
  BOOST_REQUIRE(history.ok());
  int n = 0;
  for (const auto& e : *history) n += e.has_workflow_started() ? 1 : 0;
  return n;
}

BOOST_AUTO_TEST_CASE(streams_are_created_idempotently_and_keep_their_partition_count) {
  NatsTestServer server;
  auto conn = server.Connect();
  bus::Subjects subjects;
  auto first = bus::EnsureStreams(*conn, subjects, {});
  BOOST_REQUIRE_MESSAGE(first.ok(), first.status().ToString());
  auto second = bus::EnsureStreams(*conn, subjects, {});
  BOOST_REQUIRE_MESSAGE(second.ok(), second.status().ToString());
  BOOST_TEST(first->in_epoch == second->in_epoch);
  BOOST_TEST(first->partitions == 16u);

  StreamInfoPtr in;
  ReadStream(*conn, "AION_IN", in);
  BOOST_TEST(in.si->Config->Retention == js_WorkQueuePolicy);
  BOOST_TEST(in.si->Config->Storage == js_FileStorage);
  BOOST_TEST(in.si->Config->Duplicates == std::int64_t{120'000'000'000});
  BOOST_TEST(std::string(in.si->Config->Description).find("partitions=16") != std::string::npos);
  StreamInfoPtr events;
  ReadStream(*conn, "AION_EVENTS", events);
  BOOST_TEST(events.si->Config->Retention == js_LimitsPolicy);
  BOOST_TEST(events.si->Config->MaxAge > 0);
  BOOST_TEST(events.si->Config->MaxBytes > 0);
  StreamInfoPtr dlq;
  ReadStream(*conn, "AION_DLQ", dlq);
  BOOST_TEST(std::string(dlq.si->Config->Subjects[0]) == "aion.dlq.>");

  for (std::uint32_t p = 0; p < 16; ++p) {
    jsConsumerInfo* ci = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const std::string name = "in-" + std::to_string(p);
    BOOST_REQUIRE(js_GetConsumerInfo(&ci, conn->js(), "AION_IN", name.c_str(), nullptr, &jerr) ==
                  NATS_OK);
    BOOST_TEST(std::string(ci->Config->FilterSubject) == "aion.in." + std::to_string(p) + ".>");
    BOOST_TEST(ci->Config->AckPolicy == js_AckExplicit);
    BOOST_TEST(ci->Config->MaxAckPending == 4096);
    BOOST_TEST(ci->Config->AckWait == std::int64_t{30'000'000'000});
    jsConsumerInfo_Destroy(ci);
  }

  auto other = bus::EnsureStreams(*conn, subjects, {.partitions = 8});
  BOOST_TEST((other.status().code() == StatusCode::kInvalidArgument));
  BOOST_TEST(other.status().message().find("created with 16 partitions") != std::string::npos);
}

void CheckServerMapping(std::uint32_t partitions) {
  NatsTestServer server(partitions);
  auto conn = server.Connect();
  NatsCollector in(*conn, "aion.in.>");
  NatsCollector api(*conn, "aion.api.>");
  bus::Subjects subjects;
  const char* stems[] = {"order", "user:42", "a=b", "x@y", "p+q", "under_score", "Z"};
  const int kIds = 350;
  for (int i = 0; i < kIds; ++i) {
    const std::string id = std::string(stems[i % 7]) + "-" + std::to_string(i * 7919);
    BOOST_REQUIRE(natsConnection_PublishString(conn->nc(), ("aion.wf." + id + ".start").c_str(),
                                               "") == NATS_OK);
    BOOST_REQUIRE(natsConnection_PublishString(conn->nc(), ("aion.req." + id + ".describe").c_str(),
                                               "") == NATS_OK);
  }
  std::set<std::uint32_t> seen;
  for (int i = 0; i < kIds; ++i) {
    auto msg = in.Next();
    BOOST_REQUIRE(msg != nullptr);
    auto parsed = subjects.ParseInbox(natsMsg_GetSubject(msg.get()));
    BOOST_REQUIRE_MESSAGE(parsed.ok(), parsed.status().ToString());
    BOOST_TEST(parsed->partition == PartitionOf(parsed->workflow_id, partitions),
               parsed->workflow_id);
    seen.insert(parsed->partition);
    auto req = api.Next();
    BOOST_REQUIRE(req != nullptr);
    auto parsed_api = subjects.ParseApi(natsMsg_GetSubject(req.get()));
    BOOST_REQUIRE(parsed_api.ok());
    BOOST_TEST(parsed_api->partition == PartitionOf(parsed_api->workflow_id, partitions));
  }
  BOOST_TEST(seen.size() == partitions);  // every partition is reached
}

BOOST_AUTO_TEST_CASE(server_partition_mapping_agrees_with_partition_of) {
  CheckServerMapping(16);
  CheckServerMapping(7);
}

OutboxRow StartedRow(const std::string& id) {
  OutboxRow row;
  row.set_key(id + ":00000001");
  row.set_kind(OutboxRow::KIND_LIFECYCLE);
  row.set_workflow_id(id);
  row.set_workflow_type("noop");
  auto* e = row.mutable_event();
  e->set_seq(1);
  e->set_run_id("run-1");
  *e->mutable_workflow_started()->mutable_input() = JsonPayload(Json{{"a", 1}});
  return row;
}

BOOST_AUTO_TEST_CASE(outbox_sink_publishes_once_per_row_key_and_only_with_a_puback) {
  NatsTestServer server;
  bus::NatsConnectionOptions options;
  options.url = server.url();
  options.jetstream_timeout = 1s;
  auto connected = bus::NatsConnection::Connect(options);
  BOOST_REQUIRE(connected.ok());
  auto conn = std::move(*connected);
  bus::Subjects subjects;
  BOOST_REQUIRE(bus::EnsureStreams(*conn, subjects, {}).ok());
  bus::NatsOutboxSink sink(*conn, subjects, 16);

  const OutboxRow row = StartedRow("w-1");
  BOOST_TEST(sink.Publish(row).ok());
  BOOST_TEST(sink.Publish(row).ok());  // a republish after a crash
  BOOST_TEST(StreamMessages(*conn, "AION_EVENTS") == 1u);
  natsMsg* raw = nullptr;
  BOOST_REQUIRE(js_GetLastMsg(&raw, conn->js(), "AION_EVENTS", "aion.evt.noop.w-1.started", nullptr,
                              nullptr) == NATS_OK);
  NatsMsgPtr stored(raw);
  wire::LifecycleEvent event;
  BOOST_REQUIRE(event.ParseFromString(Body(stored.get())));
  BOOST_TEST(event.event() == "started");
  BOOST_TEST(event.run_id() == "run-1");
  BOOST_TEST((bus::JsonFromValue(event.input()) == Json{{"a", 1}}));

  OutboxRow not_lifecycle = row;
  not_lifecycle.set_kind(OutboxRow::KIND_UNSPECIFIED);
  BOOST_TEST(sink.Publish(not_lifecycle).ok());  // dropped with a log line, never retried forever
  BOOST_TEST(StreamMessages(*conn, "AION_EVENTS") == 1u);

  BOOST_REQUIRE(server.process().Stop().ok());
  Status down = sink.Publish(StartedRow("w-2"));
  BOOST_TEST((down.code() == StatusCode::kUnavailable), down.ToString());
  BOOST_REQUIRE(server.process().Restart().ok());
  BOOST_TEST(WaitFor([&] { return sink.Publish(StartedRow("w-2")).ok(); }));
  BOOST_TEST(StreamMessages(*conn, "AION_EVENTS") == 2u);
}

// A row of `kind` (task or cancel note) for attempt 1 of activity #1 of `id`.
OutboxRow TaskRow(const std::string& id, std::uint64_t seq, OutboxRow::Kind kind) {
  OutboxRow row;
  row.set_key(id + ":0000000" + std::to_string(seq));
  row.set_kind(kind);
  row.set_workflow_id(id);
  row.set_workflow_type("order");
  auto* t = row.mutable_task();
  t->set_run_id("run-1");
  t->set_activity_id("#1");
  t->set_attempt(1);
  t->set_activity_type("charge");
  t->set_task_queue("q1");
  *t->mutable_input() = JsonPayload(Json{{"amount", 12}});
  t->set_reason("workflow cancelled");
  return row;
}

OutboxRow CompletedRow(const std::string& id) {
  OutboxRow row = StartedRow(id);
  row.set_key(id + ":00000002");
  auto* e = row.mutable_event();
  e->set_seq(2);
  *e->mutable_workflow_completed()->mutable_output() = JsonPayload(Json{{"done", true}});
  return row;
}

// The Nats-Msg-Id of the last message stored on `subject`.
std::string LastMsgId(bus::NatsConnection& conn, const char* stream, const std::string& subject) {
  natsMsg* raw = nullptr;
  if (js_GetLastMsg(&raw, conn.js(), stream, subject.c_str(), nullptr, nullptr) != NATS_OK) {
    return "<none on " + subject + ">";
  }
  NatsMsgPtr stored(raw);
  const char* id = nullptr;
  return natsMsgHeader_Get(stored.get(), "Nats-Msg-Id", &id) == NATS_OK ? id : "<no msg id>";
}

// A real server, a connection that gives up on a PubAck after 1 s, the
// streams, and a sink of 16 partitions over them.
struct SinkFixture {
  SinkFixture() { BOOST_REQUIRE(bus::EnsureStreams(*conn, subjects, {}).ok()); }
  NatsTestServer server;
  std::unique_ptr<bus::NatsConnection> conn = server.Connect("aion-test", 1s);
  bus::Subjects subjects;
  bus::NatsOutboxSink sink{*conn, subjects, 16};
};

BOOST_FIXTURE_TEST_CASE(outbox_sink_batch_of_mixed_rows_lands_once_per_row_key, SinkFixture) {
  NatsCollector cancels(*conn, "aion.task.q1.cancel");

  const OutboxRow start = WorkflowMessageRow(records::WorkflowMessageRow::KIND_START);
  const std::vector<OutboxRow> rows = {
      StartedRow("a-1"),
      CompletedRow("a-1"),
      TaskRow("b-1", 1, OutboxRow::KIND_ACTIVITY_TASK),
      TaskRow("b-1", 2, OutboxRow::KIND_ACTIVITY_CANCEL),
      StartedRow("c-1"),
      start,
  };
  Status error;
  BOOST_TEST(sink.PublishBatch(rows, &error) == rows.size());
  BOOST_TEST(error.ok());
  BOOST_TEST(StreamMessages(*conn, "AION_EVENTS") == 3u);
  BOOST_TEST(StreamMessages(*conn, "AION_TASKS") == 1u);
  BOOST_TEST(StreamMessages(*conn, "AION_IN") == 1u);
  BOOST_TEST(LastMsgId(*conn, "AION_EVENTS", "aion.evt.noop.a-1.started") == "a-1:00000001");
  BOOST_TEST(LastMsgId(*conn, "AION_EVENTS", "aion.evt.noop.a-1.completed") == "a-1:00000002");
  BOOST_TEST(LastMsgId(*conn, "AION_EVENTS", "aion.evt.noop.c-1.started") == "c-1:00000001");
  BOOST_TEST(LastMsgId(*conn, "AION_TASKS", "aion.task.q1") == "b-1:run-1:#1:1");
  auto message = bus::WorkflowMessageFromRow(start);
  BOOST_REQUIRE(message.ok());
  BOOST_TEST(
      LastMsgId(*conn, "AION_IN", subjects.InboxOf(message->workflow_id, message->kind, 16)) ==
      message->msg_id);
  auto note = cancels.Next(5s);
  BOOST_REQUIRE(note != nullptr);  // the cancel note, by core NATS
  BOOST_TEST(Body(note.get()).find("#1") != std::string::npos);

  // A republish of the whole batch (after a crash) is deduped by Nats-Msg-Id.
  BOOST_TEST(sink.PublishBatch(rows, &error) == rows.size());
  BOOST_TEST(StreamMessages(*conn, "AION_EVENTS") == 3u);
  BOOST_TEST(StreamMessages(*conn, "AION_TASKS") == 1u);
  BOOST_TEST(StreamMessages(*conn, "AION_IN") == 1u);
}

BOOST_FIXTURE_TEST_CASE(outbox_sink_batch_stops_at_the_first_refused_row_and_the_rest_goes_later,
                        SinkFixture) {
  jsErrCode jerr = static_cast<jsErrCode>(0);
  BOOST_REQUIRE(js_DeleteStream(conn->js(), "AION_TASKS", nullptr, &jerr) == NATS_OK);

  // The task has no stream to land in: it and the rows after it stay.
  const std::vector<OutboxRow> rows = {
      StartedRow("a-2"), TaskRow("b-2", 1, OutboxRow::KIND_ACTIVITY_TASK), StartedRow("c-2")};
  Status error;
  BOOST_TEST(sink.PublishBatch(rows, &error) == 1u);
  BOOST_TEST((error.code() == StatusCode::kUnavailable), error.ToString());

  BOOST_REQUIRE(bus::EnsureStreams(*conn, subjects, {}).ok());
  const std::vector<OutboxRow> rest(rows.begin() + 1, rows.end());
  Status none;
  BOOST_TEST(sink.PublishBatch(rest, &none) == rest.size());
  BOOST_TEST(none.ok());
  BOOST_TEST(StreamMessages(*conn, "AION_TASKS") == 1u);
  BOOST_TEST(StreamMessages(*conn, "AION_EVENTS") == 2u);  // c-2 was sent twice, stored once
}

BOOST_FIXTURE_TEST_CASE(outbox_sink_batch_while_the_server_is_down_accepts_nothing_then_all_once,
                        SinkFixture) {
  const std::vector<OutboxRow> first = {StartedRow("d-1"), CompletedRow("d-1")};
  Status error;
  BOOST_TEST(sink.PublishBatch(first, &error) == first.size());

  BOOST_REQUIRE(server.process().Stop().ok());
  const std::vector<OutboxRow> rows = {StartedRow("d-2"), CompletedRow("d-2"), StartedRow("d-3")};
  BOOST_TEST(sink.PublishBatch(rows, &error) < rows.size());
  BOOST_TEST((error.code() == StatusCode::kUnavailable), error.ToString());

  BOOST_REQUIRE(server.process().Restart().ok());
  BOOST_TEST(WaitFor([&] {
    Status ignored;
    return sink.PublishBatch(rows, &ignored) == rows.size();
  }));
  BOOST_TEST(StreamMessages(*conn, "AION_EVENTS") == 5u);
}

BOOST_AUTO_TEST_CASE(an_event_too_large_for_the_server_is_published_without_its_payload) {
  NatsTestServer server;
  auto conn = server.Connect();
  bus::Subjects subjects;
  BOOST_REQUIRE(bus::EnsureStreams(*conn, subjects, {}).ok());
  bus::NatsOutboxSink sink(*conn, subjects, 16);
  OutboxRow row = StartedRow("huge");
  const std::string big(static_cast<std::size_t>(conn->max_payload()) + 1024, 'x');
  *row.mutable_event()->mutable_workflow_started()->mutable_input() = JsonPayload(Json(big));
  // Publishing it whole could never succeed and would block every later row.
  BOOST_TEST(sink.Publish(row).ok());
  natsMsg* raw = nullptr;
  BOOST_REQUIRE(js_GetLastMsg(&raw, conn->js(), "AION_EVENTS", "aion.evt.noop.huge.started",
                              nullptr, nullptr) == NATS_OK);
  NatsMsgPtr stored(raw);
  wire::LifecycleEvent event;
  BOOST_REQUIRE(event.ParseFromString(Body(stored.get())));
  BOOST_TEST(event.payload_omitted());
  BOOST_TEST(!event.has_input());
  BOOST_TEST(event.run_id() == "run-1");
}

BOOST_AUTO_TEST_CASE(json_start_runs_noop_and_publishes_its_lifecycle) {
  NatsTestServer server;
  NatsPipeline pipeline(server.url());
  auto client = server.Connect("client");
  NatsCollector events(*client, "aion.evt.>");
  JsPublish(*client, "aion.wf.n-1.start", StartJson("noop", R"({"x":1})", "r-1"), kJsonHeaders);
  auto started = NextEvent(events);
  BOOST_TEST(started.event() == "started");
  BOOST_TEST(started.workflow_id() == "n-1");
  BOOST_TEST(started.workflow_type() == "noop");
  BOOST_TEST((bus::JsonFromValue(started.input()) == Json{{"x", 1}}));
  auto completed = NextEvent(events);
  BOOST_TEST(completed.event() == "completed");
  BOOST_TEST(completed.run_id() == started.run_id());
  BOOST_TEST((bus::JsonFromValue(completed.output()) == Json{{"x", 1}}));
  BOOST_TEST(WaitFor([&] { return StreamMessages(*client, "AION_IN") == 0; }));  // acked
}

BOOST_AUTO_TEST_CASE(binary_start_with_a_reply_subject_is_answered_after_the_commit) {
  NatsTestServer server;
  NatsPipeline pipeline(server.url());
  auto client = server.Connect("client");
  NatsCollector replies(*client, "test.replies");
  wire::StartWorkflow start;
  start.set_workflow_type("noop");
  start.mutable_input()->set_string_value("hi");
  JsPublish(*client, "aion.wf.b-1.start", start.SerializeAsString(),
            ReplyTo("test.replies", false));
  auto msg = replies.Next();
  BOOST_REQUIRE(msg != nullptr);
  wire::IngressReply reply;
  BOOST_REQUIRE(reply.ParseFromString(Body(msg.get())));
  BOOST_TEST(reply.workflow_id() == "b-1");
  BOOST_TEST(!reply.run_id().empty());
  BOOST_TEST(!reply.has_error());
  BOOST_TEST(pipeline.engine().Describe("b-1").ok());  // recorded before the answer
}

BOOST_AUTO_TEST_CASE(the_same_request_twice_starts_one_run) {
  NatsTestServer server;
  NatsPipeline pipeline(server.url());
  auto client = server.Connect("client");
  NatsCollector replies(*client, "test.replies");
  NatsCollector events(*client, "aion.evt.>");
  const std::string body = StartJson("noop", "7", "same-request");
  JsPublish(*client, "aion.wf.d-1.start", body, ReplyTo("test.replies"));
  JsPublish(*client, "aion.wf.d-1.start", body, ReplyTo("test.replies"));
  Json a = NextJsonReply(replies), b = NextJsonReply(replies);
  BOOST_TEST(!a.contains("error"));
  BOOST_TEST(!b.contains("error"));
  BOOST_TEST(a["run_id"] == b["run_id"]);
  BOOST_TEST(a.value("duplicate", false) != b.value("duplicate", false));  // exactly one duplicate
  AwaitEvent(events, "d-1", "completed");
  BOOST_TEST(CountStarted(pipeline.engine(), "d-1") == 1);

  // Same again with a Nats-Msg-Id instead of a request id: JetStream keeps one.
  bus::Headers with_id = ReplyTo("test.replies");
  with_id["Nats-Msg-Id"] = "m-1";
  JsPublish(*client, "aion.wf.d-2.start", StartJson("noop", "1"), with_id);
  JsPublish(*client, "aion.wf.d-2.start", StartJson("noop", "1"), with_id);
  AwaitEvent(events, "d-2", "completed");
  BOOST_TEST(CountStarted(pipeline.engine(), "d-2") == 1);
}

BOOST_AUTO_TEST_CASE(refusals_are_answered_and_change_nothing) {
  NatsTestServer server;
  NatsPipeline pipeline(server.url());
  auto client = server.Connect("client");
  NatsCollector replies(*client, "test.replies");
  JsPublish(*client, "aion.wf.t-1.start",
            StartJson("timer_signal", R"({"sleep_ms":60000,"signal":"go"})", "r-1"),
            ReplyTo("test.replies"));
  BOOST_TEST(!NextJsonReply(replies).contains("error"));
  BOOST_REQUIRE(WaitFor([&] {
    auto d = pipeline.engine().Describe("t-1");
    return d.ok() && d->record.timers_size() == 1;
  }));
  const auto before = *pipeline.engine().History("t-1");

  JsPublish(*client, "aion.wf.t-1.start",
            StartJson("timer_signal", R"({"sleep_ms":1,"signal":"go"})", "r-2"),
            ReplyTo("test.replies"));
  Json refused = NextJsonReply(replies);
  BOOST_TEST(refused["error"]["code"] == "already_started");
  BOOST_TEST(refused["workflow_id"] == "t-1");

  // A signal to an unknown id: answered not_found (and dead-lettered).
  JsPublish(*client, "aion.wf.nobody.signal", R"({"name":"go"})", ReplyTo("test.replies"));
  BOOST_TEST(NextJsonReply(replies)["error"]["code"] == "not_found");

  const auto after = *pipeline.engine().History("t-1");
  BOOST_TEST(after.size() == before.size());
  BOOST_TEST(WaitFor([&] { return StreamMessages(*client, "AION_IN") == 0; }));  // acked or Term'd
}

BOOST_AUTO_TEST_CASE(bad_input_goes_to_the_dlq_and_never_blocks_its_partition) {
  NatsTestServer server;
  NatsPipeline pipeline(server.url());
  auto client = server.Connect("client");
  NatsCollector dlq(*client, "aion.dlq.>");
  NatsCollector events(*client, "aion.evt.>");
  NatsCollector replies(*client, "test.replies");
  const std::uint32_t p = 5;
  std::set<std::string> taken;
  const std::string in = "aion.in." + std::to_string(p) + ".";
  const std::string wrong_partition = IdInPartition(p + 1, "w", &taken);
  struct Bad {
    std::string subject, body, kind, reason;
    bus::Headers headers;
  };
  const std::vector<Bad> bad = {
      {in + IdInPartition(p, "a", &taken) + ".start", "\xff\xfe garbage", "start",
       "not a valid StartWorkflow", ReplyTo("test.replies", false)},
      {in + IdInPartition(p, "b", &taken) + ".signal", "{\"name\":", "signal",
       "not valid SignalWorkflow JSON", kJsonHeaders},
      {in + IdInPartition(p, "c", &taken) + ".signal", R"({"input":1})", "signal",
       "signal name is empty", kJsonHeaders},
      {in + IdInPartition(p, "d", &taken) + ".start", R"({"workflow_type":"noop","extra":1})",
       "start", "extra", kJsonHeaders},
      {in + IdInPartition(p, "e", &taken) + ".signal_with_start", "{}", "signal_with_start",
       "workflow_type is empty", kJsonHeaders},
      {in + IdInPartition(p, "h", &taken) + ".activity_result", R"({"run_id":"r","attempt":1})",
       "activity_result", "activity_id is empty", kJsonHeaders},
      {in + IdInPartition(p, "f", &taken) + ".launch", "{}", "unknown", "unknown ingress kind",
       kJsonHeaders},
      {in + wrong_partition + ".start", StartJson("noop", "1"), "start", "belongs to partition",
       kJsonHeaders},
      // Its reply would be a start of "injected" if the worker answered into aion.*.
      {in + "bad%id.start", StartJson("noop", "1"), "start", "invalid character",
       ReplyTo("aion.wf.injected.start")},
      {"aion.wf." + IdInPartition(p, "g", &taken) + ".start", StartJson("no_such_type", "1"),
       "start", "no_such_type", kJsonHeaders},
  };
  for (const auto& b : bad) JsPublish(*client, b.subject, b.body, b.headers);
  const std::string good = IdInPartition(p, "ok", &taken);
  JsPublish(*client, "aion.wf." + good + ".start", StartJson("noop", R"("fine")"), kJsonHeaders);

  BOOST_TEST(AwaitEvent(events, good, "completed").output().string_value() == "fine");
  std::map<std::string, wire::DeadLetter> letters;  // by reason fragment
  for (std::size_t i = 0; i < bad.size(); ++i) {
    auto msg = dlq.Next();
    BOOST_REQUIRE_MESSAGE(msg != nullptr, "only " << i << " dead letters arrived");
    wire::DeadLetter letter;
    BOOST_REQUIRE(letter.ParseFromString(Body(msg.get())));
    BOOST_TEST(std::string(natsMsg_GetSubject(msg.get())) == "aion.dlq." + letter.kind());
    for (const auto& b : bad) {
      if (letter.subject().find(b.subject.substr(b.subject.rfind('.', b.subject.rfind('.') - 1))) !=
              std::string::npos &&
          letter.reason().find(b.reason) != std::string::npos) {
        letters[b.reason] = letter;
        BOOST_TEST(letter.kind() == b.kind, b.reason);
        BOOST_TEST(letter.data() == b.body, b.reason);
      }
    }
  }
  BOOST_TEST(letters.size() == bad.size());
  BOOST_TEST(letters["no_such_type"].code() == "unknown_workflow_type");
  BOOST_TEST(letters["invalid character"].code() == "invalid_argument");
  BOOST_TEST(letters["extra"].headers().at("Content-Type") == "application/json");

  auto reply = replies.Next();  // the garbage start asked for a (binary) answer
  BOOST_REQUIRE(reply != nullptr);
  wire::IngressReply answer;
  BOOST_REQUIRE(answer.ParseFromString(Body(reply.get())));
  BOOST_TEST(answer.error().code() == "invalid_argument");
  BOOST_TEST(
      WaitFor([&] { return StreamMessages(*client, "AION_IN") == 0; }));  // all Term'ed or acked
  BOOST_TEST(pipeline.ingress().stats().dead_lettered == bad.size());
  std::this_thread::sleep_for(200ms);
  BOOST_TEST((pipeline.engine().Describe("injected").status().code() == StatusCode::kNotFound));
  BOOST_TEST(StreamMessages(*client, "AION_DLQ") == bad.size());  // no answer came back as input
}

BOOST_AUTO_TEST_CASE(describe_history_and_result_answer_in_json_and_binary) {
  NatsTestServer server;
  NatsPipeline pipeline(server.url());
  auto client = server.Connect("client");
  NatsCollector events(*client, "aion.evt.>");
  JsPublish(*client, "aion.wf.api-1.start", StartJson("noop", R"({"k":"v"})"), kJsonHeaders);
  AwaitEvent(events, "api-1", "completed");

  Json described = Json::parse(Request(*client, "aion.req.api-1.describe", "", true));
  BOOST_TEST(described["status"] == "completed");
  BOOST_TEST(described["workflow_type"] == "noop");
  BOOST_TEST(described["history_length"] == "2");  // uint64 is a string in the JSON mapping
  wire::DescribeReply d;
  BOOST_REQUIRE(d.ParseFromString(Request(*client, "aion.req.api-1.describe", "", false)));
  BOOST_TEST(d.partition() == PartitionOf("api-1", 16));
  BOOST_TEST(d.history_length() == 2u);
  BOOST_TEST(!d.has_error());

  Json history = Json::parse(Request(*client, "aion.req.api-1.history", "", true));
  BOOST_REQUIRE(history["events"].size() == 2u);
  BOOST_TEST(history["events"][0].contains("workflow_started"));
  wire::HistoryRequest from2;
  from2.set_from_seq(2);
  wire::HistoryReply h;
  BOOST_REQUIRE(h.ParseFromString(
      Request(*client, "aion.req.api-1.history", from2.SerializeAsString(), false)));
  BOOST_REQUIRE(h.events_size() == 1);
  BOOST_TEST(h.events(0).has_workflow_completed());
  Json limited = Json::parse(Request(*client, "aion.req.api-1.history", R"({"limit":1})", true));
  BOOST_TEST(limited["events"].size() == 1u);

  Json result = Json::parse(Request(*client, "aion.req.api-1.result", "", true));
  BOOST_TEST(result["status"] == "completed");
  BOOST_TEST((result["output"] == Json{{"k", "v"}}));
  wire::ResultReply r;
  BOOST_REQUIRE(r.ParseFromString(Request(*client, "aion.req.api-1.result", "", false)));
  BOOST_TEST(r.status() == "completed");
  BOOST_TEST(r.output().struct_value().fields().at("k").string_value() == "v");

  BOOST_TEST(Json::parse(Request(*client, "aion.req.ghost.result", "", true))["error"]["code"] ==
             "not_found");
  BOOST_TEST(Json::parse(Request(*client, "aion.req.ghost.describe", "", true))["error"]["code"] ==
             "not_found");
  BOOST_TEST(Json::parse(Request(*client, "aion.req.ghost.history", "", true))["error"]["code"] ==
             "not_found");
  Json query = Json::parse(Request(*client, "aion.req.api-1.query", "", true));
  BOOST_TEST(query["error"]["code"] == "invalid_argument");
  BOOST_TEST(query["error"]["message"].get<std::string>().find("query name is empty") !=
             std::string::npos);
  wire::ResultReply garbage;
  BOOST_REQUIRE(
      garbage.ParseFromString(Request(*client, "aion.req.api-1.result", "\xff\xff\xff", false)));
  BOOST_TEST(garbage.error().code() == "invalid_argument");
  Json bad_json =
      Json::parse(Request(*client, "aion.req.api-1.history", R"({"limit":"many"})", true));
  BOOST_TEST(bad_json["error"]["code"] == "invalid_argument");
}

BOOST_AUTO_TEST_CASE(result_waits_for_the_run_to_close_or_times_out) {
  NatsTestServer server;
  NatsPipeline pipeline(server.url());
  auto client = server.Connect("client");
  NatsCollector replies(*client, "test.replies");
  JsPublish(*client, "aion.wf.wait-1.start",
            StartJson("timer_signal", R"({"sleep_ms":0,"signal":"go"})"), ReplyTo("test.replies"));
  BOOST_TEST(!NextJsonReply(replies).contains("error"));

  const auto t0 = std::chrono::steady_clock::now();
  Json timed_out =
      Json::parse(Request(*client, "aion.req.wait-1.result", R"({"timeout_ms":300})", true));
  BOOST_TEST(timed_out["error"]["code"] == "deadline_exceeded");
  BOOST_TEST((std::chrono::steady_clock::now() - t0 >= 300ms));

  // Several waiters on one run, answered when it closes.
  auto waiter = [&] {
    auto conn = server.Connect("waiter");
    return Json::parse(
        Request(*conn, "aion.req.wait-1.result", R"({"timeout_ms":20000})", true, 25s));
  };
  auto first = std::async(std::launch::async, waiter);
  auto second = std::async(std::launch::async, waiter);
  std::this_thread::sleep_for(300ms);
  JsPublish(*client, "aion.wf.wait-1.signal", R"({"name":"go","input":{"by":"ana"}})",
            kJsonHeaders);
  for (auto* f : {&first, &second}) {
    Json done = f->get();
    BOOST_TEST(done["status"] == "completed");
    BOOST_TEST((done["output"] == Json{{"slept_ms", 0}, {"signal", {{"by", "ana"}}}}));
  }
}

BOOST_AUTO_TEST_CASE(failed_commits_are_not_acked_and_resume_when_the_store_heals) {
  NatsTestServer server;
  MemoryStore memory;
  FaultInjectionStore flaky(&memory);
  flaky.FailCommits(Unavailable("disk unplugged"));
  NatsPipeline pipeline(server.url(), On(&flaky));
  auto client = server.Connect("client");
  NatsCollector events(*client, "aion.evt.>");
  JsPublish(*client, "aion.wf.bp-1.start", StartJson("noop", "1"), kJsonHeaders);
  BOOST_REQUIRE(WaitFor([&] { return flaky.failed_commits() >= 2; }));
  BOOST_TEST(pipeline.ingress().stats().acked == 0u);
  BOOST_TEST(StreamMessages(*client, "AION_IN") == 1u);  // still there: never acked
  BOOST_TEST((memory.GetWorkflow("bp-1").status().code() == StatusCode::kNotFound));

  flaky.Heal();
  AwaitEvent(events, "bp-1", "completed");
  BOOST_TEST(WaitFor([&] { return StreamMessages(*client, "AION_IN") == 0; }));
  BOOST_TEST(pipeline.ingress().stats().acked == 1u);
}

BOOST_AUTO_TEST_CASE(shutdown_nacks_what_the_engine_could_not_commit) {
  NatsTestServer server;
  MemoryStore memory;
  FaultInjectionStore flaky(&memory);
  flaky.FailCommits(Unavailable("disk unplugged"));
  auto client = server.Connect("client");
  {
    NatsPipeline pipeline(server.url(), On(&flaky));
    JsPublish(*client, "aion.wf.sd-1.start", StartJson("noop", "1"), kJsonHeaders);
    BOOST_REQUIRE(WaitFor([&] { return flaky.failed_commits() >= 1; }));
    pipeline.Shutdown();  // the commit gives up; its callback nacks
    BOOST_TEST(pipeline.ingress().stats().nacked == 1u);
  }
  flaky.Heal();
  NatsPipeline restarted(server.url(), On(&flaky));
  NatsCollector events(*client, "aion.evt.>");
  AwaitEvent(events, "sd-1", "completed");  // redelivered after the nak delay
  BOOST_TEST(CountStarted(restarted.engine(), "sd-1") == 1);
}

// A message redelivered after its ack wait, with neither request id nor
// Nats-Msg-Id, is recognised by its stream sequence (DESIGN §4.2).
BOOST_AUTO_TEST_CASE(a_redelivery_without_ids_is_recognised_by_its_stream_sequence) {
  NatsTestServer server;
  MemoryStore memory;
  FaultInjectionStore flaky(&memory);
  flaky.FailCommits(Unavailable("slow disk"));
  NatsPipelineOptions options = On(&flaky);
  options.streams.ack_wait = 1s;
  NatsPipeline pipeline(server.url(), options);
  auto client = server.Connect("client");
  NatsCollector replies(*client, "test.replies");
  JsPublish(*client, "aion.wf.rd-1.start", StartJson("noop", "1"), ReplyTo("test.replies"));
  // The first delivery waits in the failing commit past its ack wait, so
  // JetStream delivers the same stream message again.
  BOOST_REQUIRE(WaitFor([&] { return pipeline.ingress().stats().fetched >= 2; }, 5s));
  flaky.Heal();
  Json a = NextJsonReply(replies), b = NextJsonReply(replies);
  BOOST_TEST(a["run_id"] == b["run_id"]);
  BOOST_TEST(a.value("duplicate", false) != b.value("duplicate", false));
  BOOST_TEST(CountStarted(pipeline.engine(), "rd-1") == 1);
}

// Supervision of a consumer loop: the partition's durable consumer is
// deleted under a running ingress; its loop notices (an idle check), runs the
// repair (EnsureStreams recreates the consumer), binds again and serves the
// partition's next start.
BOOST_AUTO_TEST_CASE(a_deleted_consumer_is_recreated_and_its_partition_resumes) {
  NatsTestServer server;
  auto client = server.Connect("client");
  NatsPipelineOptions options;
  options.ingress.consumer_check = 200ms;
  options.ingress.repair = [&client] {
    return bus::EnsureStreams(*client, bus::Subjects(), {.partitions = 16}).status();
  };
  NatsPipeline pipeline(server.url(), options);
  NatsCollector events(*client, "aion.evt.*.*.completed");
  const std::string before = IdInPartition(3, "sup");
  JsPublish(*client, "aion.wf." + before + ".start", StartJson("noop", "1"), kJsonHeaders);
  AwaitEvent(events, before, "completed");

  jsErrCode jerr = static_cast<jsErrCode>(0);
  BOOST_REQUIRE(js_DeleteConsumer(client->js(), "AION_IN", "in-3", nullptr, &jerr) == NATS_OK);
  const std::string after = IdInPartition(3, "sup-after");
  JsPublish(*client, "aion.wf." + after + ".start", StartJson("noop", "2"), kJsonHeaders);
  AwaitEvent(events, after, "completed");
  BOOST_TEST(pipeline.ingress().stats().restarts >= 1u);
}

}  // namespace
}  // namespace aion::testing
