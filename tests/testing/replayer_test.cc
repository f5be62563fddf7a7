// The replayer on a recorded production-style history (data/order_history.json,
// saved with `aion --json history` from an aion-worker --dev running `order`
// with a hold timer, the approve signal and local activities): the unchanged
// reference code passes, a deliberately changed copy is caught with the exact
// seq, recorded and issued command; malformed input is refused clearly.
#define BOOST_TEST_MODULE replayer_test
#include "aion/testing/replayer.h"

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <fstream>
#include <sstream>

#include "aion/examples/reference_workflows.h"

using namespace aion;
using namespace std::chrono_literals;
using aion::testing::ParseHistories;
using aion::testing::ParseHistoryJson;
using aion::testing::Replayer;
using aion::testing::ReplayReport;

namespace {

const std::string kGolden = std::string(AION_TESTING_DATA_DIR) + "/order_history.json";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// `order` as a careless change would leave it: the charge step is gone, so
// after the reservation the code starts the hold timer where history has the
// charge scheduled.
Task<Json> OrderWithoutCharge(Context& ctx, Json order) {
  ActivityOptions options;
  options.task_queue = order.value("task_queue", std::string());
  options.start_to_close = 10s;
  options.retry.initial_interval = 200ms;
  options.retry.maximum_attempts = 5;
  auto reserving = ctx.activity<Json>("reserve", order, options);
  Json hold = co_await reserving;
  auto pause = ctx.sleep(std::chrono::milliseconds(order.value("hold_ms", std::int64_t{0})));
  co_await pause;
  auto approval = co_await ctx.signal<Json>("approve").within(60s);
  const Json parcel{{"reservation_id", hold["reservation_id"]}, {"sku", order["sku"]}};
  auto shipping = ctx.activity<Json>("ship", parcel, options);
  Json shipment = co_await shipping;
  co_return Json{
      {"status", "shipped"}, {"approved_by", approval.value_or(nullptr)}, {"shipment", shipment}};
}

struct Fixture {
  Fixture() { BOOST_REQUIRE(examples::RegisterReferenceWorkflows(reference).ok()); }
  WorkflowRegistry reference;
};

ReplayReport ReplayOne(const WorkflowRegistry& registry, const std::string& text) {
  auto histories = ParseHistories(text);
  BOOST_REQUIRE_MESSAGE(histories.ok(), histories.status().ToString());
  BOOST_REQUIRE_EQUAL(histories->size(), 1u);
  return Replayer(registry).Replay(histories->front());
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(replayer, Fixture)

BOOST_AUTO_TEST_CASE(the_golden_history_is_what_the_test_expects) {
  auto h = ParseHistoryJson(ReadFile(kGolden));
  BOOST_REQUIRE_MESSAGE(h.ok(), h.status().ToString());
  BOOST_TEST(h->events.front().workflow_started().workflow_type() == "order");
  bool timer = false, signal = false, activity = false;
  for (const auto& e : h->events) {
    timer |= e.has_timer_fired();
    signal |= e.has_signal_received();
    activity |= e.has_activity_completed();
  }
  BOOST_TEST(timer);
  BOOST_TEST(signal);
  BOOST_TEST(activity);
  BOOST_TEST(h->events.back().has_workflow_completed());
  // Payloads come back as the JSON the code saw.
  auto input = ParseJsonPayload(h->events.front().workflow_started().input());
  BOOST_REQUIRE(input.ok());
  BOOST_TEST((*input)["sku"] == "A1");
}

BOOST_AUTO_TEST_CASE(the_unchanged_code_replays_the_recorded_history) {
  auto reports = Replayer(reference).ReplayFile(kGolden);
  BOOST_REQUIRE_MESSAGE(reports.ok(), reports.status().ToString());
  BOOST_REQUIRE_EQUAL(reports->size(), 1u);
  const ReplayReport& r = reports->front();
  BOOST_TEST(r.ok(), aion::testing::FormatReport(r));
  BOOST_TEST(r.status.code() == StatusCode::kOk);
  BOOST_TEST(r.seq == 0u);
}

BOOST_AUTO_TEST_CASE(a_changed_workflow_is_caught_with_seq_recorded_and_issued) {
  WorkflowRegistry changed;
  BOOST_REQUIRE(changed.workflow("order", &OrderWithoutCharge).ok());
  auto reports = Replayer(changed).ReplayFile(kGolden);
  BOOST_REQUIRE(reports.ok());
  BOOST_REQUIRE_EQUAL(reports->size(), 1u);
  const ReplayReport& r = reports->front();
  BOOST_TEST(r.status.code() == StatusCode::kNondeterminism);
  BOOST_TEST(r.seq == 5u);
  BOOST_TEST(r.recorded == "ActivityScheduled(id=2, type=charge) after seq 4");
  // The hold timer: 200 ms after the reservation completed (seq 4).
  BOOST_TEST(r.issued == "TimerStarted(id=#1, fire_at_us=1796331161852305) after seq 4");
  BOOST_TEST(r.run_id == "2886ac2edfb75ad9e55f8bc65207adbd");
  BOOST_TEST(aion::testing::FormatReport(r).find(
                 ": run 2886ac2edfb75ad9e55f8bc65207adbd: nondeterminism at seq 5: recorded "
                 "ActivityScheduled(id=2, type=charge) after seq 4; issued TimerStarted(") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(several_histories_in_one_file_as_lines_or_an_array) {
  const std::string one = ReadFile(kGolden);
  std::string line = one.substr(0, one.find_last_not_of("\n") + 1);
  const std::string no_code =
      R"({"events":[{"seq":"1","run_id":"r1","workflow_started":{"workflow_type":"nowhere","input":{"a":1},"code_version":"1"}}]})";
  for (const std::string& text : {line + "\n\n" + line + "\n" + no_code + "\n",
                                  "[" + line + "," + line + "," + no_code + "]"}) {
    auto histories = ParseHistories(text);
    BOOST_REQUIRE_MESSAGE(histories.ok(), histories.status().ToString());
    auto reports = Replayer(reference).ReplayAll(*histories);
    BOOST_REQUIRE_EQUAL(reports.size(), 3u);
    BOOST_TEST(reports[0].ok());
    BOOST_TEST(reports[1].ok());
    BOOST_TEST(reports[2].status.code() == StatusCode::kUnknownWorkflowType);
  }
}

BOOST_AUTO_TEST_CASE(an_open_history_replays_up_to_its_end) {
  // The first four events: the reservation done, the charge not yet scheduled.
  auto h = ParseHistoryJson(ReadFile(kGolden));
  BOOST_REQUIRE(h.ok());
  h->events.resize(4);
  BOOST_TEST(Replayer(reference).Replay(*h).ok());
  WorkflowRegistry changed;
  BOOST_REQUIRE(changed.workflow("order", &OrderWithoutCharge).ok());
  BOOST_TEST(Replayer(changed).Replay(*h).ok());  // the change shows only later
}

BOOST_AUTO_TEST_CASE(malformed_input_is_refused_with_the_reason) {
  struct Case {
    std::string text;
    std::string says;
  };
  const std::string started =
      R"({"seq":"1","run_id":"r","workflow_started":{"workflow_type":"order"}})";
  const std::vector<Case> cases = {
      {"", "no history"},
      {"{\"events\":[", "line 1: not valid JSON"},
      {"42", "a history is a JSON object"},
      {"{}", "no \"events\" array"},
      {R"({"events":[]})", "\"events\" is empty"},
      {R"({"events":[], "extra":1})", "unknown key 'extra'"},
      {R"({"workflow_id":"has space","events":[)" + started + "]}", "invalid character"},
      {R"({"events":[7]})", "event 1: not a JSON object"},
      {R"({"events":[{"seq":"1","run_id":"r"}]})", "event 1: has no event attributes"},
      {R"({"events":[{"seq":"1","bogus":2,"workflow_started":{}}]})", "event 1:"},
      {R"({"events":[{"seq":"1","timer_fired":{"timer_id":"#1"}}]})", "not WorkflowStarted"},
      {R"({"events":[)" + started + R"(,{"seq":"3","timer_fired":{}}]})",
       "event 2: has seq 3, expected 2"},
      {R"({"events":[{"seq":"x","workflow_started":{}}]})", "event 1:"},
      {"[]", "no history"},
      {"[{\"events\":[" + started + "]}, 5]", "entry 2: a history is a JSON object"},
  };
  for (const Case& c : cases) {
    auto r = ParseHistories(c.text);
    BOOST_TEST_CONTEXT("input " << c.text) {
      BOOST_TEST(r.status().code() == StatusCode::kInvalidArgument);
      BOOST_TEST(r.status().message().find(c.says) != std::string::npos, r.status().message());
    }
  }
  BOOST_TEST(ParseHistoryJson("not json").status().code() == StatusCode::kInvalidArgument);
  auto missing = Replayer(reference).ReplayFile("/nonexistent/history.json");
  BOOST_TEST(missing.status().code() == StatusCode::kNotFound);
}

BOOST_AUTO_TEST_SUITE_END()
