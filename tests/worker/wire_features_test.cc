// What clients and pipelines in other languages rely on, through a real
// nats-server and real aion-worker processes: ctx.log() stays silent while a
// restarted worker replays, lifecycle events and dead letters in JSON
// (--event-format), and a start answered when its run closes
// (Aion-Reply-When: closed), also across a worker restart.
#define BOOST_TEST_MODULE wire_features
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "worker/worker_harness.h"

namespace aion::testing {
namespace {

using nlohmann::json;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::size_t Occurrences(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

BOOST_AUTO_TEST_CASE(a_restarted_worker_does_not_log_recorded_steps_again) {
  WorkerHarness h;
  const std::string id = "quiet-1";
  const std::string line = "[" + id + "] slept 0 ms, waiting for signal 'go'";
  auto started = h.Aion({"start", "timer_signal", id, "--input", R"({"sleep_ms":0})"});
  BOOST_REQUIRE_EQUAL(started.exit_code, 0);
  // [Started, TimerStarted, TimerFired]: the code logged, then waits for "go"
  // without issuing a command.
  BOOST_REQUIRE(h.AwaitHistoryLength(id, 3));
  BOOST_REQUIRE(WaitFor([&] { return Occurrences(ReadFile(h.worker().log_file()), line) == 1; }));
  BOOST_REQUIRE(h.worker().Terminate().ok());
  BOOST_REQUIRE(h.worker().Restart().ok());  // rebuilds the open run by replay
  auto signaled = h.Aion({"signal", id, "go"});
  BOOST_REQUIRE_EQUAL(signaled.exit_code, 0);
  wire::ResultReply r = h.Result(id);
  BOOST_CHECK_EQUAL(r.status(), "completed");
  BOOST_CHECK_EQUAL(Occurrences(ReadFile(h.worker().log_file()), line), 1u);
}

std::string HeaderOf(natsMsg* msg, const char* name) {
  const char* v = nullptr;
  return natsMsgHeader_Get(msg, name, &v) == NATS_OK && v != nullptr ? v : "";
}

json NextJson(NatsCollector& c, std::chrono::milliseconds wait = 20s) {
  auto msg = c.Next(wait);
  BOOST_REQUIRE_MESSAGE(msg != nullptr, "no message within the wait");
  BOOST_CHECK_EQUAL(HeaderOf(msg.get(), "Content-Type"), "application/json");
  json j = json::parse(Body(msg.get()), nullptr, false);
  BOOST_REQUIRE_MESSAGE(!j.is_discarded(), "not JSON: " << Body(msg.get()));
  return j;
}

// A JSON start on aion.wf.<id>.start answered on `inbox` when recorded and when closed.
void StartAwaitingClose(WorkerHarness& h, const std::string& id, const json& body,
                        const std::string& inbox) {
  bus::Headers headers = kJsonHeaders;
  headers["Aion-Reply-To"] = inbox;
  headers["Aion-Reply-When"] = "closed";
  JsPublish(h.client(), "aion.wf." + id + ".start", body.dump(), headers);
}

BOOST_AUTO_TEST_CASE(lifecycle_events_and_dead_letters_in_json) {
  WorkerHarness h({"--event-format", "json"});
  NatsCollector events(h.client(), "aion.evt.>");
  NatsCollector letters(h.client(), "aion.dlq.>");
  auto started = h.Aion({"start", "noop", "evt-1", "--input", R"({"a":1})", "--wait"});
  BOOST_REQUIRE_EQUAL(started.exit_code, 0);
  json first = NextJson(events);
  BOOST_CHECK_EQUAL(first["event"], "started");
  BOOST_CHECK_EQUAL(first["workflow_id"], "evt-1");
  BOOST_CHECK_EQUAL(first["input"], json({{"a", 1}}));
  json second = NextJson(events);
  BOOST_CHECK_EQUAL(second["event"], "completed");
  BOOST_CHECK_EQUAL(second["output"], json({{"a", 1}}));

  // `aion sub` reads the JSON form (it decides by Content-Type).
  ProcessResult seen;  // no Boost.Test assertions off the main thread
  std::atomic<bool> sub_done{false};
  std::thread sub([&] {
    seen = RunProcess({BinaryPath("aion").string(), "--nats", h.url(), "sub", "aion.dlq.>",
                       "--count", "1", "--timeout", "20s"},
                      30s);
    sub_done = true;
  });
  // The CLI's subscription is not visible from here: publish bad starts
  // until it has seen one (the first is the one checked below).
  for (int n = 0; n < 40 && !sub_done; ++n) {
    const std::string id = n == 0 ? "evt-2" : "evt-2-" + std::to_string(n);
    JsPublish(h.client(), "aion.wf." + id + ".start", R"({"workflow_type":"nope"})", kJsonHeaders);
    for (int i = 0; i < 10 && !sub_done; ++i) std::this_thread::sleep_for(50ms);
  }
  json letter = NextJson(letters);
  sub.join();
  BOOST_CHECK_EQUAL(seen.exit_code, 0);
  BOOST_CHECK_MESSAGE(
      Contains(seen.out, "dead letter start [unknown_workflow_type] no workflow type 'nope'"),
      seen.out << seen.err);
  BOOST_CHECK_EQUAL(letter["kind"], "start");
  BOOST_CHECK_EQUAL(letter["code"], "unknown_workflow_type");
  BOOST_CHECK_EQUAL(
      letter["subject"],
      "aion.in." + std::to_string(PartitionOf("evt-2", kPartitions)) + ".evt-2.start");
}

BOOST_AUTO_TEST_CASE(lifecycle_events_default_to_protobuf_with_content_type) {
  WorkerHarness h;
  NatsCollector events(h.client(), "aion.evt.>");
  auto started = h.Aion({"start", "noop", "evt-3", "--input", "7"});
  BOOST_REQUIRE_EQUAL(started.exit_code, 0);
  auto msg = events.Next(20s);
  BOOST_REQUIRE(msg != nullptr);
  BOOST_CHECK_EQUAL(HeaderOf(msg.get(), "Content-Type"), "application/protobuf");
  wire::LifecycleEvent e;
  BOOST_REQUIRE(e.ParseFromString(Body(msg.get())));
  BOOST_CHECK_EQUAL(e.event(), "started");
  // An unknown value of the flag is refused at startup.
  auto bad = RunProcess(
      {BinaryPath("aion-worker").string(), "--nats", h.url(), "--data",
       (h.worker().log_file().parent_path() / "other").string(), "--event-format", "xml"},
      30s);
  BOOST_CHECK_NE(bad.exit_code, 0);
  BOOST_CHECK_MESSAGE(Contains(bad.err + bad.out, "event-format"), bad.err);
}

// The two replies of a start that asked for the close, in either order (the
// close reply leaves through the outbox, the other from the ingress).
std::pair<json, json> RecordedAndClosed(NatsCollector& replies) {
  json a = NextJson(replies);
  json b = NextJson(replies);
  if (a.contains("status")) std::swap(a, b);
  BOOST_CHECK(!a.contains("status"));
  BOOST_CHECK(b.contains("status"));
  return {a, b};
}

BOOST_AUTO_TEST_CASE(start_answered_when_the_run_closes) {
  WorkerHarness h;
  NatsCollector replies(h.client(), "_INBOX.close.>");
  StartAwaitingClose(h, "cl-1", {{"workflow_type", "noop"}, {"input", {{"x", 1}}}},
                     "_INBOX.close.1");
  auto [recorded, closed] = RecordedAndClosed(replies);
  BOOST_CHECK(!recorded.contains("error"));
  BOOST_CHECK_EQUAL(closed["status"], "completed");
  BOOST_CHECK_EQUAL(closed["output"], json({{"x", 1}}));
  BOOST_CHECK_EQUAL(closed["run_id"], recorded["run_id"]);
  BOOST_CHECK_EQUAL(closed["workflow_id"], "cl-1");

  // A failed run: the failure.
  StartAwaitingClose(h, "cl-2", {{"workflow_type", "timer_signal"}, {"input", 5}},
                     "_INBOX.close.2");
  json failed = RecordedAndClosed(replies).second;
  BOOST_CHECK_EQUAL(failed["status"], "failed");
  BOOST_CHECK_MESSAGE(Contains(failed.value("failure", ""), "expects a JSON object"), failed);

  // Bad header values are dead-lettered, answered invalid_argument.
  bus::Headers bad = kJsonHeaders;
  bad["Aion-Reply-To"] = "_INBOX.close.3";
  bad["Aion-Reply-When"] = "eventually";
  JsPublish(h.client(), "aion.wf.cl-3.start", R"({"workflow_type":"noop"})", bad);
  json refused = NextJson(replies);
  BOOST_CHECK_EQUAL(refused["error"]["code"], "invalid_argument");
  BOOST_CHECK(WaitFor([&] { return StreamCount(h.client(), "AION_DLQ") == 1; }, 10s));
  BOOST_CHECK_EQUAL(h.Describe("cl-3").error().code(), "not_found");

  // The CLI's start --wait uses it: started, then the result.
  auto waited = h.Aion({"start", "noop", "cl-4", "--input", R"({"y":2})", "--wait"});
  BOOST_CHECK_EQUAL(waited.exit_code, 0);
  BOOST_CHECK_MESSAGE(Contains(waited.out, "started cl-4 run "), waited.out);
  BOOST_CHECK_MESSAGE(Contains(waited.out, "completed cl-4 run "), waited.out);
  BOOST_CHECK_MESSAGE(Contains(waited.out, R"(output {"y":2})"), waited.out);
  auto open = h.Aion({"start", "timer_signal", "cl-5", "--input", R"({"sleep_ms":60000})", "--wait",
                      "--timeout", "1s"});
  BOOST_CHECK_EQUAL(open.exit_code, 4);  // still open when --timeout ran out
  BOOST_CHECK_MESSAGE(Contains(open.out, "started cl-5 run "), open.out);
}

BOOST_AUTO_TEST_CASE(a_close_reply_survives_a_worker_restart) {
  WorkerHarness h;
  NatsCollector replies(h.client(), "_INBOX.restart.>");
  const json body = {{"workflow_type", "timer_signal"},
                     {"input", {{"sleep_ms", 0}, {"signal", "go"}}},
                     {"request_id", "rs-1"}};
  StartAwaitingClose(h, "rs-1", body, "_INBOX.restart.1");
  json recorded = NextJson(replies);
  BOOST_REQUIRE(!recorded.contains("error"));
  BOOST_REQUIRE(h.worker().Terminate().ok());
  BOOST_REQUIRE(h.worker().Restart().ok());
  auto signaled = h.Aion({"signal", "rs-1", "go", "--input", R"("after restart")"});
  BOOST_REQUIRE_EQUAL(signaled.exit_code, 0);
  json closed = NextJson(replies);
  BOOST_CHECK_EQUAL(closed["status"], "completed");
  BOOST_CHECK_EQUAL(closed["output"]["signal"], "after restart");
  BOOST_CHECK_EQUAL(closed["run_id"], recorded["run_id"]);

  // The same start again (same request id): a duplicate, answered at once
  // with the result of the closed run.
  StartAwaitingClose(h, "rs-1", body, "_INBOX.restart.2");
  auto [dup, result] = RecordedAndClosed(replies);
  BOOST_CHECK_EQUAL(dup["duplicate"], true);
  BOOST_CHECK_EQUAL(result["status"], "completed");
  BOOST_CHECK_EQUAL(result["run_id"], recorded["run_id"]);
  BOOST_CHECK_EQUAL(result["output"]["signal"], "after restart");
}

}  // namespace
}  // namespace aion::testing
