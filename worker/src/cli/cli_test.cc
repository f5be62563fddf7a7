// The CLI's offline behaviour: flag parsing, local validation (exit code 2
// before anything is sent) and the rendering of wire replies.
#define BOOST_TEST_MODULE cli
#include <boost/test/unit_test.hpp>
#include <iostream>
#include <sstream>

#include "aion/bus/codec.h"
#include "aion/bus/nats_mappings.h"
#include "aion/bus/nats_server_process.h"
#include "aion/engine/version.h"
#include "args.h"
#include "commands.h"
#include "render.h"

namespace aion::cli {
namespace {

// Parses a command line given as words (argv[0] added).
Invocation Parse(std::vector<std::string> words, std::optional<int>* early = nullptr) {
  words.insert(words.begin(), "aion");
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  Invocation inv;
  auto rc = ParseCommandLine(static_cast<int>(argv.size()), argv.data(), inv);
  if (early != nullptr) *early = rc;
  return inv;
}

BOOST_AUTO_TEST_CASE(durations_take_a_unit_and_stay_positive) {
  BOOST_CHECK_EQUAL(ParseDuration("500ms")->count(), 500);
  BOOST_CHECK_EQUAL(ParseDuration("30s")->count(), 30000);
  BOOST_CHECK_EQUAL(ParseDuration("2m")->count(), 120000);
  BOOST_CHECK_EQUAL(ParseDuration("1h")->count(), 3600000);
  BOOST_CHECK_EQUAL(ParseDuration("7")->count(), 7000);
  for (const char* bad : {"", "0s", "-1s", "1.5s", "5x", "s", "25h"}) {
    BOOST_CHECK_MESSAGE(!ParseDuration(bad).ok(), bad);
  }
}

BOOST_AUTO_TEST_CASE(start_flags_parse_and_validate) {
  std::optional<int> early;
  Invocation inv = Parse({"start", "noop", "order-1", "--input", R"({"a":[1,2]})", "--wait",
                          "--request-id", "r-1", "--json"},
                         &early);
  BOOST_REQUIRE(!early);
  BOOST_REQUIRE(Validate(inv).ok());
  BOOST_CHECK(inv.command == Command::kStart);
  BOOST_CHECK(inv.json);  // a global flag after the command still counts
  BOOST_CHECK(inv.wait);
  BOOST_CHECK_EQUAL(inv.request_id, "r-1");
  BOOST_CHECK_EQUAL(inv.input, Json::parse(R"({"a":[1,2]})"));
  BOOST_CHECK_EQUAL(inv.timeout.count(), 30000);
}

BOOST_AUTO_TEST_CASE(bad_input_is_refused_locally) {
  auto invalid = [](std::vector<std::string> words) {
    Invocation inv = Parse(std::move(words));
    Status s = Validate(inv);
    return s.code() == StatusCode::kInvalidArgument;
  };
  BOOST_CHECK(invalid({"start", "noop", "bad id"}));
  BOOST_CHECK(invalid({"start", "no such", "id-1"}));
  BOOST_CHECK(invalid({"start", "noop", "id-1", "--input", "{oops"}));
  BOOST_CHECK(invalid({"signal", "id-1", "a.b"}));
  BOOST_CHECK(invalid({"describe", std::string(129, 'x')}));
  BOOST_CHECK(invalid({"result", "id-1", "--timeout", "soon"}));
  BOOST_CHECK(invalid({"pub", "aion.wf.x.start", "[1]"}));  // must be an object
  BOOST_CHECK(invalid({"--prefix", "a b", "describe", "id-1"}));
}

BOOST_AUTO_TEST_CASE(run_timeouts_may_be_long_and_take_days) {
  Invocation inv = Parse({"start", "noop", "id-1", "--run-timeout", "1500ms"});
  BOOST_REQUIRE(Validate(inv).ok());
  BOOST_CHECK_EQUAL(inv.run_timeout.count(), 1500);
  inv = Parse({"start", "noop", "id-1", "--run-timeout", "7d"});
  BOOST_REQUIRE(Validate(inv).ok());
  BOOST_CHECK_EQUAL(inv.run_timeout.count(), 7LL * 86'400'000);
  inv = Parse({"start", "noop", "id-1"});
  BOOST_REQUIRE(Validate(inv).ok());
  BOOST_CHECK_EQUAL(inv.run_timeout.count(), 0);  // none
  for (const char* bad : {"0s", "soon", "-5m", "40000d"}) {
    Invocation b = Parse({"start", "noop", "id-1", "--run-timeout", bad});
    Status st = Validate(b);
    BOOST_CHECK_MESSAGE(st.code() == StatusCode::kInvalidArgument, bad);
    BOOST_CHECK_MESSAGE(st.message().find("--run-timeout") != std::string::npos, st.message());
  }
  // Waits stay capped at 24 h and know no days.
  BOOST_CHECK(!ParseDuration("1d").ok());
}

BOOST_AUTO_TEST_CASE(cancel_and_terminate_parse_and_validate) {
  Invocation inv =
      Parse({"cancel", "order-1", "--reason", "customer asked", "--request-id", "c-1"});
  BOOST_REQUIRE(Validate(inv).ok());
  BOOST_CHECK(inv.command == Command::kCancel);
  BOOST_CHECK_EQUAL(inv.workflow_id, "order-1");
  BOOST_CHECK_EQUAL(inv.reason, "customer asked");
  BOOST_CHECK_EQUAL(inv.request_id, "c-1");
  BOOST_CHECK_EQUAL(inv.timeout.count(), 30000);
  inv = Parse({"terminate", "order-1"});
  BOOST_REQUIRE(Validate(inv).ok());
  BOOST_CHECK(inv.command == Command::kTerminate);
  BOOST_CHECK(inv.reason.empty());
  Invocation bad_id = Parse({"terminate", "bad id"});
  BOOST_CHECK(Validate(bad_id).code() == StatusCode::kInvalidArgument);
  Invocation bad_request = Parse({"cancel", "order-1", "--request-id", "a/b"});
  BOOST_CHECK(Validate(bad_request).code() == StatusCode::kInvalidArgument);
  Invocation long_reason = Parse({"cancel", "order-1", "--reason", std::string(5000, 'r')});
  BOOST_CHECK(Validate(long_reason).code() == StatusCode::kInvalidArgument);
  std::optional<int> early;
  Parse({"cancel"}, &early);  // missing workflow id
  BOOST_CHECK(early == kExitUsage);
}

BOOST_AUTO_TEST_CASE(describe_shows_pending_activities_and_the_cancel_request) {
  wire::DescribeReply d;
  d.set_workflow_id("order-1");
  d.set_status("running");
  d.set_cancel_requested(true);
  d.set_cancel_reason("customer asked");
  auto* a = d.add_pending_activities();
  a->set_activity_id("#1");
  a->set_activity_type("charge");
  a->set_task_queue("payments");
  a->set_attempt(2);
  a->set_state("started");
  a->set_deadline_us(1'700'000'002'000'000);
  a->set_last_heartbeat_us(1'700'000'001'000'000);
  a->mutable_heartbeat_details()->set_number_value(40);
  a->set_last_failure("card declined");
  auto* local = d.add_pending_activities();
  local->set_activity_id("#2");
  local->set_activity_type("echo");
  local->set_attempt(3);
  local->set_state("backing_off");
  local->set_deadline_us(1'700'000'003'000'000);
  std::ostringstream out, err;
  Renderer(false, out, err).Describe(d);
  const std::string text = out.str();
  BOOST_CHECK_MESSAGE(text.find("cancel          requested: customer asked\n") != std::string::npos,
                      text);
  BOOST_CHECK_MESSAGE(text.find("activity        #1 charge attempt 2 started on payments deadline "
                                "2023-11-14T22:13:22.000Z heartbeat 2023-11-14T22:13:21.000Z 40 "
                                "last_failure=card declined\n") != std::string::npos,
                      text);
  BOOST_CHECK_MESSAGE(text.find("#2 echo attempt 3 backing_off (local) retry "
                                "2023-11-14T22:13:23.000Z\n") != std::string::npos,
                      text);
  std::ostringstream jout;
  Renderer(true, jout, err).Describe(d);
  const Json j = Json::parse(jout.str());
  BOOST_CHECK_EQUAL(j["cancel_requested"], true);
  BOOST_CHECK_EQUAL(j["pending_activities"][1]["state"], "backing_off");
  BOOST_CHECK_EQUAL(j["pending_activities"][0]["heartbeat_details"], 40);
}

BOOST_AUTO_TEST_CASE(describe_shows_the_parent_and_pending_children) {
  wire::DescribeReply d;
  d.set_workflow_id("fan-1");
  d.set_status("running");
  d.mutable_parent()->set_workflow_id("root");
  d.mutable_parent()->set_run_id("r1");
  d.mutable_parent()->set_child_ref("c7");
  auto* c = d.add_pending_children();
  c->set_child_ref("c1");
  c->set_workflow_id("fan-1-1");
  c->set_workflow_type("noop");
  c->set_parent_close_policy("abandon");
  std::ostringstream out, err;
  Renderer(false, out, err).Describe(d);
  const std::string text = out.str();
  BOOST_CHECK_MESSAGE(text.find("parent          root run r1 child_ref c7\n") != std::string::npos,
                      text);
  BOOST_CHECK_MESSAGE(
      text.find("child           c1 fan-1-1 noop parent_close=abandon\n") != std::string::npos,
      text);
  std::ostringstream jout;
  Renderer(true, jout, err).Describe(d);
  const Json j = Json::parse(jout.str());
  BOOST_CHECK_EQUAL(j["pending_children"][0]["parent_close_policy"], "abandon");
  BOOST_CHECK_EQUAL(j["parent"]["child_ref"], "c7");
}

BOOST_AUTO_TEST_CASE(a_repeated_cancel_says_nothing_new_happened) {
  wire::IngressReply reply;
  reply.set_workflow_id("order-1");
  reply.set_run_id("r1");
  reply.set_dropped(true);
  std::ostringstream out, err;
  Renderer(false, out, err).Ingress("cancel requested for", reply);
  BOOST_CHECK_EQUAL(out.str(),
                    "cancel requested for order-1 run r1 (already requested: nothing new "
                    "happened)\n");
}

BOOST_AUTO_TEST_CASE(usage_errors_exit_2) {
  std::optional<int> early;
  Parse({"start", "noop"}, &early);  // missing workflow id
  BOOST_CHECK(early == kExitUsage);
  Parse({"frobnicate"}, &early);
  BOOST_CHECK(early == kExitUsage);
}

BOOST_AUTO_TEST_CASE(version_prints_the_project_version_without_a_command) {
  std::ostringstream out;
  std::streambuf* saved = std::cout.rdbuf(out.rdbuf());
  std::optional<int> early;
  Parse({"--version"}, &early);
  std::cout.rdbuf(saved);
  BOOST_CHECK(early == kExitOk);
  BOOST_CHECK_EQUAL(out.str(), "aion " + std::string(Version()) + "\n");
  BOOST_CHECK(!Version().empty());
}

BOOST_AUTO_TEST_CASE(nats_config_prints_the_mappings_of_the_dev_server_config) {
  std::optional<int> early;
  Invocation inv = Parse({"nats-config", "--prefix", "acme.prod", "--partitions", "8"}, &early);
  BOOST_REQUIRE(!early);
  BOOST_REQUIRE(Validate(inv).ok());
  BOOST_CHECK(inv.command == Command::kNatsConfig);
  std::ostringstream out, err;
  BOOST_CHECK_EQUAL(Run(inv, out, err), kExitOk);  // offline: no NATS at the default URL
  BOOST_CHECK_EQUAL(err.str(), "");
  const std::string text = out.str();
  // The same block the dev-mode server runs with (NatsServerConfig).
  bus::NatsServerOptions dev;
  dev.directory = "/nonexistent";
  dev.prefix = "acme.prod";
  dev.partitions = 8;
  const std::string block = bus::NatsMappingsBlock(bus::Subjects("acme.prod"), 8);
  BOOST_CHECK(bus::NatsServerConfig(dev, -1).find(block) != std::string::npos);
  BOOST_CHECK(text.size() > block.size() && text.substr(text.size() - block.size()) == block);
  BOOST_CHECK(block ==
              "mappings = {\n"
              "  \"acme.prod.wf.*.*\": "
              "\"acme.prod.in.{{partition(8,1)}}.{{wildcard(1)}}.{{wildcard(2)}}\"\n"
              "  \"acme.prod.req.*.*\": "
              "\"acme.prod.api.{{partition(8,1)}}.{{wildcard(1)}}.{{wildcard(2)}}\"\n"
              "}\n");
  // Everything before the block is comment lines, one of them saying where it goes.
  std::istringstream head(text.substr(0, text.size() - block.size()));
  for (std::string line; std::getline(head, line);) BOOST_CHECK_MESSAGE(line[0] == '#', line);
  BOOST_CHECK(text.find("top level") != std::string::npos);
  BOOST_CHECK(text.find("inside that account") != std::string::npos);

  Invocation defaults = Parse({"nats-config"});
  BOOST_REQUIRE(Validate(defaults).ok());
  BOOST_CHECK_EQUAL(defaults.partitions, 16u);
  BOOST_CHECK_EQUAL(defaults.prefix, "aion");
  Parse({"nats-config", "--partitions", "0"}, &early);
  BOOST_CHECK(early == kExitUsage);
  Invocation bad_prefix = Parse({"nats-config", "--prefix", "a b"});
  BOOST_CHECK(Validate(bad_prefix).code() == StatusCode::kInvalidArgument);
}

BOOST_AUTO_TEST_CASE(sub_defaults_to_lifecycle_events_without_timeout) {
  Invocation inv = Parse({"--prefix", "acme.aion", "sub"});
  BOOST_REQUIRE(Validate(inv).ok());
  BOOST_CHECK_EQUAL(inv.subject, "acme.aion.evt.>");
  BOOST_CHECK_EQUAL(inv.timeout.count(), 0);
}

history::HistoryEvent TimerStarted() {
  history::HistoryEvent e;
  e.set_seq(2);
  e.set_recorded_at_us(1'700'000'000'123'456);
  e.set_run_id("r1");
  e.set_caused_by(1);
  e.mutable_timer_started()->set_timer_id("t1");
  e.mutable_timer_started()->set_fire_at_us(1'700'000'002'000'000);
  return e;
}

BOOST_AUTO_TEST_CASE(history_lines_are_readable) {
  BOOST_CHECK_EQUAL(FormatTimeUs(1'700'000'000'123'456), "2023-11-14T22:13:20.123Z");
  BOOST_CHECK_EQUAL(FormatTimeUs(0), "-");
  const std::string line = HistoryLine(TimerStarted(), "r1");
  BOOST_CHECK_EQUAL(line,
                    "   2  2023-11-14T22:13:20.123Z  TimerStarted       caused_by=1 timer_id=t1 "
                    "fire_at=2023-11-14T22:13:22.000Z");
  // The run is named when it changes (first event, continue-as-new).
  BOOST_CHECK(HistoryLine(TimerStarted(), "").find(" run=r1 ") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(json_output_inlines_payloads_as_json_values) {
  history::HistoryEvent started;
  started.set_seq(1);
  started.mutable_workflow_started()->set_workflow_type("noop");
  *started.mutable_workflow_started()->mutable_input() = JsonPayload(Json{{"sku", "A1"}});
  std::ostringstream out, err;
  Renderer(true, out, err).History({started, TimerStarted()});
  const Json j = Json::parse(out.str());
  BOOST_CHECK_EQUAL(j["events"][0]["workflow_started"]["input"], Json({{"sku", "A1"}}));
  BOOST_CHECK_EQUAL(j["events"][1]["timer_started"]["timer_id"], "t1");
  BOOST_CHECK_EQUAL(j["events"][1]["seq"], "2");  // proto3 JSON: 64-bit ints are strings
  BOOST_CHECK(err.str().empty());
}

BOOST_AUTO_TEST_CASE(errors_go_to_stderr_or_into_the_json_object) {
  wire::Error e;
  e.set_code("not_found");
  e.set_message("no workflow 'x'");
  std::ostringstream out, err;
  Renderer(false, out, err).ServerError(e);
  BOOST_CHECK(out.str().empty());
  BOOST_CHECK_EQUAL(err.str(), "aion: error not_found: no workflow 'x'\n");
  std::ostringstream jout, jerr;
  Renderer(true, jout, jerr).ServerError(e);
  BOOST_CHECK_EQUAL(Json::parse(jout.str())["error"]["code"], "not_found");
}

BOOST_AUTO_TEST_CASE(query_parses_and_validates) {
  Invocation inv =
      Parse({"query", "order-1", "status", "--args", R"({"v":true})", "--timeout", "2s"});
  BOOST_REQUIRE(Validate(inv).ok());
  BOOST_CHECK(inv.command == Command::kQuery);
  BOOST_CHECK_EQUAL(inv.workflow_id, "order-1");
  BOOST_CHECK_EQUAL(inv.query_name, "status");
  BOOST_CHECK_EQUAL(inv.args, Json::parse(R"({"v":true})"));
  BOOST_CHECK_EQUAL(inv.timeout.count(), 2000);
  inv = Parse({"query", "order-1", "status"});
  BOOST_REQUIRE(Validate(inv).ok());
  BOOST_CHECK_EQUAL(inv.timeout.count(), 5000);  // default
  BOOST_CHECK(inv.args.is_null());
  for (std::vector<std::string> bad : {std::vector<std::string>{"query", "order-1", "a b"},
                                       {"query", "bad id", "status"},
                                       {"query", "order-1", "status", "--args", "{x"},
                                       {"query", "order-1", "status", "--timeout", "61s"}}) {
    Invocation b = Parse(bad);
    BOOST_CHECK(Validate(b).code() == StatusCode::kInvalidArgument);
  }
  std::optional<int> early;
  Parse({"query", "order-1"}, &early);  // missing name
  BOOST_CHECK(early == kExitUsage);
}

BOOST_AUTO_TEST_CASE(signal_with_start_and_id_reuse_parse_and_validate) {
  Invocation inv = Parse({"signal-with-start", "order", "order-9", "approve", "--input",
                          R"({"sku":"A1"})", "--signal-input", R"("ana")", "--request-id", "s-1",
                          "--id-reuse", "failed-only", "--run-timeout", "5m"});
  BOOST_REQUIRE(Validate(inv).ok());
  BOOST_CHECK(inv.command == Command::kSignalWithStart);
  BOOST_CHECK_EQUAL(inv.workflow_type, "order");
  BOOST_CHECK_EQUAL(inv.workflow_id, "order-9");
  BOOST_CHECK_EQUAL(inv.signal_name, "approve");
  BOOST_CHECK_EQUAL(inv.input, Json::parse(R"({"sku":"A1"})"));
  BOOST_CHECK_EQUAL(inv.signal_input, Json("ana"));
  BOOST_CHECK_EQUAL(inv.id_reuse,
                    static_cast<int>(wire::ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY));
  BOOST_CHECK_EQUAL(inv.run_timeout.count(), 300000);
  BOOST_CHECK_EQUAL(inv.timeout.count(), 30000);
  inv = Parse({"start", "noop", "id-1", "--id-reuse", "reject"});
  BOOST_REQUIRE(Validate(inv).ok());
  BOOST_CHECK_EQUAL(inv.id_reuse, static_cast<int>(wire::ID_REUSE_POLICY_REJECT_DUPLICATE));
  inv = Parse({"start", "noop", "id-1"});
  BOOST_REQUIRE(Validate(inv).ok());
  BOOST_CHECK_EQUAL(inv.id_reuse, static_cast<int>(wire::ID_REUSE_POLICY_ALLOW_DUPLICATE));
  for (std::vector<std::string> bad :
       {std::vector<std::string>{"start", "noop", "id-1", "--id-reuse", "never"},
        {"signal-with-start", "order", "order-9", "a.b"},
        {"signal-with-start", "no such", "order-9", "go"},
        {"signal-with-start", "order", "order-9", "go", "--signal-input", "{"},
        {"signal-with-start", "order", "order-9", "go", "--id-reuse", "REJECT"}}) {
    Invocation b = Parse(bad);
    BOOST_CHECK_MESSAGE(Validate(b).code() == StatusCode::kInvalidArgument, bad.back());
  }
}

BOOST_AUTO_TEST_CASE(list_parses_filters_and_times) {
  Invocation inv =
      Parse({"list", "--status", "running,TIMED_OUT", "--type", "order", "--since",
             "2023-11-14T22:13:20Z", "--until", "2023-11-14T23:13:20.5+01:00", "--limit", "7"});
  BOOST_REQUIRE(Validate(inv).ok());
  BOOST_CHECK(inv.command == Command::kList);
  BOOST_CHECK((inv.statuses == std::vector<std::string>{"running", "timed_out"}));
  BOOST_CHECK_EQUAL(inv.workflow_type, "order");
  BOOST_CHECK_EQUAL(inv.started_after_us, 1'700'000'000'000'000);
  BOOST_CHECK_EQUAL(inv.started_before_us, 1'700'000'000'500'000);
  BOOST_CHECK_EQUAL(inv.limit, 7u);
  BOOST_CHECK_EQUAL(inv.timeout.count(), 2000);  // the gather window
  BOOST_CHECK_EQUAL(*ParseTimeArgument("--since", "1h", 10'000'000'000),
                    10'000'000'000 - 3'600'000'000);
  BOOST_CHECK_EQUAL(*ParseTimeArgument("--since", "2d", 1'000'000'000'000),
                    1'000'000'000'000 - 172'800'000'000);
  for (const char* bad : {"2023-11-14", "2023-11-14T22:13:20", "2023-13-14T22:13:20Z",
                          "2023-11-14T22:13:20.Z", "2023-11-14T22:13:20Zjunk", "yesterday", "0s"}) {
    BOOST_CHECK_MESSAGE(ParseTimeArgument("--since", bad, 10'000'000'000).status().code() ==
                            StatusCode::kInvalidArgument,
                        bad);
  }
  for (std::vector<std::string> bad : {std::vector<std::string>{"list", "--status", "runing"},
                                       {"list", "--status", "running,"},
                                       {"list", "--type", "a b"},
                                       {"list", "--limit", "1001"},
                                       {"list", "--since", "1h", "--until", "2h"}}) {
    Invocation b = Parse(bad);
    BOOST_CHECK_MESSAGE(Validate(b).code() == StatusCode::kInvalidArgument, bad.back());
  }
}

BOOST_AUTO_TEST_CASE(query_answers_and_lists_render) {
  wire::QueryReply q;
  bus::ValueFromJson(Json{{"count", 2}}, q.mutable_result());
  std::ostringstream out, err;
  Renderer(false, out, err).Query(q);
  BOOST_CHECK_EQUAL(out.str(), "{\"count\":2}\n");
  std::ostringstream jout;
  Renderer(true, jout, err).Query(q);
  BOOST_CHECK_EQUAL(Json::parse(jout.str())["result"]["count"], 2);

  wire::ListReply merged;
  auto* w = merged.add_workflows();
  w->set_workflow_id("order-1");
  w->set_workflow_type("order");
  w->set_run_id("r1");
  w->set_status("running");
  w->set_start_time_us(1'700'000'000'123'456);
  merged.add_partitions(3);
  merged.set_aion_version("0.1.0,0.2.0");
  std::ostringstream lout, lerr;
  Renderer(false, lout, lerr).List(merged, 1, true);
  BOOST_CHECK_EQUAL(lout.str(),
                    "WORKFLOW_ID  WORKFLOW_TYPE  STATUS            STARTED                   "
                    "CLOSED                    RUN_ID\n"
                    "order-1      order          running           2023-11-14T22:13:20.123Z  -"
                    "                         r1\n");
  BOOST_CHECK_MESSAGE(
      lerr.str().find("1 workflow(s) from 1 worker(s) (aion 0.1.0,0.2.0), 1 partition(s); more") !=
          std::string::npos,
      lerr.str());
  std::ostringstream ljout;
  Renderer(true, ljout, lerr).List(merged, 1, false);
  const Json j = Json::parse(ljout.str());
  BOOST_CHECK_EQUAL(j["workflows"][0]["workflow_id"], "order-1");
  BOOST_CHECK_EQUAL(j["workers"], 1);
  BOOST_CHECK_EQUAL(j["more"], false);
}

BOOST_AUTO_TEST_CASE(continue_as_new_shows_in_history_and_events) {
  history::HistoryEvent can;
  can.set_seq(3);
  can.set_recorded_at_us(1'700'000'000'123'456);
  can.set_run_id("r1");
  can.set_caused_by(2);
  *can.mutable_workflow_continued_as_new()->mutable_input() = JsonPayload(Json{{"n", 1}});
  can.mutable_workflow_continued_as_new()->set_new_run_id("r2");
  BOOST_CHECK_EQUAL(HistoryLine(can, "r1"),
                    "   3  2023-11-14T22:13:20.123Z  WorkflowContinuedAsNew caused_by=2 "
                    "input={\"n\":1} new_run_id=r2");
  wire::LifecycleEvent e;
  e.set_workflow_id("w-1");
  e.set_workflow_type("looper");
  e.set_run_id("r1");
  e.set_event("continued_as_new");
  e.set_seq(3);
  e.set_next_run_id("r2");
  std::ostringstream out, err;
  Renderer(false, out, err)
      .Seen("aion.evt.looper.w-1.continued_as_new", e.SerializeAsString(), false, "aion");
  BOOST_CHECK_MESSAGE(
      out.str().find("continued_as_new looper w-1 run r1 seq 3 next_run=r2") != std::string::npos,
      out.str());
}

}  // namespace
}  // namespace aion::cli
