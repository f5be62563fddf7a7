// End to end through a real nats-server and a real aion-worker process:
// start -> timer -> signal -> complete, once through the `aion` CLI and once
// through raw JSON messages published with nats.c (DESIGN §5), plus the CLI's
// exit codes for refusals, unknown ids and an unreachable server.
#define BOOST_TEST_MODULE cli_e2e
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>
#include <sstream>

#include "aion/bus/streams.h"
#include "aion/engine/version.h"
#include "worker/worker_harness.h"

namespace aion::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// A JSON number that protobuf's JSON mapping may print as a string (64-bit ints).
std::uint64_t JsonUint(const json& v) {
  if (v.is_string()) return std::stoull(v.get<std::string>());
  return v.get<std::uint64_t>();
}

json ParseJsonOrFail(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  BOOST_REQUIRE_MESSAGE(!j.is_discarded(), "not JSON: " << text);
  return j;
}

// A TCP port on 127.0.0.1 that nobody listens on (bound, then closed).
int ClosedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  BOOST_REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  BOOST_REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  BOOST_REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  close(fd);
  return ntohs(addr.sin_port);
}

std::vector<std::string> EventNames(const wire::HistoryReply& h) {
  std::vector<std::string> names;
  for (const auto& e : h.events()) names.push_back(EventName(e));
  return names;
}

const std::vector<std::string> kTimerThenSignal = {"WorkflowStarted", "TimerStarted", "TimerFired",
                                                   "SignalReceived", "WorkflowCompleted"};

BOOST_AUTO_TEST_CASE(cli_start_timer_signal_complete) {
  WorkerHarness h;
  const std::string id = "cli-1";
  const std::string input = R"({"sleep_ms":300,"signal":"go"})";

  auto started = h.Aion({"start", "timer_signal", id, "--input", input, "--request-id", "s-1"});
  BOOST_REQUIRE_EQUAL(started.exit_code, 0);
  BOOST_CHECK_MESSAGE(Contains(started.out, "started " + id + " run "), started.out);

  auto running = h.Aion({"describe", id});
  BOOST_REQUIRE_EQUAL(running.exit_code, 0);
  BOOST_CHECK_MESSAGE(Contains(running.out, "timer_signal"), running.out);
  BOOST_CHECK_MESSAGE(Contains(running.out, "running"), running.out);

  // The timer fires after 300 ms; then the run waits for the signal, so the
  // history stays [Started, TimerStarted, TimerFired].
  BOOST_REQUIRE_MESSAGE(h.AwaitHistoryLength(id, 3), "the timer did not fire");
  const wire::HistoryReply before = h.History(id);
  BOOST_REQUIRE_EQUAL(before.events_size(), 3);

  // A retry of the same start (same request id) is a duplicate: exit 0, nothing new.
  auto retry = h.Aion({"start", "timer_signal", id, "--input", input, "--request-id", "s-1"});
  BOOST_CHECK_EQUAL(retry.exit_code, 0);
  BOOST_CHECK_MESSAGE(Contains(retry.out, "duplicate"), retry.out);
  // Another start of the running id is refused with already_started (exit 1).
  auto again = h.Aion({"start", "timer_signal", id, "--input", input});
  BOOST_CHECK_EQUAL(again.exit_code, 1);
  BOOST_CHECK_MESSAGE(Contains(again.err, "already_started"), again.err);
  auto again_json =
      h.Aion({"--json", "start", "timer_signal", id, "--input", input, "--request-id", "s-2"});
  BOOST_CHECK_EQUAL(again_json.exit_code, 1);
  json refusal = ParseJsonOrFail(again_json.out);
  BOOST_CHECK_EQUAL(refusal["error"]["code"], "already_started");
  // ... and appended nothing.
  const wire::HistoryReply after = h.History(id);
  BOOST_REQUIRE_EQUAL(after.events_size(), before.events_size());
  for (int i = 0; i < after.events_size(); ++i) {
    BOOST_CHECK_EQUAL(after.events(i).SerializeAsString(), before.events(i).SerializeAsString());
  }
  BOOST_CHECK_EQUAL(StreamCount(h.client(), std::string(bus::kDlqStream)), 0u);

  auto signaled = h.Aion({"signal", id, "go", "--input", R"({"by":"ana"})"});
  BOOST_REQUIRE_EQUAL(signaled.exit_code, 0);
  BOOST_CHECK_MESSAGE(Contains(signaled.out, "signaled " + id + " run "), signaled.out);

  auto result = h.Aion({"result", id, "--json"});
  BOOST_REQUIRE_EQUAL(result.exit_code, 0);
  json r = ParseJsonOrFail(result.out);
  BOOST_CHECK_EQUAL(r["status"], "completed");
  BOOST_CHECK_EQUAL(r["output"], json::parse(R"({"slept_ms":300,"signal":{"by":"ana"}})"));
  BOOST_CHECK(!r.value("run_id", std::string()).empty());

  auto described = h.Aion({"describe", id});
  BOOST_REQUIRE_EQUAL(described.exit_code, 0);
  BOOST_CHECK_MESSAGE(Contains(described.out, "completed"), described.out);
  auto described_json = h.Aion({"--json", "describe", id});
  BOOST_REQUIRE_EQUAL(described_json.exit_code, 0);
  json d = ParseJsonOrFail(described_json.out);
  BOOST_CHECK_EQUAL(d["workflow_id"], id);
  BOOST_CHECK_EQUAL(d["workflow_type"], "timer_signal");
  BOOST_CHECK_EQUAL(d["status"], "completed");
  BOOST_CHECK_EQUAL(JsonUint(d["history_length"]), 5u);
  BOOST_CHECK_EQUAL(d["run_id"], r["run_id"]);

  auto hist = h.Aion({"history", id});
  BOOST_REQUIRE_EQUAL(hist.exit_code, 0);
  const auto lines = Lines(hist.out);
  BOOST_REQUIRE_EQUAL(lines.size(), kTimerThenSignal.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    BOOST_CHECK_MESSAGE(Contains(lines[i], kTimerThenSignal[i]), lines[i]);
  }
  auto hist_json = h.Aion({"--json", "history", id});
  BOOST_REQUIRE_EQUAL(hist_json.exit_code, 0);
  json events = ParseJsonOrFail(hist_json.out)["events"];
  BOOST_REQUIRE_EQUAL(events.size(), 5u);
  for (std::size_t i = 0; i < events.size(); ++i) {
    BOOST_CHECK_EQUAL(JsonUint(events[i]["seq"]), i + 1);
  }
  BOOST_CHECK_EQUAL(events[3]["signal_received"]["input"], json::parse(R"({"by":"ana"})"));

  // Terminal is final: a signal to the completed run is refused, nothing appended.
  auto late = h.Aion({"signal", id, "go", "--input", "1"});
  BOOST_CHECK_EQUAL(late.exit_code, 1);
  BOOST_CHECK_MESSAGE(Contains(late.err, "not_running"), late.err);
  BOOST_CHECK_EQUAL(h.History(id).events_size(), 5);
  BOOST_CHECK(EventNames(h.History(id)) == kTimerThenSignal);

  // Exactly one started and one completed lifecycle event.
  BOOST_CHECK(WaitFor([&] {
    std::map<std::string, std::uint64_t> per;
    StreamCount(h.client(), std::string(bus::kEventsStream), "aion.evt.timer_signal." + id + ".*",
                &per);
    return per["aion.evt.timer_signal." + id + ".completed"] == 1;
  }));
  std::map<std::string, std::uint64_t> per;
  StreamCount(h.client(), std::string(bus::kEventsStream), "aion.evt.>", &per);
  BOOST_CHECK_EQUAL(per.size(), 2u);
  BOOST_CHECK_EQUAL(per["aion.evt.timer_signal." + id + ".started"], 1u);
  BOOST_CHECK_EQUAL(per["aion.evt.timer_signal." + id + ".completed"], 1u);

  Status stopped = h.worker().Terminate();
  BOOST_CHECK_MESSAGE(stopped.ok(), stopped.ToString());
}

BOOST_AUTO_TEST_CASE(cli_exit_codes_unknown_id_unreachable_usage) {
  WorkerHarness h;

  auto describe = h.Aion({"describe", "nope-1"});
  BOOST_CHECK_EQUAL(describe.exit_code, 1);
  BOOST_CHECK_MESSAGE(Contains(describe.err, "not_found"), describe.err);
  auto describe_json = h.Aion({"--json", "describe", "nope-1"});
  BOOST_CHECK_EQUAL(describe_json.exit_code, 1);
  BOOST_CHECK_EQUAL(ParseJsonOrFail(describe_json.out)["error"]["code"], "not_found");
  auto result = h.Aion({"result", "nope-1", "--timeout", "2s"});
  BOOST_CHECK_EQUAL(result.exit_code, 1);
  BOOST_CHECK_MESSAGE(Contains(result.err, "not_found"), result.err);
  auto history = h.Aion({"history", "nope-1"});
  BOOST_CHECK_EQUAL(history.exit_code, 1);
  BOOST_CHECK_MESSAGE(Contains(history.err, "not_found"), history.err);
  auto signal = h.Aion({"signal", "nope-1", "go"});
  BOOST_CHECK_EQUAL(signal.exit_code, 1);
  BOOST_CHECK_MESSAGE(Contains(signal.err, "not_found"), signal.err);
  // A signal to an unknown id can never be delivered: it is dead-lettered on
  // aion.dlq.signal with not_found, and it did not create the workflow.
  BOOST_REQUIRE(
      WaitFor([&] { return StreamCount(h.client(), std::string(bus::kDlqStream)) == 1; }, 10s));
  const auto letters = ReadStream(h.client(), std::string(bus::kDlqStream));
  BOOST_REQUIRE_EQUAL(letters.size(), 1u);
  BOOST_CHECK_EQUAL(letters[0].subject, "aion.dlq.signal");
  wire::DeadLetter letter;
  BOOST_REQUIRE(letter.ParseFromString(letters[0].data));
  BOOST_CHECK_EQUAL(letter.code(), "not_found");
  BOOST_CHECK_EQUAL(h.Describe("nope-1").error().code(), "not_found");
  // An unknown workflow type is refused with its own code.
  auto unknown_type = h.Aion({"start", "no_such_type", "nope-2", "--input", "{}"});
  BOOST_CHECK_EQUAL(unknown_type.exit_code, 1);
  BOOST_CHECK_MESSAGE(Contains(unknown_type.err, "unknown_workflow_type"), unknown_type.err);

  // Bad input is refused before anything is sent: exit 2.
  BOOST_CHECK_EQUAL(h.Aion({"describe", "bad id!"}).exit_code, 2);
  BOOST_CHECK_EQUAL(h.Aion({"start", "noop", "ok-id", "--input", "{not json"}).exit_code, 2);
  BOOST_CHECK_EQUAL(h.Describe("ok-id").error().code(), "not_found");

  // Nobody listens on the port: exit 3 for every command.
  const std::string closed = "nats://127.0.0.1:" + std::to_string(ClosedPort());
  for (std::vector<std::string> args : {std::vector<std::string>{"describe", "x-1"},
                                        {"start", "noop", "x-1", "--input", "{}"},
                                        {"signal", "x-1", "go"},
                                        {"result", "x-1", "--timeout", "2s"},
                                        {"history", "x-1"}}) {
    args.insert(args.begin(), {"--nats", closed});
    auto r = h.Aion(args, /*with_url=*/false);
    BOOST_CHECK_MESSAGE(r.exit_code == 3, WorkerHarness::Joined(args) << " exited " << r.exit_code);
    BOOST_CHECK_MESSAGE(!r.err.empty(), "no error text for " << WorkerHarness::Joined(args));
  }
  auto closed_json = h.Aion({"--nats", closed, "--json", "describe", "x-1"}, /*with_url=*/false);
  BOOST_CHECK_EQUAL(closed_json.exit_code, 3);
  BOOST_CHECK(ParseJsonOrFail(closed_json.out)["error"].contains("code"));

  // The worker drains and exits 0 on SIGTERM; then NATS is up but nobody
  // serves the API: exit 3 as well.
  Status stopped = h.worker().Terminate();
  BOOST_REQUIRE_MESSAGE(stopped.ok(), stopped.ToString());
  auto no_worker = h.Aion({"describe", "nope-1", "--timeout", "2s"});
  BOOST_CHECK_EQUAL(no_worker.exit_code, 3);
}

// cancel, terminate and the run timeout through the CLI (DESIGN §5): each is
// answered after the worker recorded it, ends the run with its own status,
// and a closed run refuses them with not_running.
BOOST_AUTO_TEST_CASE(cli_cancel_terminate_and_run_timeout) {
  WorkerHarness h;
  const std::string waiting = R"({"sleep_ms":0,"signal":"never"})";

  // cancel: timer_signal lets the CancelledError escape, so the run ends cancelled.
  BOOST_REQUIRE_EQUAL(h.Aion({"start", "timer_signal", "cx-1", "--input", waiting}).exit_code, 0);
  auto cancel = h.Aion({"cancel", "cx-1", "--reason", "customer asked", "--request-id", "c-1"});
  BOOST_REQUIRE_MESSAGE(cancel.exit_code == 0, cancel.out << cancel.err);
  BOOST_CHECK_MESSAGE(Contains(cancel.out, "cancel requested for cx-1 run "), cancel.out);
  auto cancelled = h.Aion({"--json", "result", "cx-1", "--timeout", "20s"});
  BOOST_CHECK_EQUAL(cancelled.exit_code, 1);  // the run did not complete
  json c = ParseJsonOrFail(cancelled.out);
  BOOST_CHECK_EQUAL(c["status"], "cancelled");
  auto cancelled_text = h.Aion({"result", "cx-1"});
  BOOST_CHECK_MESSAGE(Contains(cancelled_text.out, "cancelled cx-1 run "), cancelled_text.out);
  // The same request again is a duplicate; a new one finds the run closed.
  auto again = h.Aion({"cancel", "cx-1", "--request-id", "c-1"});
  BOOST_CHECK_EQUAL(again.exit_code, 0);
  BOOST_CHECK_MESSAGE(Contains(again.out, "duplicate"), again.out);
  auto closed = h.Aion({"cancel", "cx-1", "--request-id", "c-2"});
  BOOST_CHECK_EQUAL(closed.exit_code, 1);
  BOOST_CHECK_MESSAGE(Contains(closed.err, "not_running"), closed.err);
  auto described = h.Aion({"--json", "describe", "cx-1"});
  BOOST_REQUIRE_EQUAL(described.exit_code, 0);
  BOOST_CHECK_EQUAL(ParseJsonOrFail(described.out)["status"], "cancelled");

  // terminate: the code is not asked; the reason is the failure.
  BOOST_REQUIRE_EQUAL(h.Aion({"start", "timer_signal", "tx-1", "--input", waiting}).exit_code, 0);
  auto terminate = h.Aion({"--json", "terminate", "tx-1", "--reason", "stuck"});
  BOOST_REQUIRE_MESSAGE(terminate.exit_code == 0, terminate.out << terminate.err);
  json t = ParseJsonOrFail(terminate.out);
  BOOST_CHECK_EQUAL(t["workflow_id"], "tx-1");
  BOOST_CHECK(!t.contains("error"));
  auto terminated = h.Aion({"--json", "result", "tx-1", "--timeout", "20s"});
  BOOST_CHECK_EQUAL(terminated.exit_code, 1);
  json tr = ParseJsonOrFail(terminated.out);
  BOOST_CHECK_EQUAL(tr["status"], "terminated");
  BOOST_CHECK_MESSAGE(Contains(tr.value("failure", std::string()), "stuck"), tr.dump());
  auto twice = h.Aion({"terminate", "tx-1"});
  BOOST_CHECK_EQUAL(twice.exit_code, 1);
  BOOST_CHECK_MESSAGE(Contains(twice.err, "not_running"), twice.err);
  auto unknown = h.Aion({"terminate", "tx-unknown"});
  BOOST_CHECK_EQUAL(unknown.exit_code, 1);
  BOOST_CHECK_MESSAGE(Contains(unknown.err, "not_found"), unknown.err);
  BOOST_CHECK_EQUAL(h.Aion({"cancel", "bad id!"}).exit_code, 2);

  // run timeout: shown by describe while running, then timed_out.
  auto timed =
      h.Aion({"start", "timer_signal", "rt-1", "--input", waiting, "--run-timeout", "1500ms"});
  BOOST_REQUIRE_EQUAL(timed.exit_code, 0);
  auto running = h.Aion({"describe", "rt-1"});
  BOOST_CHECK_MESSAGE(Contains(running.out, "run_deadline"), running.out);
  auto timed_out = h.Aion({"--json", "result", "rt-1", "--timeout", "20s"});
  BOOST_CHECK_EQUAL(timed_out.exit_code, 1);
  BOOST_CHECK_EQUAL(ParseJsonOrFail(timed_out.out)["status"], "timed_out");
  BOOST_CHECK_EQUAL(h.Aion({"start", "noop", "rt-2", "--run-timeout", "soon"}).exit_code, 2);

  // One lifecycle event per end, named after it.
  BOOST_CHECK(WaitFor([&] {
    std::map<std::string, std::uint64_t> per;
    StreamCount(h.client(), std::string(bus::kEventsStream), "aion.evt.>", &per);
    return per["aion.evt.timer_signal.cx-1.cancelled"] == 1 &&
           per["aion.evt.timer_signal.tx-1.terminated"] == 1 &&
           per["aion.evt.timer_signal.rt-1.timed_out"] == 1;
  }));
  BOOST_CHECK_EQUAL(StreamCount(h.client(), std::string(bus::kDlqStream)), 0u);
  Status stopped = h.worker().Terminate();
  BOOST_CHECK_MESSAGE(stopped.ok(), stopped.ToString());
}

// query, signal-with-start, --id-reuse and list through the CLI against a
// real worker (the reference workflows register no query handlers, so the
// query answers here are the errors; tests/bus/nats_query_list_test.cc has
// the answers).
BOOST_AUTO_TEST_CASE(cli_query_signal_with_start_id_reuse_and_list) {
  WorkerHarness h({"--max-resident-runs", "2"});
  const std::string waiting = R"({"sleep_ms":0,"signal":"never"})";
  BOOST_REQUIRE_EQUAL(h.Aion({"start", "timer_signal", "ql-1", "--input", waiting}).exit_code, 0);

  auto unknown_query = h.Aion({"query", "ql-1", "status", "--args", R"({"x":1})"});
  BOOST_CHECK_EQUAL(unknown_query.exit_code, 1);
  BOOST_CHECK_MESSAGE(Contains(unknown_query.err, "error unknown_query: "), unknown_query.err);
  auto unknown_json = h.Aion({"--json", "query", "ql-1", "status"});
  BOOST_CHECK_EQUAL(unknown_json.exit_code, 1);
  BOOST_CHECK_EQUAL(ParseJsonOrFail(unknown_json.out)["error"]["code"], "unknown_query");
  auto no_such = h.Aion({"query", "ql-nobody", "status"});
  BOOST_CHECK_EQUAL(no_such.exit_code, 1);
  BOOST_CHECK_MESSAGE(Contains(no_such.err, "not_found"), no_such.err);
  BOOST_CHECK_EQUAL(h.Aion({"query", "ql-1", "bad name"}).exit_code, 2);
  BOOST_CHECK_EQUAL(h.Aion({"query", "ql-1", "status", "--args", "{x"}).exit_code, 2);

  // signal-with-start: starts the run and delivers the signal in one commit.
  auto sws = h.Aion({"signal-with-start", "timer_signal", "sws-1", "go", "--input",
                     R"({"sleep_ms":0,"signal":"go"})", "--signal-input", R"({"by":"cli"})",
                     "--request-id", "sws-r1"});
  BOOST_REQUIRE_MESSAGE(sws.exit_code == 0, sws.out << sws.err);
  BOOST_CHECK_MESSAGE(Contains(sws.out, "signaled sws-1 run "), sws.out);
  auto result = h.Aion({"--json", "result", "sws-1", "--timeout", "20s"});
  BOOST_REQUIRE_EQUAL(result.exit_code, 0);
  json r = ParseJsonOrFail(result.out);
  BOOST_CHECK_EQUAL(r["output"]["signal"]["by"], "cli");
  auto sws_again = h.Aion({"signal-with-start", "timer_signal", "sws-1", "go", "--input",
                           R"({"sleep_ms":0,"signal":"go"})", "--signal-input", R"({"by":"cli"})",
                           "--request-id", "sws-r1"});
  BOOST_CHECK_EQUAL(sws_again.exit_code, 0);
  BOOST_CHECK_MESSAGE(Contains(sws_again.out, "duplicate"), sws_again.out);
  auto sws_reject =
      h.Aion({"signal-with-start", "timer_signal", "sws-1", "go", "--id-reuse", "reject"});
  BOOST_CHECK_EQUAL(sws_reject.exit_code, 1);
  BOOST_CHECK_MESSAGE(Contains(sws_reject.err, "already_started"), sws_reject.err);
  BOOST_CHECK_EQUAL(h.Aion({"signal-with-start", "timer_signal", "sws-2", "a.b"}).exit_code, 2);

  // --id-reuse on start: the closed sws-1 completed.
  auto reject = h.Aion({"start", "noop", "sws-1", "--id-reuse", "reject"});
  BOOST_CHECK_EQUAL(reject.exit_code, 1);
  BOOST_CHECK_MESSAGE(Contains(reject.err, "already_started"), reject.err);
  auto failed_only = h.Aion({"--json", "start", "noop", "sws-1", "--id-reuse", "failed-only"});
  BOOST_CHECK_EQUAL(failed_only.exit_code, 1);
  BOOST_CHECK_EQUAL(ParseJsonOrFail(failed_only.out)["error"]["code"], "already_started");
  BOOST_CHECK_EQUAL(h.Aion({"start", "noop", "sws-1", "--id-reuse", "sometimes"}).exit_code, 2);
  auto allowed = h.Aion({"start", "noop", "sws-1", "--id-reuse", "allow", "--wait"});
  BOOST_CHECK_EQUAL(allowed.exit_code, 0);

  // list: one worker owns all 16 partitions.
  auto all = h.Aion({"--json", "list"});
  BOOST_REQUIRE_MESSAGE(all.exit_code == 0, all.out << all.err);
  json listed = ParseJsonOrFail(all.out);
  BOOST_CHECK_EQUAL(listed["workers"], 1);
  BOOST_CHECK_EQUAL(listed["partitions"].size(), 16u);
  BOOST_CHECK_EQUAL(listed["aion_version"], std::string(aion::Version()));
  std::vector<std::string> ids;
  for (const auto& w : listed["workflows"]) ids.push_back(w["workflow_id"]);
  BOOST_CHECK((ids == std::vector<std::string>{"ql-1", "sws-1"}));  // sorted by id
  auto running = h.Aion({"list", "--status", "running", "--since", "1h"});
  BOOST_REQUIRE_EQUAL(running.exit_code, 0);
  const auto lines = Lines(running.out);
  BOOST_REQUIRE_EQUAL(lines.size(), 2u);  // header + ql-1
  BOOST_CHECK_MESSAGE(lines[0].rfind("WORKFLOW_ID", 0) == 0, lines[0]);
  BOOST_CHECK_MESSAGE(lines[1].rfind("ql-1", 0) == 0 && Contains(lines[1], "running"), lines[1]);
  BOOST_CHECK_MESSAGE(
      Contains(running.err, "1 workflow(s) from 1 worker(s) (aion " + std::string(aion::Version()) +
                                "), 16 partition(s)"),
      running.err);
  // Every WorkflowStarted names the version of the worker that recorded it.
  const wire::HistoryReply ql = h.History("ql-1");
  BOOST_REQUIRE(ql.events_size() > 0);
  BOOST_CHECK_EQUAL(ql.events(0).workflow_started().aion_version(), std::string(aion::Version()));
  auto ql_text = h.Aion({"history", "ql-1"});
  BOOST_CHECK_MESSAGE(Contains(ql_text.out, "aion_version=" + std::string(aion::Version())),
                      ql_text.out);
  auto none = h.Aion({"--json", "list", "--type", "order"});
  BOOST_REQUIRE_EQUAL(none.exit_code, 0);
  BOOST_CHECK(ParseJsonOrFail(none.out).value("workflows", json::array()).empty());
  auto limited = h.Aion({"--json", "list", "--limit", "1"});
  BOOST_REQUIRE_EQUAL(limited.exit_code, 0);
  json lj = ParseJsonOrFail(limited.out);
  BOOST_CHECK_EQUAL(lj["workflows"].size(), 1u);
  BOOST_CHECK_EQUAL(lj["more"], true);
  BOOST_CHECK_EQUAL(h.Aion({"list", "--status", "bogus"}).exit_code, 2);
  BOOST_CHECK_EQUAL(h.Aion({"list", "--since", "yesterday"}).exit_code, 2);
  Status stopped = h.worker().Terminate();
  BOOST_CHECK_MESSAGE(stopped.ok(), stopped.ToString());
  // Nobody answers list now: NATS says no responders (exit 3).
  auto nobody = h.Aion({"list"});
  BOOST_CHECK_EQUAL(nobody.exit_code, 3);
}

// The worker runs local activities on its pool and hands remote ones to a
// task queue: here the test is the activity worker of queue "echo", pulling
// JSON tasks from AION_TASKS and answering on the subjects each task names.
BOOST_AUTO_TEST_CASE(worker_runs_local_activities_and_remote_ones_through_a_task_queue) {
  WorkerHarness h;
  // Local: three echo calls, then the signal.
  BOOST_REQUIRE_EQUAL(
      h.Aion({"start", "steps_signal", "local-1", "--input", R"({"steps":3})"}).exit_code, 0);
  BOOST_REQUIRE_EQUAL(h.Aion({"signal", "local-1", "approve", "--input", R"("ana")"}).exit_code, 0);
  auto local = h.Aion({"--json", "result", "local-1", "--timeout", "20s"});
  BOOST_REQUIRE_MESSAGE(local.exit_code == 0, local.out << local.err);
  BOOST_CHECK_EQUAL(ParseJsonOrFail(local.out)["output"],
                    json::parse(R"({"steps":3,"approved_by":"ana"})"));

  // Remote: every step is a task on aion.task.echo.
  BOOST_REQUIRE(bus::EnsureTaskConsumer(h.client(), h.subjects(), "echo").ok());
  natsSubscription* sub = nullptr;
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = "AION_TASKS";
  so.Consumer = "task-echo";
  jsErrCode jerr = static_cast<jsErrCode>(0);
  BOOST_REQUIRE(js_PullSubscribe(&sub, h.client().js(), "aion.task.echo", "task-echo", nullptr, &so,
                                 &jerr) == NATS_OK);
  std::unique_ptr<natsSubscription, decltype(&natsSubscription_Destroy)> owned(
      sub, &natsSubscription_Destroy);
  BOOST_REQUIRE_EQUAL(
      h.Aion({"start", "steps_signal", "remote-1", "--input", R"({"steps":2,"remote":true})"})
          .exit_code,
      0);
  for (int step = 0; step < 2; ++step) {
    natsMsgList list{};
    BOOST_REQUIRE_MESSAGE(
        natsSubscription_Fetch(&list, sub, 1, 20000, &jerr) == NATS_OK && list.Count == 1,
        "no task for step " << step);
    const json task = ParseJsonOrFail(Body(list.Msgs[0]));
    BOOST_CHECK_EQUAL(task["workflow_id"], "remote-1");
    BOOST_CHECK_EQUAL(task["activity_type"], "echo");
    BOOST_CHECK_EQUAL(task["input"], json({{"step", step}}));
    if (step == 0) {
      auto described = h.Aion({"describe", "remote-1"});
      BOOST_CHECK_MESSAGE(Contains(described.out, "echo attempt 1 started on echo"), described.out);
      const json beat = ParseJsonOrFail(Request(h.client(), task["heartbeat_subject"],
                                                json{{"run_id", task["run_id"]},
                                                     {"activity_id", task["activity_id"]},
                                                     {"attempt", task["attempt"]},
                                                     {"details", "half way"}}
                                                    .dump(),
                                                /*json=*/true));
      BOOST_CHECK_MESSAGE(!beat.contains("error") && !beat.value("cancel_requested", false),
                          beat.dump());
    }
    bus::Headers headers = kJsonHeaders;
    headers["Nats-Msg-Id"] = "result:" + task["activity_id"].get<std::string>();
    JsPublish(h.client(), task["result_subject"],
              json{{"run_id", task["run_id"]},
                   {"activity_id", task["activity_id"]},
                   {"attempt", task["attempt"]},
                   {"output", task["input"]}}
                  .dump(),
              headers);
    natsMsg_Ack(list.Msgs[0], nullptr);
    natsMsgList_Destroy(&list);
  }
  BOOST_REQUIRE_EQUAL(h.Aion({"signal", "remote-1", "approve", "--input", R"("bo")"}).exit_code, 0);
  auto remote = h.Aion({"--json", "result", "remote-1", "--timeout", "20s"});
  BOOST_REQUIRE_MESSAGE(remote.exit_code == 0, remote.out << remote.err);
  BOOST_CHECK_EQUAL(ParseJsonOrFail(remote.out)["output"],
                    json::parse(R"({"steps":2,"approved_by":"bo"})"));
  BOOST_CHECK(WaitFor([&] { return StreamCount(h.client(), "AION_TASKS") == 0u; }));
  BOOST_CHECK_EQUAL(StreamCount(h.client(), std::string(bus::kDlqStream)), 0u);
  Status stopped = h.worker().Terminate();
  BOOST_CHECK_MESSAGE(stopped.ok(), stopped.ToString());
}

BOOST_AUTO_TEST_CASE(raw_json_start_signal_result) {
  WorkerHarness h;
  const std::string id = "json-1";
  NatsCollector replies(h.client(), "_INBOX.json-e2e.>");
  auto with_reply = [](const std::string& to) {
    bus::Headers headers = kJsonHeaders;
    headers["Aion-Reply-To"] = "_INBOX.json-e2e." + to;
    return headers;
  };
  auto next_reply = [&](const std::string& to) {
    auto msg = replies.Next(20s);
    BOOST_REQUIRE_MESSAGE(msg != nullptr, "no reply on _INBOX.json-e2e." << to);
    BOOST_CHECK_EQUAL(std::string(natsMsg_GetSubject(msg.get())), "_INBOX.json-e2e." + to);
    const char* type = nullptr;
    BOOST_CHECK(natsMsgHeader_Get(msg.get(), "Content-Type", &type) == NATS_OK &&
                std::string(type) == "application/json");
    return ParseJsonOrFail(Body(msg.get()));
  };

  const std::string start =
      R"({"workflow_type":"timer_signal","input":{"sleep_ms":300,"signal":"go"},"request_id":"r-1"})";
  JsPublish(h.client(), "aion.wf." + id + ".start", start, with_reply("start"));
  json started = next_reply("start");
  BOOST_CHECK_MESSAGE(!started.contains("error"), started.dump());
  BOOST_CHECK_EQUAL(started["workflow_id"], id);
  const std::string run_id = started.value("run_id", std::string());
  BOOST_CHECK(!run_id.empty());

  // The same request again: a duplicate, nothing new.
  JsPublish(h.client(), "aion.wf." + id + ".start", start, with_reply("start-again"));
  json dup = next_reply("start-again");
  BOOST_CHECK_MESSAGE(!dup.contains("error"), dup.dump());
  BOOST_CHECK_EQUAL(dup.value("duplicate", false), true);
  // Another request to start the running id: already_started.
  JsPublish(h.client(), "aion.wf." + id + ".start",
            R"({"workflow_type":"timer_signal","input":{"sleep_ms":1},"request_id":"r-2"})",
            with_reply("start-other"));
  json other = next_reply("start-other");
  BOOST_CHECK_EQUAL(other["error"]["code"], "already_started");

  JsPublish(h.client(), "aion.wf." + id + ".signal",
            R"({"name":"go","input":{"by":"ana"},"request_id":"r-3"})", with_reply("signal"));
  json signaled = next_reply("signal");
  BOOST_CHECK_MESSAGE(!signaled.contains("error"), signaled.dump());
  BOOST_CHECK_EQUAL(signaled.value("run_id", std::string()), run_id);

  const std::string body = Request(h.client(), "aion.req." + id + ".result",
                                   R"({"timeout_ms":20000})", /*json=*/true, 30s);
  json result = ParseJsonOrFail(body);
  BOOST_CHECK_MESSAGE(!result.contains("error"), body);
  BOOST_CHECK_EQUAL(result["status"], "completed");
  BOOST_CHECK_EQUAL(result["output"], json::parse(R"({"slept_ms":300,"signal":{"by":"ana"}})"));
  BOOST_CHECK_EQUAL(result.value("run_id", std::string()), run_id);

  // A JSON describe and a JSON request for an unknown id answer in JSON too.
  json described = ParseJsonOrFail(Request(h.client(), "aion.req." + id + ".describe", "{}", true));
  BOOST_CHECK_EQUAL(described["status"], "completed");
  BOOST_CHECK_EQUAL(JsonUint(described["history_length"]), 5u);
  json unknown = ParseJsonOrFail(Request(h.client(), "aion.req.json-unknown.result", "{}", true));
  BOOST_CHECK_EQUAL(unknown["error"]["code"], "not_found");

  // One start, one signal, whatever order the signal and the timer took.
  const wire::HistoryReply hist = h.History(id);
  BOOST_REQUIRE_EQUAL(hist.events_size(), 5);
  std::multiset<std::string> names;
  for (int i = 0; i < hist.events_size(); ++i) {
    BOOST_CHECK_EQUAL(hist.events(i).seq(), static_cast<std::uint64_t>(i + 1));
    names.insert(EventName(hist.events(i)));
  }
  BOOST_CHECK(names ==
              std::multiset<std::string>(kTimerThenSignal.begin(), kTimerThenSignal.end()));
  BOOST_CHECK_EQUAL(EventName(hist.events(0)), "WorkflowStarted");
  BOOST_CHECK_EQUAL(hist.events(0).workflow_started().request_id(), "r-1");
  BOOST_CHECK_EQUAL(EventName(hist.events(4)), "WorkflowCompleted");
  BOOST_CHECK_EQUAL(StreamCount(h.client(), std::string(bus::kDlqStream)), 0u);

  BOOST_CHECK(WaitFor([&] {
    std::map<std::string, std::uint64_t> per;
    StreamCount(h.client(), std::string(bus::kEventsStream), "aion.evt.>", &per);
    return per["aion.evt.timer_signal." + id + ".completed"] == 1;
  }));
  std::map<std::string, std::uint64_t> per;
  BOOST_CHECK_EQUAL(StreamCount(h.client(), std::string(bus::kEventsStream), "aion.evt.>", &per),
                    2u);
  BOOST_CHECK_EQUAL(per["aion.evt.timer_signal." + id + ".started"], 1u);

  Status stopped = h.worker().Terminate();
  BOOST_CHECK_MESSAGE(stopped.ok(), stopped.ToString());
}

// Many `result` requests waiting at once (DESIGN §5: answered when the run
// closes, or deadline_exceeded after timeout_ms): the short waits time out,
// not early, while the others stay pending and are answered when their run
// completes. Under ASan this also checks the worker's deadline bookkeeping.
BOOST_AUTO_TEST_CASE(concurrent_result_waits_answer_or_time_out) {
  WorkerHarness h;
  constexpr int kRuns = 24;
  NatsCollector replies(h.client(), "_INBOX.results.>");
  for (int i = 0; i < kRuns; ++i) {
    bus::Headers headers = kJsonHeaders;
    headers["Aion-Reply-To"] = "_INBOX.results.start." + std::to_string(i);
    JsPublish(h.client(), "aion.wf.wait-" + std::to_string(i) + ".start",
              R"({"workflow_type":"timer_signal","input":{"sleep_ms":10,"signal":"go"}})", headers);
  }
  for (int i = 0; i < kRuns; ++i) {
    auto msg = replies.Next(20s);
    BOOST_REQUIRE_MESSAGE(msg != nullptr, "start " << i << " not answered");
    BOOST_REQUIRE_MESSAGE(!json::parse(Body(msg.get())).contains("error"), Body(msg.get()));
  }
  auto ask_result = [&](int i, bool shortly, std::uint32_t timeout_ms) {
    wire::ResultRequest req;
    req.set_timeout_ms(timeout_ms);
    const std::string subject = "aion.req.wait-" + std::to_string(i) + ".result";
    const std::string inbox =
        "_INBOX.results." + std::string(shortly ? "short." : "long.") + std::to_string(i);
    const std::string body = req.SerializeAsString();
    BOOST_REQUIRE(natsConnection_PublishRequest(h.client().nc(), subject.c_str(), inbox.c_str(),
                                                body.data(),
                                                static_cast<int>(body.size())) == NATS_OK);
  };
  // Round i: a long wait on run i, then a short one (150 ms) that must time
  // out, and not early; meanwhile all earlier long waits stay pending.
  for (int i = 0; i < kRuns; ++i) {
    ask_result(i, /*shortly=*/false, 60000);
    const auto sent_at = SteadyClock::now();
    ask_result(i, /*shortly=*/true, 150);
    auto msg = replies.Next(20s);
    BOOST_REQUIRE_MESSAGE(msg != nullptr, "the short wait of round " << i << " was not answered");
    const auto elapsed = SteadyClock::now() - sent_at;
    const std::string subject = natsMsg_GetSubject(msg.get());
    BOOST_REQUIRE_MESSAGE(
        subject == "_INBOX.results.short." + std::to_string(i),
        "round " << i << ": unexpected answer on " << subject << ": " << Body(msg.get()));
    wire::ResultReply r;
    BOOST_REQUIRE(r.ParseFromString(Body(msg.get())));
    BOOST_CHECK_EQUAL(r.error().code(), "deadline_exceeded");
    BOOST_CHECK_MESSAGE(elapsed >= 130ms, "round " << i << ": timed out early");
  }
  for (int i = 0; i < kRuns; ++i) {
    JsPublish(h.client(), "aion.wf.wait-" + std::to_string(i) + ".signal",
              R"({"name":"go","input":)" + std::to_string(i) + "}", kJsonHeaders);
  }
  std::set<int> completed;
  while (static_cast<int>(completed.size()) < kRuns) {
    auto msg = replies.Next(20s);
    BOOST_REQUIRE_MESSAGE(msg != nullptr, "only " << completed.size() << " long waits answered");
    const std::string subject = natsMsg_GetSubject(msg.get());
    BOOST_REQUIRE_MESSAGE(subject.rfind("_INBOX.results.long.", 0) == 0, subject);
    const int i = std::stoi(subject.substr(subject.rfind('.') + 1));
    wire::ResultReply r;
    BOOST_REQUIRE(r.ParseFromString(Body(msg.get())));
    BOOST_CHECK_MESSAGE(!r.has_error(), r.error().code() << " " << r.error().message());
    BOOST_CHECK_EQUAL(r.status(), "completed");
    BOOST_CHECK_EQUAL(bus::JsonFromValue(r.output()), json({{"slept_ms", 10}, {"signal", i}}));
    BOOST_CHECK_MESSAGE(completed.insert(i).second, "long wait " << i << " answered twice");
  }
  Status stopped = h.worker().Terminate();
  BOOST_CHECK_MESSAGE(stopped.ok(), stopped.ToString());
}

}  // namespace
}  // namespace aion::testing
