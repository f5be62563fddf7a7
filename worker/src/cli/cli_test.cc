// The CLI's offline behaviour: flag parsing, local validation (exit code 2
// before anything is sent) and the rendering of wire replies.
#define BOOST_TEST_MODULE cli
#include <boost/test/unit_test.hpp>
#include <sstream>

#include "args.h"
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

BOOST_AUTO_TEST_CASE(usage_errors_exit_2) {
  std::optional<int> early;
  Parse({"start", "noop"}, &early);  // missing workflow id
  BOOST_CHECK(early == kExitUsage);
  Parse({"frobnicate"}, &early);
  BOOST_CHECK(early == kExitUsage);
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

}  // namespace
}  // namespace aion::cli
