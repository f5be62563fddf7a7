// The test environment: time skipping, mocked activities, signals, queries
// and history reads, and the errors it passes on from the engine.
#define BOOST_TEST_MODULE test_environment_test
#include "aion/testing/test_environment.h"

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>

#include "aion/engine/history.h"

using namespace aion;
using namespace std::chrono_literals;
using aion::testing::TestEnvironment;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kSlowdown = 10;  // sanitizer builds run the same code much slower
#else
constexpr int kSlowdown = 1;
#endif
constexpr std::chrono::milliseconds kOneSecond{1000 * kSlowdown};
constexpr Timestamp kDayUs = 24LL * 3600 * 1'000'000;

Task<Json> Nap(Context& ctx, Json input) {
  const auto days = std::chrono::hours(24 * input.value("days", 30));
  auto nap = ctx.sleep(days);
  co_await nap;
  co_return Json{{"woke_at_us", ctx.now_us()}};
}

// Charges a card (retrying every hour), then waits up to a week for
// "approve"; query "stage" tells where it is.
Task<Json> Checkout(Context& ctx, Json input) {
  std::string stage = "charging";
  ctx.on_query("stage", [&stage](const Json&) { return Json(stage); });
  ActivityOptions options;
  options.retry.initial_interval = std::chrono::hours(1);
  options.retry.backoff_coefficient = 1.0;
  options.retry.maximum_attempts = 5;
  options.task_queue = input.value("task_queue", std::string());
  auto charging = ctx.activity<Json>("charge", input, options);
  Json charge = co_await charging;
  stage = "awaiting approval";
  auto approval = co_await ctx.signal<Json>("approve").within(std::chrono::hours(24 * 7));
  if (!approval) co_return Json{{"status", "expired"}, {"charge", charge}};
  co_return Json{{"status", "approved"}, {"charge", charge}, {"by", *approval}};
}

Task<Json> WaitForGo(Context& ctx, Json) {
  auto go = ctx.signal<Json>("go");
  Json s = co_await go;
  co_return s;
}

struct Fixture {
  Fixture() {
    BOOST_REQUIRE(workflows.workflow("nap", &Nap).ok());
    BOOST_REQUIRE(workflows.workflow("checkout", &Checkout).ok());
    BOOST_REQUIRE(activities
                      .activity("charge",
                                [](ActivityContext&, const Json&) {
                                  return Json{{"charged_by", "real"}};
                                })
                      .ok());
  }
  WorkflowRegistry workflows;
  ActivityRegistry activities;
};

Json OutputOf(const Result<Outcome>& r) {
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  BOOST_REQUIRE_EQUAL(WorkflowStatusName(r->status), "completed");
  return *ParseJsonPayload(r->output);
}

bool Has(const std::vector<HistoryEvent>& h, HistoryEvent::AttributesCase kind) {
  for (const auto& e : h) {
    if (e.attributes_case() == kind) return true;
  }
  return false;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(test_environment, Fixture)

BOOST_AUTO_TEST_CASE(thirty_day_sleep_completes_within_a_second) {
  TestEnvironment env(workflows);
  const Timestamp start = env.Now();
  const auto wall = std::chrono::steady_clock::now();
  BOOST_REQUIRE(env.Start("nap-1", "nap", Json{{"days", 30}}).ok());
  const Json out = OutputOf(env.AwaitResult("nap-1", kOneSecond));
  const auto took = std::chrono::steady_clock::now() - wall;
  BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(took).count() <
             kOneSecond.count());
  BOOST_TEST(out["woke_at_us"].get<Timestamp>() >= start + 30 * kDayUs);
  BOOST_TEST(env.Now() >= start + 30 * kDayUs);
  auto history = env.History("nap-1");
  BOOST_REQUIRE(history.ok());
  BOOST_TEST(Has(*history, HistoryEvent::kTimerFired));
}

BOOST_AUTO_TEST_CASE(a_mocked_activity_replaces_the_registered_one) {
  TestEnvironment env(workflows, &activities);
  std::atomic<int> calls{0};
  BOOST_REQUIRE(env.MockActivity("charge",
                                 [&calls](ActivityContext&, const Json& in) {
                                   ++calls;
                                   return Json{{"charged_by", "mock"}, {"card", in["card"]}};
                                 })
                    .ok());
  BOOST_REQUIRE(env.Start("c-1", "checkout", Json{{"card", "visa"}}).ok());
  BOOST_REQUIRE(env.Signal("c-1", "approve", "ana").ok());
  const Json out = OutputOf(env.AwaitResult("c-1", kOneSecond));
  BOOST_TEST(calls.load() == 1);
  BOOST_TEST(out["charge"] == (Json{{"charged_by", "mock"}, {"card", "visa"}}));
  BOOST_TEST(out["by"] == "ana");
  // The engine runs now: mocks can no longer change.
  const Status late = env.MockActivity("charge", [](ActivityContext&, const Json&) { return 1; });
  BOOST_TEST(late.code() == StatusCode::kInvalidArgument);
}

BOOST_AUTO_TEST_CASE(a_mock_serves_an_activity_on_a_task_queue) {
  TestEnvironment env(workflows);
  std::atomic<int> calls{0};
  BOOST_REQUIRE(env.MockActivity("charge",
                                 [&calls](ActivityContext& ctx, const Json&) {
                                   ++calls;
                                   return Json{{"activity_id", ctx.activity_id()}};
                                 })
                    .ok());
  BOOST_REQUIRE(env.Start("c-6", "checkout", Json{{"task_queue", "payments"}}).ok());
  BOOST_REQUIRE(env.Signal("c-6", "approve", "di").ok());
  const Json out = OutputOf(env.AwaitResult("c-6", kOneSecond));
  BOOST_TEST(calls.load() == 1);
  BOOST_TEST(out["charge"] == (Json{{"activity_id", "1"}}));
  // An unknown type on a queue fails its attempts like an absent worker's.
  WorkflowRegistry same;
  BOOST_REQUIRE(same.workflow("checkout", &Checkout).ok());
  TestEnvironment bare(same);
  BOOST_REQUIRE(bare.Start("c-7", "checkout", Json{{"task_queue", "payments"}}).ok());
  auto failed = bare.AwaitResult("c-7", kOneSecond);
  BOOST_REQUIRE(failed.ok());
  BOOST_TEST(WorkflowStatusName(failed->status) == "failed");
  BOOST_TEST(failed->failure.find("mock it") != std::string::npos, failed->failure);
}

BOOST_AUTO_TEST_CASE(a_mock_with_a_bad_name_is_refused) {
  TestEnvironment env(workflows);
  auto fn = [](ActivityContext&, const Payload& p) { return p; };
  BOOST_TEST(env.MockActivityFn("bad name", fn).code() == StatusCode::kInvalidArgument);
  BOOST_TEST(env.MockActivityFn("charge", nullptr).code() == StatusCode::kInvalidArgument);
  BOOST_TEST(env.MockActivity("", [](ActivityContext&, const Json& j) { return j; }).code() ==
             StatusCode::kInvalidArgument);
}

BOOST_AUTO_TEST_CASE(retries_of_a_failing_mock_skip_their_backoff) {
  TestEnvironment env(workflows);  // no real activities: the mock adds "charge"
  std::atomic<int> calls{0};
  BOOST_REQUIRE(env.MockActivityFn("charge",
                                   [&calls](ActivityContext& ctx, const Payload&) {
                                     ++calls;
                                     if (ctx.attempt() < 3)
                                       throw ActivityError("card reader offline", "Offline");
                                     return JsonPayload(Json{{"attempt", ctx.attempt()}});
                                   })
                    .ok());
  const Timestamp start = env.Now();
  BOOST_REQUIRE(env.Start("c-2", "checkout", Json::object()).ok());
  BOOST_REQUIRE(env.Signal("c-2", "approve", "bo").ok());
  const Json out = OutputOf(env.AwaitResult("c-2", kOneSecond));
  BOOST_TEST(calls.load() == 3);
  BOOST_TEST(out["charge"]["attempt"] == 3);
  BOOST_TEST(env.Now() >= start + 2 * 3600 * 1'000'000LL);  // two hourly retries
}

BOOST_AUTO_TEST_CASE(signal_query_and_history) {
  TestEnvironment env(workflows, &activities);
  auto run = env.Start("c-3", "checkout", Json{{"card", "visa"}});
  BOOST_REQUIRE(run.ok());
  // The run reaches its wait for approval without time passing.
  BOOST_REQUIRE(env.Sleep(0us).ok());
  auto stage = env.Query("c-3", "stage");
  BOOST_REQUIRE_MESSAGE(stage.ok(), stage.status().ToString());
  BOOST_TEST(*stage == "awaiting approval");
  BOOST_TEST(env.Query("c-3", "nope").status().code() == StatusCode::kUnknownQuery);
  BOOST_REQUIRE(env.Signal("c-3", "approve", Json{{"by", "cy"}}).ok());
  auto outcome = env.AwaitResult("c-3", kOneSecond);
  BOOST_TEST(OutputOf(outcome)["by"] == (Json{{"by", "cy"}}));
  BOOST_TEST(outcome->run_id == *run);
  auto history = env.History("c-3");
  BOOST_REQUIRE(history.ok());
  BOOST_TEST(history->front().has_workflow_started());
  BOOST_TEST(Has(*history, HistoryEvent::kActivityCompleted));
  BOOST_TEST(Has(*history, HistoryEvent::kSignalReceived));
  BOOST_TEST(Has(*history, HistoryEvent::kTimerCancelled));  // the week's deadline
  BOOST_TEST(history->back().has_workflow_completed());
  BOOST_TEST(env.Query("c-3", "stage").status().code() == StatusCode::kNotRunning);
  BOOST_TEST(env.Signal("c-3", "approve").code() == StatusCode::kNotRunning);
}

BOOST_AUTO_TEST_CASE(a_signal_that_never_comes_times_out_in_virtual_time) {
  TestEnvironment env(workflows, &activities);
  const Timestamp start = env.Now();
  BOOST_REQUIRE(env.Start("c-4", "checkout", Json::object()).ok());
  const Json out = OutputOf(env.AwaitResult("c-4", kOneSecond));
  BOOST_TEST(out["status"] == "expired");
  BOOST_TEST(env.Now() == start + 7 * kDayUs);
}

BOOST_AUTO_TEST_CASE(sleep_fires_the_timers_on_the_way_and_stops_at_its_end) {
  TestEnvironment env(workflows);
  const Timestamp start = env.Now();
  BOOST_REQUIRE(env.Start("nap-2", "nap", Json{{"days", 2}}).ok());
  BOOST_REQUIRE(env.Sleep(std::chrono::hours(24)).ok());
  BOOST_TEST(env.Now() == start + kDayUs);
  BOOST_TEST(WorkflowStatusName(env.Describe("nap-2")->record.status()) == "running");
  BOOST_REQUIRE(env.Sleep(std::chrono::hours(48)).ok());
  BOOST_TEST(env.Now() == start + 3 * kDayUs);
  BOOST_TEST(WorkflowStatusName(env.Describe("nap-2")->record.status()) == "completed");
  auto out = env.AwaitResult("nap-2", kOneSecond);
  BOOST_TEST(OutputOf(out)["woke_at_us"] == start + 2 * kDayUs);
}

BOOST_AUTO_TEST_CASE(engine_refusals_come_back_with_their_codes) {
  TestEnvironment env(workflows, &activities);
  BOOST_TEST(env.Start("x", "no_such_type").status().code() == StatusCode::kUnknownWorkflowType);
  BOOST_TEST(env.Start("bad id", "nap").status().code() == StatusCode::kInvalidArgument);
  BOOST_REQUIRE(env.Start("c-5", "checkout", Json::object()).ok());
  BOOST_TEST(env.Start("c-5", "checkout").status().code() == StatusCode::kAlreadyStarted);
  BOOST_TEST(env.Signal("nobody", "approve").code() == StatusCode::kNotFound);
  BOOST_TEST(env.AwaitResult("nobody", kOneSecond).status().code() == StatusCode::kNotFound);
  BOOST_TEST(env.Query("nobody", "stage").status().code() == StatusCode::kNotFound);
  BOOST_TEST(env.History("nobody").status().code() == StatusCode::kNotFound);
}

BOOST_AUTO_TEST_CASE(a_run_blocked_without_timers_reports_the_deadline) {
  WorkflowRegistry only_signal;
  BOOST_REQUIRE(only_signal.workflow("wait", &WaitForGo).ok());
  TestEnvironment env(only_signal);
  BOOST_REQUIRE(env.Start("w-1", "wait").ok());
  const Timestamp start = env.Now();
  auto r = env.AwaitResult("w-1", 100ms);
  BOOST_TEST(r.status().code() == StatusCode::kDeadlineExceeded);
  BOOST_TEST(r.status().message().find("no timer left") != std::string::npos, r.status().message());
  BOOST_TEST(env.Now() == start);  // nothing to skip to
  BOOST_REQUIRE(env.Signal("w-1", "go", 7).ok());
  BOOST_TEST(OutputOf(env.AwaitResult("w-1", kOneSecond)) == 7);
}

BOOST_AUTO_TEST_SUITE_END()
