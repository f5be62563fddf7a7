// Queries, signal-with-start, id-reuse policies, continue-as-new lifecycle
// events and aion.api.list against a real nats-server, with in-process
// engines (tests/support/nats_pipeline.h).
#define BOOST_TEST_MODULE nats_query_list
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <future>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>

#include "aion/engine/ids.h"
#include "support/nats_pipeline.h"
#include "support/nats_test_server.h"
#include "support/wait.h"

namespace aion::testing {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

std::int64_t Ms(SteadyClock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// Counts "tick" signals until "stop". Queries: "count" (with the args it was
// asked with), "slow" (holds its executor for 2 s), "boom" (throws).
Task<Json> Counter(Context& ctx, Json) {
  int count = 0;
  ctx.on_query("count", [&count](const Json& args) {
    return Json{{"count", count}, {"asked_with", args}};
  });
  ctx.on_query("slow", [](const Json&) {
    std::this_thread::sleep_for(2s);
    return Json("late");
  });
  ctx.on_query("boom", [](const Json&) -> Json { throw std::runtime_error("handler broke"); });
  while (true) {
    Json s = co_await ctx.signal<Json>("tick");
    if (s == "stop") co_return count;
    ++count;
  }
}

// Continues as new until n reaches 2, then returns it.
Task<Json> Looper(Context& ctx, Json input) {
  const int n = input.value("n", 0);
  if (n < 2) ctx.continue_as_new(Json{{"n", n + 1}});
  co_return Json{{"done", n}};
}

NatsPipelineOptions WithTestWorkflows(NatsPipelineOptions options = {}) {
  options.register_workflows = [](WorkflowRegistry& registry) {
    if (!registry.workflow("counter", &Counter).ok() ||
        !registry.workflow("looper", &Looper).ok()) {
      throw std::runtime_error("cannot register the test workflows");
    }
  };
  return options;
}

Json AskJson(bus::NatsConnection& conn, const std::string& subject, const std::string& body,
             std::chrono::milliseconds timeout = 10s) {
  return Json::parse(Request(conn, subject, body, /*json=*/true, timeout));
}

Json Query(bus::NatsConnection& conn, const std::string& id, const std::string& body) {
  return AskJson(conn, "aion.req." + id + ".query", body);
}

// Publishes `body` (JSON) to `subject` with reply subject `reply_to`.
void PublishRequest(bus::NatsConnection& conn, const std::string& subject,
                    const std::string& reply_to, const std::string& body) {
  natsMsg* raw = nullptr;
  BOOST_REQUIRE(natsMsg_Create(&raw, subject.c_str(), reply_to.c_str(), body.data(),
                               static_cast<int>(body.size())) == NATS_OK);
  NatsMsgPtr msg(raw);
  natsMsgHeader_Set(raw, "Content-Type", "application/json");
  BOOST_REQUIRE(natsConnection_PublishMsg(conn.nc(), raw) == NATS_OK);
  natsConnection_Flush(conn.nc());
}

Json NextJson(NatsCollector& c, std::chrono::milliseconds timeout = 10s) {
  auto msg = c.Next(timeout);
  BOOST_REQUIRE_MESSAGE(msg != nullptr, "no message arrived");
  return Json::parse(Body(msg.get()));
}

bus::Headers ReplyTo(const std::string& subject) {
  bus::Headers h = kJsonHeaders;
  h["Aion-Reply-To"] = subject;
  return h;
}

void StartCounter(Engine& engine, const std::string& id) {
  BOOST_REQUIRE(engine.Start(id, "counter", JsonPayload(nullptr)).status.ok());
}

// An id of partition `p` (of 16).
std::string IdInPartition(std::uint32_t p, const std::string& stem) {
  for (int n = 0;; ++n) {
    std::string id = stem + "-" + std::to_string(n);
    if (PartitionOf(id, 16) == p) return id;
  }
}

BOOST_AUTO_TEST_CASE(queries_are_answered_over_nats_with_exact_error_codes) {
  NatsTestServer server;
  NatsPipeline pipeline(server.url(), WithTestWorkflows());
  auto client = server.Connect("client");
  StartCounter(pipeline.engine(), "q-1");
  BOOST_REQUIRE(pipeline.engine().Signal("q-1", "tick", JsonPayload("a")).status.ok());

  BOOST_REQUIRE(WaitFor([&] {
    Json r = Query(*client, "q-1", R"({"name":"count","args":{"x":1}})");
    return r.contains("result") && r["result"]["count"] == 1;
  }));
  Json answer = Query(*client, "q-1", R"({"name":"count","args":{"x":1}})");
  BOOST_TEST((answer["result"] == Json{{"count", 1}, {"asked_with", {{"x", 1}}}}));
  BOOST_TEST(!answer.contains("error"));

  // Binary request and reply.
  wire::QueryRequest binary;
  binary.set_name("count");
  wire::QueryReply reply;
  BOOST_REQUIRE(reply.ParseFromString(
      Request(*client, "aion.req.q-1.query", binary.SerializeAsString(), /*json=*/false)));
  BOOST_TEST(!reply.has_error());
  BOOST_TEST(bus::JsonFromValue(reply.result())["count"] == 1);

  BOOST_TEST(Query(*client, "q-1", R"({"name":"colour"})")["error"]["code"] == "unknown_query");
  BOOST_TEST(Query(*client, "nobody", R"({"name":"count"})")["error"]["code"] == "not_found");
  BOOST_TEST(Query(*client, "q-1", R"({"name":"boom"})")["error"]["code"] == "invalid_argument");
  // Malformed requests.
  BOOST_TEST(Query(*client, "q-1", R"({"name":"bad name"})")["error"]["code"] ==
             "invalid_argument");
  BOOST_TEST(Query(*client, "q-1", "{}")["error"]["code"] == "invalid_argument");
  BOOST_TEST(Query(*client, "q-1", "{oops")["error"]["code"] == "invalid_argument");
  BOOST_TEST(Query(*client, "q-1", R"({"name":"count","timeout_ms":"x"})")["error"]["code"] ==
             "invalid_argument");
  // Nothing of the above was recorded.
  BOOST_TEST(pipeline.engine().History("q-1")->size() == 2u);
  // A closed run answers no queries.
  BOOST_REQUIRE(pipeline.engine().Signal("q-1", "tick", JsonPayload("stop")).status.ok());
  BOOST_REQUIRE(pipeline.engine().AwaitResult("q-1", 10s).ok());
  BOOST_TEST(Query(*client, "q-1", R"({"name":"count"})")["error"]["code"] == "not_running");
}

// nats.c delivers one partition's requests on one thread: a query must not
// hold it. A slow query times out after its own timeout_ms, and describe of
// another id in the same partition is answered at once meanwhile.
BOOST_AUTO_TEST_CASE(a_slow_query_times_out_without_stalling_its_partition) {
  NatsTestServer server;
  NatsPipeline pipeline(server.url(), WithTestWorkflows());
  auto client = server.Connect("client");
  const std::string slow = IdInPartition(6, "slow");
  const std::string other = IdInPartition(6, "other");
  StartCounter(pipeline.engine(), slow);
  BOOST_REQUIRE(pipeline.engine().Start(other, "noop", JsonPayload(1)).status.ok());
  BOOST_REQUIRE(WaitFor([&] { return pipeline.engine().Describe(other).ok(); }));

  NatsCollector replies(*client, "test.query.reply");
  const auto asked = SteadyClock::now();
  PublishRequest(*client, "aion.req." + slow + ".query", "test.query.reply",
                 R"({"name":"slow","timeout_ms":1200})");
  std::this_thread::sleep_for(100ms);  // the query is in the worker now
  const auto before_describe = SteadyClock::now();
  Json described = AskJson(*client, "aion.req." + other + ".describe", "{}", 5s);
  const auto describe_ms = Ms(SteadyClock::now() - before_describe);
  BOOST_TEST(described["workflow_id"] == other);
  BOOST_CHECK_MESSAGE(describe_ms < 800, "describe took " << describe_ms << " ms");

  Json timed_out = NextJson(replies, 5s);
  const auto query_ms = Ms(SteadyClock::now() - asked);
  BOOST_TEST(timed_out["error"]["code"] == "query_timeout");
  // After its own timeout, before the 2 s handler finished.
  BOOST_CHECK_MESSAGE(query_ms >= 1100 && query_ms < 1900, "query took " << query_ms << " ms");
}

BOOST_AUTO_TEST_CASE(queries_beyond_the_queue_limit_are_resource_exhausted) {
  NatsTestServer server;
  NatsPipelineOptions options = WithTestWorkflows();
  options.api.query_threads = 1;
  options.api.max_queued_queries = 1;
  NatsPipeline pipeline(server.url(), options);
  auto client = server.Connect("client");
  StartCounter(pipeline.engine(), "busy");
  NatsCollector replies(*client, "test.busy.reply");
  PublishRequest(*client, "aion.req.busy.query", "test.busy.reply",
                 R"({"name":"slow","timeout_ms":1000})");
  std::this_thread::sleep_for(100ms);
  Json refused = Query(*client, "busy", R"({"name":"count"})");
  BOOST_TEST(refused["error"]["code"] == "resource_exhausted");
  BOOST_TEST(NextJson(replies)["error"]["code"] == "query_timeout");
  // The slot is free again once the slow one is done.
  BOOST_REQUIRE(
      WaitFor([&] { return Query(*client, "busy", R"({"name":"count"})").contains("result"); }));
}

BOOST_AUTO_TEST_CASE(signal_with_start_starts_or_signals_and_is_idempotent) {
  NatsTestServer server;
  NatsPipeline pipeline(server.url(), WithTestWorkflows());
  auto client = server.Connect("client");
  NatsCollector replies(*client, "test.replies");
  const std::string body =
      R"({"workflow_type":"timer_signal","input":{"sleep_ms":0,"signal":"go"},)"
      R"("signal_name":"go","signal_input":{"by":"sws"},"request_id":"s-1"})";
  JsPublish(*client, "aion.wf.sws-1.signal_with_start", body, ReplyTo("test.replies"));
  Json first = NextJson(replies);
  BOOST_TEST(!first.contains("error"));
  BOOST_TEST(first["workflow_id"] == "sws-1");
  auto result = pipeline.engine().AwaitResult("sws-1", 10s);
  BOOST_REQUIRE(result.ok());
  BOOST_TEST(
      (*ParseJsonPayload(result->output) == Json{{"slept_ms", 0}, {"signal", {{"by", "sws"}}}}));
  BOOST_TEST(result->run_id == first["run_id"]);

  // The same request again: recognised, nothing new.
  const auto history = pipeline.engine().History("sws-1")->size();
  JsPublish(*client, "aion.wf.sws-1.signal_with_start", body, ReplyTo("test.replies"));
  Json again = NextJson(replies);
  BOOST_TEST(again["duplicate"] == true);
  BOOST_TEST(again["run_id"] == first["run_id"]);
  BOOST_TEST(pipeline.engine().History("sws-1")->size() == history);

  // A running counter: signal-with-start only signals it.
  StartCounter(pipeline.engine(), "sws-2");
  const std::string run = pipeline.engine().Describe("sws-2")->record.run_id();
  JsPublish(*client, "aion.wf.sws-2.signal_with_start",
            R"({"workflow_type":"counter","signal_name":"tick","signal_input":"x"})",
            ReplyTo("test.replies"));
  Json signalled = NextJson(replies);
  BOOST_TEST(!signalled.contains("error"));
  BOOST_TEST(signalled["run_id"] == run);
  BOOST_REQUIRE(WaitFor(
      [&] { return Query(*client, "sws-2", R"({"name":"count"})")["result"]["count"] == 1; }));

  // Closed id, REJECT_DUPLICATE: already_started; the default policy starts anew.
  JsPublish(*client, "aion.wf.sws-1.signal_with_start",
            R"({"workflow_type":"timer_signal","input":{"sleep_ms":0,"signal":"go"},)"
            R"("signal_name":"go","id_reuse_policy":"ID_REUSE_POLICY_REJECT_DUPLICATE"})",
            ReplyTo("test.replies"));
  BOOST_TEST(NextJson(replies)["error"]["code"] == "already_started");
  // An unknown type is dead-lettered and answered.
  JsPublish(*client, "aion.wf.sws-3.signal_with_start",
            R"({"workflow_type":"nope","signal_name":"go"})", ReplyTo("test.replies"));
  BOOST_TEST(NextJson(replies)["error"]["code"] == "unknown_workflow_type");
  // Malformed: answered invalid_argument.
  JsPublish(*client, "aion.wf.sws-3.signal_with_start", R"({"workflow_type":"noop"})",
            ReplyTo("test.replies"));
  BOOST_TEST(NextJson(replies)["error"]["code"] == "invalid_argument");
  BOOST_TEST(!pipeline.engine().Describe("sws-3").ok());
}

BOOST_AUTO_TEST_CASE(start_honours_the_id_reuse_policy) {
  NatsTestServer server;
  NatsPipeline pipeline(server.url(), WithTestWorkflows());
  auto client = server.Connect("client");
  NatsCollector replies(*client, "test.replies");
  BOOST_REQUIRE(pipeline.engine().Start("r-1", "noop", JsonPayload(1)).status.ok());
  BOOST_REQUIRE(pipeline.engine().AwaitResult("r-1", 10s).ok());
  auto start = [&](const std::string& policy) {
    std::string body = R"({"workflow_type":"noop","input":2)";
    if (!policy.empty()) body += R"(,"id_reuse_policy":")" + policy + "\"";
    JsPublish(*client, "aion.wf.r-1.start", body + "}", ReplyTo("test.replies"));
    return NextJson(replies);
  };
  BOOST_TEST(start("ID_REUSE_POLICY_REJECT_DUPLICATE")["error"]["code"] == "already_started");
  BOOST_TEST(start("ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY")["error"]["code"] ==
             "already_started");  // the last run completed
  BOOST_TEST(start("ID_REUSE_POLICY_SOMETIMES")["error"]["code"] == "invalid_argument");
  Json allowed = start("");
  BOOST_TEST(!allowed.contains("error"));
  BOOST_TEST(allowed["run_id"] != pipeline.engine().History("r-1")->front().run_id());
  // Two runs of two events each.
  BOOST_TEST(WaitFor([&] { return pipeline.engine().History("r-1")->size() == 4u; }));
}

BOOST_AUTO_TEST_CASE(continue_as_new_publishes_continued_as_new_then_started) {
  NatsTestServer server;
  NatsPipeline pipeline(server.url(), WithTestWorkflows());
  auto client = server.Connect("client");
  NatsCollector events(*client, "aion.evt.looper.loop-1.>");
  JsPublish(*client, "aion.wf.loop-1.start", R"({"workflow_type":"looper","input":{"n":0}})",
            kJsonHeaders);
  std::vector<wire::LifecycleEvent> seen;
  std::vector<std::string> subjects;
  while (seen.empty() || seen.back().event() != "completed") {
    auto msg = events.Next();
    BOOST_REQUIRE_MESSAGE(msg != nullptr, "missing lifecycle events after " << seen.size());
    wire::LifecycleEvent e;
    BOOST_REQUIRE(e.ParseFromString(Body(msg.get())));
    subjects.emplace_back(natsMsg_GetSubject(msg.get()));
    seen.push_back(e);
  }
  const std::vector<std::string> expected = {"started",          "continued_as_new", "started",
                                             "continued_as_new", "started",          "completed"};
  BOOST_REQUIRE(seen.size() == expected.size());
  for (std::size_t i = 0; i < seen.size(); ++i) {
    BOOST_TEST(seen[i].event() == expected[i]);
    BOOST_TEST(subjects[i] == "aion.evt.looper.loop-1." + expected[i]);
  }
  BOOST_TEST(seen[1].run_id() == seen[0].run_id());
  BOOST_TEST(seen[1].next_run_id() == seen[2].run_id());
  BOOST_TEST(seen[2].run_id() != seen[0].run_id());
  BOOST_TEST(seen[3].next_run_id() == seen[4].run_id());
  BOOST_TEST((bus::JsonFromValue(seen[2].input()) == Json{{"n", 1}}));
  BOOST_TEST((bus::JsonFromValue(seen[5].output()) == Json{{"done", 2}}));
  BOOST_TEST(seen[5].run_id() == seen[4].run_id());
}

// Two workers with disjoint partitions on one NATS: every one answers
// aion.api.list for its own partitions.
BOOST_AUTO_TEST_CASE(list_is_answered_by_every_worker_for_its_partitions) {
  NatsTestServer server;
  NatsPipelineOptions low = WithTestWorkflows(), high = WithTestWorkflows();
  for (std::uint32_t p = 0; p < 8; ++p) low.owned.push_back(p);
  for (std::uint32_t p = 8; p < 16; ++p) high.owned.push_back(p);
  NatsPipeline a(server.url(), low);
  NatsPipeline b(server.url(), high);
  auto client = server.Connect("client");
  std::set<std::string> running, completed;
  for (int i = 0; i < 12; ++i) {
    const std::string id = "l-" + std::to_string(i);
    const bool run = i % 3 == 0;
    JsPublish(*client, "aion.wf." + id + ".start",
              run ? R"({"workflow_type":"counter"})" : R"({"workflow_type":"noop","input":1})",
              kJsonHeaders);
    (run ? running : completed).insert(id);
  }
  auto owner = [&](const std::string& id) -> Engine& {
    return PartitionOf(id, 16) < 8 ? a.engine() : b.engine();
  };
  BOOST_REQUIRE(WaitFor([&] {
    for (const auto& id : completed) {
      auto d = owner(id).Describe(id);
      if (!d.ok() || d->record.status() != records::WORKFLOW_STATUS_COMPLETED) return false;
    }
    for (const auto& id : running) {
      if (!owner(id).Describe(id).ok()) return false;
    }
    return true;
  }));

  auto gather = [&](const std::string& body, std::size_t expected_replies) {
    static int n = 0;
    const std::string inbox = "test.list." + std::to_string(++n);
    NatsCollector replies(*client, inbox);
    PublishRequest(*client, "aion.api.list", inbox, body);
    std::vector<Json> out;
    for (std::size_t i = 0; i < expected_replies; ++i) out.push_back(NextJson(replies, 5s));
    BOOST_TEST(!replies.Next(300ms));  // nobody else answers
    return out;
  };

  std::set<std::string> listed;
  std::set<std::uint32_t> partitions;
  std::map<std::uint32_t, std::size_t> per_worker;  // by its first partition
  for (Json reply : gather("{}", 2)) {
    BOOST_TEST(!reply.contains("error"));
    BOOST_TEST(reply.value("next_page_token", std::string()).empty());
    per_worker[reply["partitions"][0].get<std::uint32_t>()] =
        reply.value("workflows", Json::array()).size();
    for (const auto& p : reply["partitions"]) partitions.insert(p.get<std::uint32_t>());
    for (const auto& w : reply.value("workflows", Json::array())) {
      const std::string id = w["workflow_id"];
      listed.insert(id);
      BOOST_TEST((PartitionOf(id, 16) < 8) == (reply["partitions"][0] == 0));
      BOOST_TEST(w["status"] == (running.count(id) ? "running" : "completed"));
      BOOST_TEST(w.value("partition", 0u) == PartitionOf(id, 16));
    }
  }
  BOOST_TEST(partitions.size() == 16u);
  std::set<std::string> all = running;
  all.insert(completed.begin(), completed.end());
  BOOST_TEST((listed == all));

  std::set<std::string> only_running;
  for (Json reply : gather(R"({"statuses":["running"],"workflow_type":"counter"})", 2)) {
    for (const auto& w : reply.value("workflows", Json::array()))
      only_running.insert(w["workflow_id"].get<std::string>());
  }
  BOOST_TEST((only_running == running));

  // A page per worker: limit 1 leaves a next_page_token where there is more.
  for (Json reply : gather(R"({"limit":1})", 2)) {
    const std::size_t has = per_worker[reply["partitions"][0].get<std::uint32_t>()];
    BOOST_TEST(reply.value("workflows", Json::array()).size() == std::min<std::size_t>(has, 1));
    BOOST_TEST(reply.value("next_page_token", std::string()).empty() == (has <= 1));
  }

  for (Json reply : gather(R"({"statuses":["runing"]})", 2)) {
    BOOST_TEST(reply["error"]["code"] == "invalid_argument");
    BOOST_TEST(reply["partitions"].size() == 8u);
  }
  for (Json reply : gather(R"({"limit":5000})", 2)) {
    BOOST_TEST(reply["error"]["code"] == "invalid_argument");
  }
  // Binary too.
  wire::ListRequest req;
  req.add_statuses("completed");
  const std::string inbox = "test.list.binary";
  NatsCollector replies(*client, inbox);
  BOOST_REQUIRE(natsConnection_PublishRequest(client->nc(), "aion.api.list", inbox.c_str(),
                                              req.SerializeAsString().data(),
                                              static_cast<int>(req.ByteSizeLong())) == NATS_OK);
  std::size_t n = 0;
  for (int i = 0; i < 2; ++i) {
    auto msg = replies.Next(5s);
    BOOST_REQUIRE(msg != nullptr);
    wire::ListReply reply;
    BOOST_REQUIRE(reply.ParseFromString(Body(msg.get())));
    BOOST_TEST(!reply.has_error());
    n += static_cast<std::size_t>(reply.workflows_size());
  }
  BOOST_TEST(n == completed.size());
}

}  // namespace
}  // namespace aion::testing
