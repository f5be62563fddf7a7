// Activities end to end through the embedded Engine: local activities on the
// pool, remote ones through the outbox, retries and timeouts on durable
// timer rows, heartbeats, stale and duplicate results, cancellation by the
// code, and restarts. Time comes from a ManualClock.
#define BOOST_TEST_MODULE activity_test
#include <boost/test/unit_test.hpp>

#include "activity_harness.h"
#include "aion/lmdb_store/lmdb_store.h"
#include "support/temp_dir.h"

using namespace aion;
using namespace aion::testing;

namespace {

using K = HistoryEvent::AttributesCase;

const HistoryEvent& Nth(const std::vector<HistoryEvent>& h, K kind, int n) {
  for (const auto& e : h) {
    if (e.attributes_case() == kind && n-- == 1) return e;
  }
  BOOST_FAIL("no such event");
  return h.front();
}

// Gives other threads a moment to do what they must not do.
void Settle() { std::this_thread::sleep_for(30ms); }

Json RemoteCall(const std::string& type, const Json& input, Json options) {
  options["task_queue"] = options.value("task_queue", "q");
  return Json{{"type", type}, {"input", input}, {"options", options}};
}

}  // namespace

BOOST_AUTO_TEST_CASE(local_activity_completes_on_a_pool_thread) {
  Harness h;
  h.Open();
  {
    std::lock_guard<std::mutex> g(g_workflow_threads_mu);
    g_workflow_threads.clear();
  }
  auto started = h.Start("l1", "call", {{"type", "block"}, {"input", {{"x", 1}}}});
  BOOST_REQUIRE(started.status.ok());
  BOOST_REQUIRE(WaitFor([&] { return h.block_calls.load() == 1; }));
  // Running, not finished: the record shows the started attempt.
  auto rec = h.Record("l1");
  BOOST_REQUIRE_EQUAL(rec.activities_size(), 1);
  BOOST_TEST(rec.activities(0).state() == records::PendingActivity::STATE_STARTED);
  BOOST_TEST(rec.activities(0).attempt() == 1u);
  h.gate.Open();
  BOOST_TEST(h.Output("l1") == (Json{{"result", {{"x", 1}}}}));

  auto hist = h.History("l1");
  BOOST_REQUIRE_EQUAL(hist.size(), 5u);
  BOOST_TEST(h.Kinds("l1") == (std::vector<K>{K::kWorkflowStarted, K::kActivityScheduled,
                                              K::kActivityStarted, K::kActivityCompleted,
                                              K::kWorkflowCompleted}),
             Harness::Describe(hist));
  BOOST_TEST(hist[1].caused_by() == 1u);
  BOOST_TEST(hist[1].activity_scheduled().activity_id() == "1");
  BOOST_TEST(hist[1].activity_scheduled().activity_type() == "block");
  BOOST_TEST(*ParseJsonPayload(hist[1].activity_scheduled().input()) == (Json{{"x", 1}}));
  BOOST_TEST(hist[1].activity_scheduled().options().task_queue().empty());
  BOOST_TEST(hist[2].activity_started().activity_id() == "1");
  BOOST_TEST(hist[2].activity_started().attempt() == 1u);
  BOOST_TEST(hist[3].activity_completed().attempt() == 1u);
  BOOST_TEST(*ParseJsonPayload(hist[3].activity_completed().result()) == (Json{{"x", 1}}));
  BOOST_TEST(hist[4].caused_by() == 4u);
  for (const auto& e : hist) BOOST_TEST(e.run_id() == started.run_id);

  // The activity ran on a pool thread, never on a thread that ran the workflow.
  std::vector<std::thread::id> wf;
  {
    std::lock_guard<std::mutex> g(g_workflow_threads_mu);
    wf = g_workflow_threads;
  }
  BOOST_REQUIRE_EQUAL(wf.size(), 2u);  // before the await and after it
  std::lock_guard<std::mutex> g(h.mu);
  BOOST_REQUIRE_EQUAL(h.activity_threads.size(), 1u);
  for (const auto& id : wf) BOOST_TEST((id != h.activity_threads[0]));
  BOOST_TEST((wf[0] != std::this_thread::get_id()));
}

BOOST_AUTO_TEST_CASE(retries_back_off_on_durable_timers_until_maximum_attempts) {
  Harness h;
  h.Open();
  const Timestamp t0 = h.clock.Now();
  const Json retry = {{"initial_ms", 1000}, {"coefficient", 2.0}, {"max_ms", 3000},
                      {"max_attempts", 4}};
  BOOST_REQUIRE(h.Start("r1", "call",
                        {{"type", "fail"},
                         {"input", {{"type", "Transient"}, {"message", "no luck"}}},
                         {"options", {{"retry", retry}}}})
                    .status.ok());
  // Attempt n starts at started[n]; its failure asks for the next at retry[n].
  const Timestamp started[] = {t0, t0 + 1'000'000, t0 + 3'000'000, t0 + 6'000'000};
  for (std::uint32_t n = 1; n <= 3; ++n) {
    h.WaitCount("r1", K::kActivityFailed, n);
    auto hist = h.History("r1");
    const auto& failed = Nth(hist, K::kActivityFailed, n).activity_failed();
    const Timestamp want_retry = started[n];  // 1 s, 2 s, then 3 s (4 s capped)
    BOOST_TEST(failed.attempt() == n);
    BOOST_TEST(failed.retry_at_us() == want_retry);
    BOOST_TEST(Nth(hist, K::kActivityFailed, n).recorded_at_us() == started[n - 1]);
    BOOST_TEST(failed.failure().error_type() == "Transient");
    BOOST_TEST(failed.failure().message() == "no luck");
    // Backing off: the record waits for `n + 1`, on exactly one timer row.
    auto rec = h.Record("r1");
    BOOST_REQUIRE_EQUAL(rec.activities_size(), 1);
    BOOST_TEST(rec.activities(0).state() == records::PendingActivity::STATE_BACKING_OFF);
    BOOST_TEST(rec.activities(0).attempt() == n + 1);
    BOOST_TEST(rec.activities(0).deadline_us() == want_retry);
    BOOST_TEST(rec.activities(0).last_failure() == "attempt " + std::to_string(n) + ": no luck");
    auto rows = h.TimerRows("r1");
    BOOST_REQUIRE_EQUAL(rows.size(), 1u);
    BOOST_TEST(rows[0].timer_id() == "activity/1");
    BOOST_TEST(rows[0].fire_at_us() == want_retry);
    // Just before retry_at nothing happens.
    h.clock.Set(want_retry - 1);
    Settle();
    BOOST_TEST(h.Count(h.History("r1"), K::kActivityStarted) == static_cast<int>(n));
    h.clock.Set(want_retry);
    h.WaitCount("r1", K::kActivityStarted, n + 1);
    BOOST_TEST(Nth(h.History("r1"), K::kActivityStarted, n + 1).recorded_at_us() == want_retry);
    BOOST_TEST(Nth(h.History("r1"), K::kActivityStarted, n + 1).activity_started().attempt() ==
               n + 1);
  }
  // The fourth attempt is the last: its failure is final.
  const Json out = h.Output("r1");
  BOOST_TEST(out == (Json{{"failed", "no luck"},
                          {"type", "Transient"},
                          {"attempt", 4},
                          {"timed_out", false}}));
  auto hist = h.History("r1");
  BOOST_TEST(h.Count(hist, K::kActivityFailed) == 4);
  BOOST_TEST(Nth(hist, K::kActivityFailed, 4).activity_failed().retry_at_us() == 0);
  BOOST_TEST(h.fail_calls.load() == 4);
  BOOST_TEST(h.TimerRows("r1").empty());
  BOOST_TEST(h.Record("r1").activities_size() == 0);
}

BOOST_AUTO_TEST_CASE(non_retryable_failures_end_the_activity_at_once) {
  Harness h;
  h.Open();
  // The activity says so itself...
  BOOST_REQUIRE(h.Start("nr1", "call",
                        {{"type", "fail"}, {"input", {{"type", "Boom"}, {"non_retryable", true}}}})
                    .status.ok());
  BOOST_TEST(h.Output("nr1") ==
             (Json{{"failed", "boom"}, {"type", "Boom"}, {"attempt", 1}, {"timed_out", false}}));
  // ... or the policy lists its type.
  BOOST_REQUIRE(h.Start("nr2", "call",
                        {{"type", "fail"},
                         {"input", {{"type", "Fatal"}}},
                         {"options", {{"retry", {{"non_retryable", {"Other", "Fatal"}}}}}}})
                    .status.ok());
  BOOST_TEST(h.Output("nr2")["type"] == "Fatal");
  BOOST_TEST(h.Output("nr2")["attempt"] == 1);
  for (const char* id : {"nr1", "nr2"}) {
    auto hist = h.History(id);
    BOOST_TEST(h.Count(hist, K::kActivityStarted) == 1);
    BOOST_TEST(h.Count(hist, K::kActivityFailed) == 1);
    BOOST_TEST(Nth(hist, K::kActivityFailed, 1).activity_failed().retry_at_us() == 0);
    BOOST_TEST(h.TimerRows(id).empty());
  }
  BOOST_TEST(h.fail_calls.load() == 2);
}

BOOST_AUTO_TEST_CASE(schedule_to_close_stops_retries) {
  Harness h;
  h.Open();
  const Timestamp t0 = h.clock.Now();
  // Retries 1 s then 2 s apart; the second retry would start at t0+3 s, after
  // the schedule-to-close deadline t0+2.5 s: the second failure is final.
  BOOST_REQUIRE(h.Start("s2c-fail", "call",
                        {{"type", "fail"},
                         {"input", {{"type", "Boom"}}},
                         {"options", {{"schedule_to_close_ms", 2500}, {"retry", Json::object()}}}})
                    .status.ok());
  h.WaitCount("s2c-fail", K::kActivityFailed, 1);
  // The first attempt's row is its schedule-to-close deadline, replaced by the retry.
  BOOST_TEST(Nth(h.History("s2c-fail"), K::kActivityFailed, 1).activity_failed().retry_at_us() ==
             t0 + 1'000'000);
  h.clock.Set(t0 + 1'000'000);
  const Json out = h.Output("s2c-fail");
  BOOST_TEST(out == (Json{{"failed", "boom"}, {"type", "Boom"}, {"attempt", 2}, {"timed_out", false}}));
  auto hist = h.History("s2c-fail");
  BOOST_TEST(Nth(hist, K::kActivityFailed, 2).activity_failed().retry_at_us() == 0);
  BOOST_TEST(h.Count(hist, K::kActivityTimedOut) == 0);
  BOOST_TEST(h.TimerRows("s2c-fail").empty());

  // A remote attempt nobody answers: start-to-close 2 s, schedule-to-close
  // 4.5 s. Attempt 1 times out (start_to_close) at t1+2 s, attempt 2 starts at
  // t1+3 s and its deadline is the schedule-to-close one: final.
  const Timestamp t1 = h.clock.Now();
  BOOST_REQUIRE(
      h.Start("s2c-timeout", "call",
              RemoteCall("work", 1, {{"start_to_close_ms", 2000}, {"schedule_to_close_ms", 4500}}))
          .status.ok());
  h.WaitCount("s2c-timeout", K::kActivityStarted, 1);
  auto rows = h.TimerRows("s2c-timeout");
  BOOST_REQUIRE_EQUAL(rows.size(), 1u);
  BOOST_TEST(rows[0].fire_at_us() == t1 + 2'000'000);
  h.clock.Set(t1 + 2'000'000);
  h.WaitCount("s2c-timeout", K::kActivityTimedOut, 1);
  const auto first = Nth(h.History("s2c-timeout"), K::kActivityTimedOut, 1).activity_timed_out();
  BOOST_TEST(first.kind() == history::TIMEOUT_KIND_START_TO_CLOSE);
  BOOST_TEST(first.retry_at_us() == t1 + 3'000'000);
  h.clock.Set(t1 + 3'000'000);
  h.WaitCount("s2c-timeout", K::kActivityStarted, 2);
  rows = h.TimerRows("s2c-timeout");
  BOOST_REQUIRE_EQUAL(rows.size(), 1u);
  BOOST_TEST(rows[0].fire_at_us() == t1 + 4'500'000);
  h.clock.Set(t1 + 4'500'000);
  BOOST_TEST(h.Output("s2c-timeout") == (Json{{"failed", "activity 1 timed out (schedule_to_close) on attempt 2"},
                                              {"type", "schedule_to_close"},
                                              {"attempt", 2},
                                              {"timed_out", true}}));
  const auto last = Nth(h.History("s2c-timeout"), K::kActivityTimedOut, 2).activity_timed_out();
  BOOST_TEST(last.kind() == history::TIMEOUT_KIND_SCHEDULE_TO_CLOSE);
  BOOST_TEST(last.retry_at_us() == 0);
  BOOST_TEST(h.TimerRows("s2c-timeout").empty());
  // Each timed-out remote attempt was told to stop.
  auto cancels = h.WaitRows("s2c-timeout", records::OutboxRow::KIND_ACTIVITY_CANCEL, 2);
  BOOST_TEST(cancels[0].task().attempt() == 1u);
  BOOST_TEST(cancels[1].task().attempt() == 2u);
}

BOOST_AUTO_TEST_CASE(start_to_close_times_out_a_remote_attempt_and_retries) {
  Harness h;
  h.Open();
  const Timestamp t0 = h.clock.Now();
  auto started = h.Start(
      "stc", "call",
      RemoteCall("work", "in", {{"start_to_close_ms", 5000}, {"retry", {{"max_attempts", 3}}}}));
  BOOST_REQUIRE(started.status.ok());
  auto tasks = h.WaitRows("stc", records::OutboxRow::KIND_ACTIVITY_TASK, 1);
  BOOST_TEST(tasks[0].task().attempt() == 1u);
  h.clock.Set(t0 + 4'999'999);
  Settle();
  BOOST_TEST(h.Count(h.History("stc"), K::kActivityTimedOut) == 0);
  h.clock.Set(t0 + 5'000'000);
  h.WaitCount("stc", K::kActivityTimedOut, 1);
  auto hist = h.History("stc");
  const auto& timed_out = Nth(hist, K::kActivityTimedOut, 1);
  BOOST_TEST(timed_out.activity_timed_out().kind() == history::TIMEOUT_KIND_START_TO_CLOSE);
  BOOST_TEST(timed_out.activity_timed_out().attempt() == 1u);
  BOOST_TEST(timed_out.activity_timed_out().retry_at_us() == t0 + 6'000'000);
  auto cancels = h.WaitRows("stc", records::OutboxRow::KIND_ACTIVITY_CANCEL, 1);
  BOOST_TEST(cancels[0].task().attempt() == 1u);
  BOOST_TEST(cancels[0].task().activity_id() == "1");
  BOOST_TEST(cancels[0].task().task_queue() == "q");
  BOOST_TEST(cancels[0].task().reason() == "attempt timed out");
  // The retry starts when the clock reaches retry_at, as a new task.
  h.clock.Set(t0 + 6'000'000);
  h.WaitCount("stc", K::kActivityStarted, 2);
  tasks = h.WaitRows("stc", records::OutboxRow::KIND_ACTIVITY_TASK, 2);
  BOOST_TEST(tasks[1].task().attempt() == 2u);
  BOOST_TEST(tasks[1].task().started_at_us() == t0 + 6'000'000);
  // The late answer of attempt 1 is dropped; attempt 2's is recorded.
  auto late = h.engine->Send(Harness::ResultMsg("stc", started.run_id, "1", 1, "late"));
  BOOST_TEST(late.status.ok());
  BOOST_TEST(late.dropped);
  BOOST_TEST(late.seq == 0u);
  auto ok = h.engine->Send(Harness::ResultMsg("stc", started.run_id, "1", 2, "second"));
  BOOST_TEST(ok.status.ok());
  BOOST_TEST(!ok.dropped);
  BOOST_TEST(h.Output("stc") == (Json{{"result", "second"}}));
  BOOST_TEST(h.TimerRows("stc").empty());
}

BOOST_AUTO_TEST_CASE(a_local_attempt_that_times_out_is_cancelled_and_retried) {
  Harness h;
  h.Open();
  const Timestamp t0 = h.clock.Now();
  BOOST_REQUIRE(h.Start("lto", "call",
                        {{"type", "block"},
                         {"input", "x"},
                         {"options", {{"start_to_close_ms", 5000}, {"retry", {{"max_attempts", 2}}}}}})
                    .status.ok());
  BOOST_REQUIRE(WaitFor([&] { return h.block_calls.load() == 1; }));
  h.WaitCount("lto", K::kActivityStarted, 1);
  h.clock.Set(t0 + 5'000'000);
  h.WaitCount("lto", K::kActivityTimedOut, 1);
  // The pool tells the running attempt; it stops and nothing is recorded for it.
  BOOST_REQUIRE(WaitFor([&] { return h.block_cancelled.load() == 1; }));
  const auto t = Nth(h.History("lto"), K::kActivityTimedOut, 1).activity_timed_out();
  BOOST_TEST(t.kind() == history::TIMEOUT_KIND_START_TO_CLOSE);
  BOOST_TEST(t.retry_at_us() == t0 + 6'000'000);
  BOOST_TEST(h.sink.Cancels().empty());  // local: no cancel note goes out
  h.clock.Set(t0 + 6'000'000);
  BOOST_REQUIRE(WaitFor([&] { return h.block_calls.load() == 2; }));
  h.gate.Open();
  BOOST_TEST(h.Output("lto") == (Json{{"result", "x"}}));
  auto hist = h.History("lto");
  BOOST_TEST(Nth(hist, K::kActivityCompleted, 1).activity_completed().attempt() == 2u);
  BOOST_TEST(h.Count(hist, K::kActivityStarted) == 2);
}

BOOST_AUTO_TEST_CASE(heartbeats_keep_an_attempt_alive_and_their_absence_times_it_out) {
  Harness h;
  h.Open();
  const Timestamp t0 = h.clock.Now();
  auto started = h.Start(
      "hb", "call",
      RemoteCall("work", 1, {{"heartbeat_timeout_ms", 10000}, {"retry", {{"max_attempts", 1}}}}));
  BOOST_REQUIRE(started.status.ok());
  h.WaitRows("hb", records::OutboxRow::KIND_ACTIVITY_TASK, 1);
  BOOST_TEST(h.WaitRows("hb", records::OutboxRow::KIND_ACTIVITY_TASK, 1)[0]
                 .task()
                 .heartbeat_timeout_us() == 10'000'000);
  h.clock.Set(t0 + 8'000'000);
  BOOST_TEST(h.Heartbeat("hb", started.run_id, "1", 1, {{"progress", 40}}).ok());
  auto rec = h.Record("hb");
  BOOST_REQUIRE_EQUAL(rec.activities_size(), 1);
  BOOST_TEST(*ParseJsonPayload(rec.activities(0).heartbeat_details()) == (Json{{"progress", 40}}));
  BOOST_TEST(rec.activities(0).last_heartbeat_us() == t0 + 8'000'000);
  BOOST_TEST(rec.activities(0).deadline_us() == t0 + 18'000'000);
  auto rows = h.TimerRows("hb");
  BOOST_REQUIRE_EQUAL(rows.size(), 1u);
  BOOST_TEST(rows[0].fire_at_us() == t0 + 18'000'000);
  // Past the first deadline: alive thanks to the heartbeat.
  h.clock.Set(t0 + 12'000'000);
  Settle();
  BOOST_TEST(h.Count(h.History("hb"), K::kActivityTimedOut) == 0);
  BOOST_TEST(h.Record("hb").status() == records::WORKFLOW_STATUS_RUNNING);
  // No heartbeat for 10 s: timed out, and final (one attempt allowed).
  h.clock.Set(t0 + 18'000'000);
  BOOST_TEST(h.Output("hb") == (Json{{"failed", "activity 1 timed out (heartbeat) on attempt 1"},
                                     {"type", "heartbeat"},
                                     {"attempt", 1},
                                     {"timed_out", true}}));
  const auto t = Nth(h.History("hb"), K::kActivityTimedOut, 1).activity_timed_out();
  BOOST_TEST(t.kind() == history::TIMEOUT_KIND_HEARTBEAT);
  BOOST_TEST(t.retry_at_us() == 0);
  // The run is closed: its worker is told to stop.
  BOOST_TEST(h.Heartbeat("hb", started.run_id, "1", 1, nullptr).code() == StatusCode::kNotFound);
}

BOOST_AUTO_TEST_CASE(heartbeat_of_an_attempt_that_no_longer_runs_is_not_found) {
  Harness h;
  h.Open();
  const Timestamp t0 = h.clock.Now();
  auto started =
      h.Start("hbx", "call", RemoteCall("work", 1, {{"start_to_close_ms", 1000}}));
  BOOST_REQUIRE(started.status.ok());
  h.WaitCount("hbx", K::kActivityStarted, 1);
  BOOST_TEST(h.Heartbeat("hbx", started.run_id, "1", 1, 1).ok());
  h.clock.Set(t0 + 1'000'000);  // attempt 1 times out, attempt 2 backs off 1 s
  h.WaitCount("hbx", K::kActivityTimedOut, 1);
  // Backing off: neither the timed-out attempt nor the next one runs.
  BOOST_TEST(h.Heartbeat("hbx", started.run_id, "1", 1, 1).code() == StatusCode::kNotFound);
  BOOST_TEST(h.Heartbeat("hbx", started.run_id, "1", 2, 1).code() == StatusCode::kNotFound);
  h.clock.Set(t0 + 2'000'000);
  h.WaitCount("hbx", K::kActivityStarted, 2);
  const auto before = h.History("hbx").size();
  BOOST_TEST(h.Heartbeat("hbx", started.run_id, "1", 1, 1).code() == StatusCode::kNotFound);
  BOOST_TEST(h.Heartbeat("hbx", "other-run", "1", 2, 1).code() == StatusCode::kNotFound);
  BOOST_TEST(h.Heartbeat("hbx", started.run_id, "2", 2, 1).code() == StatusCode::kNotFound);
  BOOST_TEST(h.Heartbeat("nobody", started.run_id, "1", 2, 1).code() == StatusCode::kNotFound);
  BOOST_TEST(h.Heartbeat("hbx", started.run_id, "1", 2, {{"step", 2}}).ok());
  BOOST_TEST(*ParseJsonPayload(h.Record("hbx").activities(0).heartbeat_details()) ==
             (Json{{"step", 2}}));
  BOOST_TEST(h.History("hbx").size() == before);  // heartbeats are not history
  BOOST_REQUIRE(h.engine->Send(Harness::ResultMsg("hbx", started.run_id, "1", 2, 2)).status.ok());
  h.Output("hbx");
  BOOST_TEST(h.Heartbeat("hbx", started.run_id, "1", 2, 1).code() == StatusCode::kNotFound);
  BOOST_TEST(h.engine->Describe("nobody").status().code() == StatusCode::kNotFound);
}

BOOST_AUTO_TEST_CASE(local_activity_heartbeats_reach_describe) {
  Harness h;
  ActivityRegistry& reg = h.activities;
  std::atomic<bool> beat_ok{false};
  BOOST_REQUIRE(reg.activity("beat", [&](ActivityContext& ctx, Json) -> Json {
    beat_ok = ctx.heartbeat({{"done", 3}});
    if (!h.gate.Wait(ctx)) return "cancelled";
    return "beaten";
  }).ok());
  h.Open();
  BOOST_REQUIRE(h.Start("lhb", "call", {{"type", "beat"}, {"input", nullptr}}).status.ok());
  BOOST_REQUIRE(WaitFor([&] {
    auto r = h.Record("lhb");
    return r.activities_size() == 1 && r.activities(0).has_heartbeat_details();
  }));
  BOOST_TEST(WaitFor([&] { return beat_ok.load(); }));  // set once Heartbeat returned
  BOOST_TEST(*ParseJsonPayload(h.Record("lhb").activities(0).heartbeat_details()) ==
             (Json{{"done", 3}}));
  h.gate.Open();
  BOOST_TEST(h.Output("lhb") == (Json{{"result", "beaten"}}));
}

BOOST_AUTO_TEST_CASE(bad_input_fails_for_good_and_an_unknown_local_type_is_retried) {
  Harness h;
  BOOST_REQUIRE(h.activities.activity("double", [](ActivityContext&, int x) { return 2 * x; }).ok());
  h.Open();
  BOOST_REQUIRE(h.Start("typed", "call", {{"type", "double"}, {"input", 21}}).status.ok());
  BOOST_TEST(h.Output("typed") == (Json{{"result", 42}}));
  // An input that does not convert is not worth retrying.
  BOOST_REQUIRE(h.Start("bad", "call", {{"type", "double"}, {"input", "abc"}}).status.ok());
  const Json bad = h.Output("bad");
  BOOST_TEST(bad["type"] == "PayloadError");
  BOOST_TEST(bad["attempt"] == 1);
  BOOST_TEST(h.Count(h.History("bad"), K::kActivityStarted) == 1);
  // No local activity of that type: retried (another worker may have it).
  const Timestamp t0 = h.clock.Now();
  BOOST_REQUIRE(h.Start("unknown", "call",
                        {{"type", "nowhere"}, {"input", 1}, {"options", {{"retry", {{"max_attempts", 2}}}}}})
                    .status.ok());
  h.WaitCount("unknown", K::kActivityFailed, 1);
  const auto f = Nth(h.History("unknown"), K::kActivityFailed, 1).activity_failed();
  BOOST_TEST(f.failure().error_type() == "UnknownActivityType");
  BOOST_TEST(f.retry_at_us() == t0 + 1'000'000);
  h.clock.Set(t0 + 1'000'000);
  const Json unknown = h.Output("unknown");
  BOOST_TEST(unknown["type"] == "UnknownActivityType");
  BOOST_TEST(unknown["attempt"] == 2);
}

BOOST_AUTO_TEST_CASE(remote_activity_task_goes_out_and_its_result_comes_back) {
  Harness h;
  h.Open();
  const Timestamp t0 = h.clock.Now();
  auto started = h.Start(
      "rem", "cancel_on_signal",
      {{"type", "charge"},
       {"input", {{"amount", 5}}},
       {"options",
        {{"task_queue", "payments"}, {"start_to_close_ms", 30000}, {"heartbeat_timeout_ms", 10000}}}});
  BOOST_REQUIRE(started.status.ok());
  auto tasks = h.WaitRows("rem", records::OutboxRow::KIND_ACTIVITY_TASK, 1);
  BOOST_REQUIRE_EQUAL(tasks.size(), 1u);
  const OutboxRow& row = tasks[0];
  BOOST_TEST(row.msg_id() == "rem/00000000000000000003");  // the ActivityStarted event
  BOOST_TEST(row.workflow_id() == "rem");
  BOOST_TEST(row.workflow_type() == "cancel_on_signal");
  BOOST_TEST(row.task().run_id() == started.run_id);
  BOOST_TEST(row.task().activity_id() == "1");
  BOOST_TEST(row.task().attempt() == 1u);
  BOOST_TEST(row.task().activity_type() == "charge");
  BOOST_TEST(row.task().task_queue() == "payments");
  BOOST_TEST(*ParseJsonPayload(row.task().input()) == (Json{{"amount", 5}}));
  BOOST_TEST(row.task().start_to_close_us() == 30'000'000);
  BOOST_TEST(row.task().heartbeat_timeout_us() == 10'000'000);
  BOOST_TEST(row.task().scheduled_at_us() == t0);
  BOOST_TEST(row.task().started_at_us() == t0);
  // Nothing runs it locally: the local pool has no "charge".
  BOOST_TEST(h.Count(h.History("rem"), K::kActivityFailed) == 0);

  auto done = h.engine->Send(Harness::ResultMsg("rem", started.run_id, "1", 1, {{"paid", true}}));
  BOOST_TEST(done.status.ok());
  BOOST_TEST(!done.dropped);
  BOOST_TEST(done.seq == 4u);
  BOOST_TEST(done.run_id == started.run_id);
  auto hist = h.History("rem");
  BOOST_REQUIRE_EQUAL(hist.size(), 4u);
  BOOST_TEST(*ParseJsonPayload(hist[3].activity_completed().result()) == (Json{{"paid", true}}));
  BOOST_TEST(h.TimerRows("rem").empty());  // its start-to-close row is gone
  // A duplicate answer while the run is still open: dropped, nothing recorded.
  auto dup = h.engine->Send(Harness::ResultMsg("rem", started.run_id, "1", 1, {{"paid", 2}}));
  BOOST_TEST(dup.status.ok());
  BOOST_TEST(dup.dropped);
  BOOST_TEST(h.History("rem").size() == 4u);
  // The code's cancel after completion is a no-op: the result stands.
  BOOST_REQUIRE(h.engine->Signal("rem", "stop", JsonPayload(nullptr)).status.ok());
  BOOST_TEST(h.Output("rem") == (Json{{"result", {{"paid", true}}}}));
  BOOST_TEST(h.Count(h.History("rem"), K::kActivityCancelRequested) == 0);
  BOOST_TEST(h.sink.Cancels().empty());
}

BOOST_AUTO_TEST_CASE(results_for_a_stale_attempt_or_run_are_dropped) {
  Harness h;
  h.Open();
  const Timestamp t0 = h.clock.Now();
  auto started =
      h.Start("stale", "cancel_on_signal", RemoteCall("work", 1, {{"start_to_close_ms", 1000}}));
  BOOST_REQUIRE(started.status.ok());
  h.WaitCount("stale", K::kActivityStarted, 1);  // its deadline is t0+1 s
  h.clock.Set(t0 + 1'000'000);
  h.WaitCount("stale", K::kActivityTimedOut, 1);
  // Backing off: no attempt runs.
  auto r = h.engine->Send(Harness::ResultMsg("stale", started.run_id, "1", 1, "old"));
  BOOST_TEST(r.status.ok());
  BOOST_TEST(r.dropped);
  h.clock.Set(t0 + 2'000'000);
  h.WaitCount("stale", K::kActivityStarted, 2);
  const auto before = h.History("stale").size();
  for (const IngressMessage& m :
       {Harness::ResultMsg("stale", started.run_id, "1", 1, "old attempt"),
        Harness::ResultMsg("stale", "another-run", "1", 2, "wrong run"),
        Harness::ResultMsg("stale", started.run_id, "9", 1, "no such activity"),
        Harness::FailureMsg("stale", started.run_id, "1", 3, "Future")}) {
    auto out = h.engine->Send(m);
    BOOST_TEST(out.status.ok(), out.status);
    BOOST_TEST(out.dropped);
    BOOST_TEST(!out.duplicate);
    BOOST_TEST(out.seq == 0u);
  }
  BOOST_TEST(h.History("stale").size() == before);
  auto unknown = h.engine->Send(Harness::ResultMsg("nobody", started.run_id, "1", 1, 1));
  BOOST_TEST(unknown.status.code() == StatusCode::kNotFound);
  BOOST_TEST(h.engine->Describe("nobody").status().code() == StatusCode::kNotFound);
  // A remote failure is retried like a local one.
  auto failed = h.engine->Send(Harness::FailureMsg("stale", started.run_id, "1", 2, "Remote"));
  BOOST_TEST(failed.status.ok());
  BOOST_TEST(!failed.dropped);
  const auto f = Nth(h.History("stale"), K::kActivityFailed, 1).activity_failed();
  BOOST_TEST(f.attempt() == 2u);
  BOOST_TEST(f.failure().error_type() == "Remote");
  BOOST_TEST(f.retry_at_us() == t0 + 2'000'000 + 2'000'000);
}

BOOST_AUTO_TEST_CASE(code_cancel_of_a_remote_activity_tells_its_worker) {
  Harness h;
  h.Open();
  auto started = h.Start("cx", "cancel_on_signal",
                         RemoteCall("work", 1, {{"start_to_close_ms", 60000}}));
  BOOST_REQUIRE(started.status.ok());
  h.WaitRows("cx", records::OutboxRow::KIND_ACTIVITY_TASK, 1);
  auto sig = h.engine->Signal("cx", "stop", JsonPayload(nullptr));
  BOOST_REQUIRE(sig.status.ok());
  BOOST_TEST(h.Output("cx") == "cancelled");
  auto hist = h.History("cx");
  BOOST_TEST(h.Kinds("cx") == (std::vector<K>{K::kWorkflowStarted, K::kActivityScheduled,
                                              K::kActivityStarted, K::kSignalReceived,
                                              K::kActivityCancelRequested, K::kWorkflowCompleted}),
             Harness::Describe(hist));
  BOOST_TEST(hist[4].caused_by() == sig.seq);
  BOOST_TEST(hist[4].activity_cancel_requested().activity_id() == "1");
  auto cancels = h.WaitRows("cx", records::OutboxRow::KIND_ACTIVITY_CANCEL, 1);
  BOOST_TEST(cancels[0].msg_id() == "cx/00000000000000000005");
  BOOST_TEST(cancels[0].task().activity_id() == "1");
  BOOST_TEST(cancels[0].task().attempt() == 1u);
  BOOST_TEST(cancels[0].task().task_queue() == "q");
  BOOST_TEST(cancels[0].task().run_id() == started.run_id);
  BOOST_TEST(cancels[0].task().reason() == "cancelled by the workflow");
  BOOST_TEST(h.TimerRows("cx").empty());
  // Its answer after the cancel is dropped.
  auto late = h.engine->Send(Harness::ResultMsg("cx", started.run_id, "1", 1, "late"));
  BOOST_TEST(late.status.ok());
  BOOST_TEST(late.dropped);
  BOOST_TEST(h.History("cx").size() == hist.size());
}

BOOST_AUTO_TEST_CASE(a_local_activity_that_loses_a_race_with_a_timer_is_cancelled) {
  Harness h;
  h.Open();
  BOOST_REQUIRE(
      h.Start("race", "race_timer", {{"type", "block"}, {"input", 1}, {"sleep_ms", 5000}})
          .status.ok());
  BOOST_REQUIRE(WaitFor([&] { return h.block_calls.load() == 1; }));
  h.WaitCount("race", K::kTimerStarted, 1);
  h.clock.Advance(5s);
  BOOST_TEST(h.Output("race") == "cancelled");
  // The pool told the running attempt; it stopped and its result is dropped.
  BOOST_REQUIRE(WaitFor([&] { return h.block_cancelled.load() == 1; }));
  auto hist = h.History("race");
  BOOST_TEST(h.Kinds("race") == (std::vector<K>{K::kWorkflowStarted, K::kActivityScheduled,
                                                K::kActivityStarted, K::kTimerStarted,
                                                K::kTimerFired, K::kActivityCancelRequested,
                                                K::kWorkflowCompleted}),
             Harness::Describe(hist));
  BOOST_TEST(hist[5].caused_by() == 5u);
  BOOST_TEST(h.sink.Cancels().empty());  // local: no cancel note goes out
  Settle();
  BOOST_TEST(h.History("race").size() == hist.size());
}

BOOST_AUTO_TEST_CASE(a_result_recorded_before_the_cancel_makes_the_cancel_moot) {
  Harness h;
  h.Open();
  Json input = RemoteCall("work", 1, Json::object());
  input["then_wait"] = true;
  auto started = h.Start("moot", "cancel_on_signal", input);
  BOOST_REQUIRE(started.status.ok());
  h.WaitCount("moot", K::kActivityStarted, 1);
  // The signal that makes the code cancel and the activity's result commit
  // together: the code cancels, but the result was recorded first.
  IngressMessage stop;
  stop.kind = IngressMessage::Kind::kSignal;
  stop.workflow_id = "moot";
  stop.signal_name = "stop";
  stop.input = JsonPayload(nullptr);
  std::promise<std::vector<IngressOutcome>> done;
  h.engine->Submit({stop, Harness::ResultMsg("moot", started.run_id, "1", 1, "won")},
                   [&](std::vector<IngressOutcome> o) { done.set_value(std::move(o)); });
  auto outcomes = done.get_future().get();
  BOOST_TEST(outcomes[0].seq == 4u);
  BOOST_TEST(outcomes[1].seq == 5u);
  // The code's cancel was found moot before it was ever handed to the writer.
  Settle();
  BOOST_TEST(h.Kinds("moot") == (std::vector<K>{K::kWorkflowStarted, K::kActivityScheduled,
                                                K::kActivityStarted, K::kSignalReceived,
                                                K::kActivityCompleted}),
             Harness::Describe(h.History("moot")));
  BOOST_TEST(h.sink.Cancels().empty());
  // Rebuilt by replay from that history: no nondeterminism.
  h.Restart();
  BOOST_REQUIRE(h.engine->Signal("moot", "end", JsonPayload(nullptr)).status.ok());
  BOOST_TEST(h.Output("moot") == "cancelled");
  BOOST_TEST(h.engine->Describe("moot")->parked_error.empty());
  BOOST_TEST(h.Count(h.History("moot"), K::kActivityCancelRequested) == 0);
}

BOOST_AUTO_TEST_CASE(a_local_attempt_cut_off_by_shutdown_runs_again_after_restart) {
  Harness h;
  h.Open();
  BOOST_REQUIRE(h.Start("cut", "call", {{"type", "block"}, {"input", "x"}}).status.ok());
  BOOST_REQUIRE(WaitFor([&] { return h.block_calls.load() == 1; }));
  h.Close();  // the attempt is cancelled out of the gate; its result is not recorded
  BOOST_TEST(h.block_cancelled.load() == 1);
  BOOST_TEST(h.Count(*h.store->ReadHistory("cut", 1), K::kActivityCompleted) == 0);
  h.Open();
  BOOST_REQUIRE(WaitFor([&] { return h.block_calls.load() == 2; }));
  h.gate.Open();
  BOOST_TEST(h.Output("cut") == (Json{{"result", "x"}}));
  auto hist = h.History("cut");
  BOOST_TEST(h.Count(hist, K::kActivityStarted) == 1);
  BOOST_TEST(h.Count(hist, K::kActivityCompleted) == 1);
  BOOST_TEST(hist.size() == 5u, Harness::Describe(hist));
}

BOOST_AUTO_TEST_CASE(a_remote_attempt_that_timed_out_during_downtime_retries_after_restart) {
  Harness h;
  h.Open();
  const Timestamp t0 = h.clock.Now();
  auto started = h.Start("down", "call", RemoteCall("work", 1, {{"start_to_close_ms", 1000}}));
  BOOST_REQUIRE(started.status.ok());
  h.WaitRows("down", records::OutboxRow::KIND_ACTIVITY_TASK, 1);
  h.Close();
  h.clock.Set(t0 + 1'500'000);  // its deadline passes while the engine is down
  h.Open();  // the timeout fires at once; its cancel note goes out through the outbox
  auto cancels = h.WaitRows("down", records::OutboxRow::KIND_ACTIVITY_CANCEL, 1);
  BOOST_TEST(cancels[0].task().attempt() == 1u);
  const auto t = Nth(h.History("down"), K::kActivityTimedOut, 1);
  BOOST_TEST(t.recorded_at_us() == t0 + 1'500'000);
  BOOST_TEST(t.activity_timed_out().retry_at_us() == t0 + 2'500'000);
  h.clock.Set(t0 + 2'500'000);
  auto tasks = h.WaitRows("down", records::OutboxRow::KIND_ACTIVITY_TASK, 2);
  BOOST_TEST(tasks[1].task().attempt() == 2u);
  BOOST_REQUIRE(h.engine->Send(Harness::ResultMsg("down", started.run_id, "1", 2, "ok")).status.ok());
  BOOST_TEST(h.Output("down") == (Json{{"result", "ok"}}));
}

BOOST_AUTO_TEST_CASE(evicted_runs_with_activity_histories_are_rebuilt_without_nondeterminism) {
  Harness h;
  h.max_resident_runs = 1;
  h.Open();
  const Timestamp t0 = h.clock.Now();
  for (const char* id : {"ev-a", "ev-b", "ev-c"}) {
    BOOST_REQUIRE(h.Start(id, "two_steps", Json::object()).status.ok());
    h.WaitCount(id, K::kTimerStarted, 1);
  }
  // At most one stays resident; the others are rebuilt by replay on the fire.
  BOOST_REQUIRE(WaitFor([&] {
    int resident = 0;
    for (const char* id : {"ev-a", "ev-b", "ev-c"}) resident += h.engine->Describe(id)->resident;
    return resident <= 1;
  }));
  h.clock.Set(t0 + 1'000'000);
  for (const char* id : {"ev-a", "ev-b", "ev-c"}) {
    BOOST_TEST(h.Output(id) == Json::array({"one", "two"}));
    BOOST_TEST(h.engine->Describe(id)->parked_error.empty());
    BOOST_TEST(h.History(id).size() == 10u, Harness::Describe(h.History(id)));
  }
  BOOST_TEST(h.echo_calls.load() == 6);
}

BOOST_AUTO_TEST_CASE(lmdb_retry_backoff_and_replay_survive_restarts) {
  TempDir dir("aion-activity");
  auto open_store = [&] {
    auto s = LmdbStore::Open({.directory = dir.path()});
    BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
    return std::move(*s);
  };
  std::unique_ptr<LmdbStore> store = open_store();
  Harness h(store.get());
  h.Open();
  const Timestamp t0 = h.clock.Now();
  // echo, a 1 s sleep, then "flaky" that succeeds on its second attempt.
  BOOST_REQUIRE(h.Start("lm", "two_steps",
                        {{"second", "flaky"}, {"options", {{"retry", {{"initial_ms", 500}}}}}})
                    .status.ok());
  h.WaitCount("lm", K::kTimerStarted, 1);
  BOOST_TEST(h.echo_calls.load() == 1);

  // Restart 1: the run is rebuilt from a history holding a completed activity.
  h.Close();
  store.reset();
  store = open_store();
  h.store = store.get();
  h.Open();
  h.clock.Set(t0 + 1'000'000);
  h.WaitCount("lm", K::kActivityFailed, 1);
  const auto failed = Nth(h.History("lm"), K::kActivityFailed, 1).activity_failed();
  BOOST_TEST(failed.retry_at_us() == t0 + 1'500'000);
  BOOST_TEST(h.echo_calls.load() == 1);  // the completed activity did not run again

  // Restart 2, while backing off: the retry row survives and fires.
  h.Close();
  store.reset();
  store = open_store();
  h.store = store.get();
  h.Open();
  BOOST_TEST(h.Record("lm").activities(0).state() == records::PendingActivity::STATE_BACKING_OFF);
  h.clock.Set(t0 + 1'500'000);
  BOOST_TEST(h.Output("lm") == Json::array({"one", 2}));
  BOOST_TEST(h.engine->Describe("lm")->parked_error.empty());
  BOOST_TEST(h.Kinds("lm") ==
                 (std::vector<K>{K::kWorkflowStarted, K::kActivityScheduled, K::kActivityStarted,
                                 K::kActivityCompleted, K::kTimerStarted, K::kTimerFired,
                                 K::kActivityScheduled, K::kActivityStarted, K::kActivityFailed,
                                 K::kActivityStarted, K::kActivityCompleted, K::kWorkflowCompleted}),
             Harness::Describe(h.History("lm")));
  BOOST_TEST(h.TimerRows("lm").empty());
  h.Close();
}
