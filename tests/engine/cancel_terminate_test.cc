// Workflow cancellation (CancelledError delivered once, compensation, the
// run ending COMPLETED or CANCELLED), termination (engine-recorded cancels,
// rows removed, late results dropped) and run timeouts, through the embedded
// Engine with a ManualClock.
#define BOOST_TEST_MODULE cancel_terminate_test
#include <boost/test/unit_test.hpp>

#include "activity_harness.h"

using namespace aion;
using namespace aion::testing;

namespace {

using K = HistoryEvent::AttributesCase;

void Settle() { std::this_thread::sleep_for(30ms); }

}  // namespace

BOOST_AUTO_TEST_CASE(cancel_while_waiting_on_an_activity_compensates_and_completes) {
  Harness h;
  h.Open();
  auto started = h.Start("c-act", "compensating", {{"wait", "activity"}});
  BOOST_REQUIRE(started.status.ok());
  h.WaitRows("c-act", records::OutboxRow::KIND_ACTIVITY_TASK, 1);
  auto cancel = h.Cancel("c-act", "customer left");
  BOOST_TEST(cancel.status.ok());
  BOOST_TEST(!cancel.dropped);
  BOOST_TEST(cancel.seq == 4u);
  BOOST_TEST(cancel.run_id == started.run_id);
  BOOST_TEST(h.Output("c-act") == (Json{{"compensated", "u"}}));
  auto hist = h.History("c-act");
  BOOST_TEST(h.Kinds("c-act") ==
                 (std::vector<K>{K::kWorkflowStarted, K::kActivityScheduled, K::kActivityStarted,
                                 K::kWorkflowCancelRequested, K::kActivityCancelRequested,
                                 K::kActivityScheduled, K::kActivityStarted, K::kActivityCompleted,
                                 K::kWorkflowCompleted}),
             Harness::Describe(hist));
  BOOST_TEST(hist[3].workflow_cancel_requested().reason() == "customer left");
  BOOST_TEST(hist[4].caused_by() == 4u);
  BOOST_TEST(hist[4].activity_cancel_requested().activity_id() == "1");
  BOOST_TEST(hist[5].caused_by() == 4u);
  BOOST_TEST(hist[5].activity_scheduled().activity_type() == "undo");
  BOOST_TEST(hist[8].caused_by() == 8u);
  BOOST_TEST(h.undo_calls.load() == 1);
  auto cancels = h.WaitRows("c-act", records::OutboxRow::KIND_ACTIVITY_CANCEL, 1);
  BOOST_TEST(cancels[0].task().activity_id() == "1");
  auto rec = h.Record("c-act");
  BOOST_TEST(rec.cancel_requested());
  BOOST_TEST(rec.cancel_reason() == "customer left");
  // The cancelled activity's late answer is dropped.
  auto late = h.engine->Send(Harness::ResultMsg("c-act", started.run_id, "1", 1, "late"));
  BOOST_TEST(late.status.ok());
  BOOST_TEST(late.dropped);
  BOOST_TEST(h.History("c-act").size() == hist.size());
}

BOOST_AUTO_TEST_CASE(cancelled_error_escaping_after_compensation_ends_the_run_cancelled) {
  Harness h;
  h.Open();
  BOOST_REQUIRE(h.Start("c-re", "compensating", {{"wait", "activity"}, {"rethrow", true}})
                    .status.ok());
  h.WaitRows("c-re", records::OutboxRow::KIND_ACTIVITY_TASK, 1);
  BOOST_REQUIRE(h.Cancel("c-re").status.ok());
  Outcome o = h.Result("c-re");
  BOOST_TEST(o.status == records::WORKFLOW_STATUS_CANCELLED);
  BOOST_TEST(o.failure == "compensated, then cancelled");
  BOOST_TEST(h.undo_calls.load() == 1);
  auto hist = h.History("c-re");
  BOOST_TEST(hist.back().has_workflow_cancelled(), Harness::Describe(hist));
  BOOST_TEST(hist.back().caused_by() == 8u);
  // A lifecycle event announces it.
  auto events = h.WaitRows("c-re", records::OutboxRow::KIND_LIFECYCLE, 2);
  BOOST_TEST(events.back().event().has_workflow_cancelled());
}

BOOST_AUTO_TEST_CASE(cancel_while_waiting_on_a_timer_cancels_the_timer) {
  Harness h;
  h.Open();
  BOOST_REQUIRE(h.Start("c-timer", "compensating", {{"wait", "timer"}}).status.ok());
  h.WaitCount("c-timer", K::kTimerStarted, 1);
  BOOST_TEST(h.TimerRows("c-timer").size() == 1u);
  BOOST_REQUIRE(h.Cancel("c-timer").status.ok());
  BOOST_TEST(h.Output("c-timer") == (Json{{"compensated", "u"}}));
  auto hist = h.History("c-timer");
  BOOST_TEST(h.Kinds("c-timer") ==
                 (std::vector<K>{K::kWorkflowStarted, K::kTimerStarted,
                                 K::kWorkflowCancelRequested, K::kTimerCancelled,
                                 K::kActivityScheduled, K::kActivityStarted, K::kActivityCompleted,
                                 K::kWorkflowCompleted}),
             Harness::Describe(hist));
  BOOST_TEST(hist[3].caused_by() == 3u);
  BOOST_TEST(h.TimerRows("c-timer").empty());
  h.clock.Advance(2h);
  Settle();
  BOOST_TEST(h.History("c-timer").size() == hist.size());
}

BOOST_AUTO_TEST_CASE(cancel_while_waiting_on_a_signal_with_a_deadline_cancels_its_timer) {
  Harness h;
  h.Open();
  BOOST_REQUIRE(h.Start("c-within", "compensating", {{"wait", "within"}}).status.ok());
  h.WaitCount("c-within", K::kTimerStarted, 1);
  BOOST_REQUIRE(h.Cancel("c-within").status.ok());
  BOOST_TEST(h.Output("c-within") == (Json{{"compensated", "u"}}));
  auto hist = h.History("c-within");
  BOOST_TEST(h.Kinds("c-within") ==
                 (std::vector<K>{K::kWorkflowStarted, K::kTimerStarted,
                                 K::kWorkflowCancelRequested, K::kTimerCancelled,
                                 K::kActivityScheduled, K::kActivityStarted, K::kActivityCompleted,
                                 K::kWorkflowCompleted}),
             Harness::Describe(hist));
  BOOST_TEST(h.TimerRows("c-within").empty());
  // The signal it waited for comes too late: the run is closed.
  BOOST_TEST(h.engine->Signal("c-within", "go", JsonPayload(1)).status.code() ==
             StatusCode::kNotRunning);
}

BOOST_AUTO_TEST_CASE(cancel_while_waiting_on_a_signal_and_rethrowing_ends_cancelled) {
  Harness h;
  h.Open();
  BOOST_REQUIRE(h.Start("c-sig", "compensating", {{"wait", "signal"}, {"rethrow", true}})
                    .status.ok());
  BOOST_REQUIRE(h.Cancel("c-sig").status.ok());
  BOOST_TEST(h.Result("c-sig").status == records::WORKFLOW_STATUS_CANCELLED);
  BOOST_TEST(h.Kinds("c-sig") ==
                 (std::vector<K>{K::kWorkflowStarted, K::kWorkflowCancelRequested,
                                 K::kActivityScheduled, K::kActivityStarted, K::kActivityCompleted,
                                 K::kWorkflowCancelled}),
             Harness::Describe(h.History("c-sig")));
  // A signal to the closed run is refused.
  BOOST_TEST(h.engine->Signal("c-sig", "go", JsonPayload(1)).status.code() ==
             StatusCode::kNotRunning);
}

BOOST_AUTO_TEST_CASE(a_compensation_cut_off_by_a_restart_is_replayed_and_finished) {
  Harness h;
  h.Open();
  BOOST_REQUIRE(
      h.Start("c-restart", "compensating", {{"wait", "activity"}, {"undo", "block"}}).status.ok());
  h.WaitRows("c-restart", records::OutboxRow::KIND_ACTIVITY_TASK, 1);
  BOOST_REQUIRE(h.Cancel("c-restart").status.ok());
  BOOST_REQUIRE(WaitFor([&] { return h.block_calls.load() == 1; }));
  const auto before = h.History("c-restart");
  h.Restart();  // rebuilt by replay through the cancel; the compensation runs again
  BOOST_REQUIRE(WaitFor([&] { return h.block_calls.load() == 2; }));
  h.gate.Open();
  BOOST_TEST(h.Output("c-restart") == (Json{{"compensated", "u"}}));
  BOOST_TEST(h.engine->Describe("c-restart")->parked_error.empty());
  auto hist = h.History("c-restart");
  BOOST_TEST(h.Count(hist, K::kActivityCancelRequested) == 1);
  BOOST_TEST(h.Count(hist, K::kActivityScheduled) == 2, Harness::Describe(hist));
  BOOST_TEST(hist.size() == before.size() + 2);  // + ActivityCompleted, WorkflowCompleted
}

BOOST_AUTO_TEST_CASE(a_second_cancel_is_dropped_and_closed_or_unknown_runs_refuse_it) {
  Harness h;
  h.Open();
  // Compensates with the blocking local activity: the run stays open.
  auto started = h.Start("c2", "compensating", {{"wait", "signal"}, {"undo", "block"}});
  BOOST_REQUIRE(started.status.ok());
  auto first = h.Cancel("c2");
  BOOST_REQUIRE(first.status.ok());
  BOOST_REQUIRE(WaitFor([&] { return h.block_calls.load() == 1; }));
  const auto before = h.History("c2").size();
  auto second = h.Cancel("c2", "again");
  BOOST_TEST(second.status.ok());
  BOOST_TEST(second.dropped);
  BOOST_TEST(second.seq == 0u);
  BOOST_TEST(second.run_id == started.run_id);
  BOOST_TEST(h.History("c2").size() == before);
  // The compensation was not interrupted: the request is delivered once.
  h.gate.Open();
  BOOST_TEST(h.Output("c2") == (Json{{"compensated", "u"}}));
  BOOST_TEST(h.block_cancelled.load() == 0);
  BOOST_TEST(h.Count(h.History("c2"), K::kWorkflowCancelRequested) == 1);
  BOOST_TEST(h.Count(h.History("c2"), K::kActivityCancelRequested) == 0);

  const auto closed_size = h.History("c2").size();
  auto closed = h.Cancel("c2");
  BOOST_TEST(closed.status.code() == StatusCode::kNotRunning);
  BOOST_TEST(!closed.dropped);
  BOOST_TEST(h.History("c2").size() == closed_size);
  BOOST_TEST(h.Cancel("nobody").status.code() == StatusCode::kNotFound);
  BOOST_TEST(h.engine->Describe("nobody").status().code() == StatusCode::kNotFound);
}

BOOST_AUTO_TEST_CASE(terminate_cancels_what_the_run_waits_for_and_removes_its_rows) {
  Harness h;
  h.Open();
  auto started = h.Start("term", "pending", nullptr);
  BOOST_REQUIRE(started.status.ok());
  h.WaitSize("term", 4);  // TimerStarted, ActivityScheduled, ActivityStarted
  auto rows = h.TimerRows("term");
  BOOST_REQUIRE_EQUAL(rows.size(), 2u);  // "t" and "activity/1"
  auto term = h.Terminate("term", "operator said so");
  BOOST_TEST(term.status.ok());
  BOOST_TEST(term.seq == 7u);
  BOOST_TEST(term.run_id == started.run_id);
  Outcome o = h.Result("term");
  BOOST_TEST(o.status == records::WORKFLOW_STATUS_TERMINATED);
  BOOST_TEST(o.failure == "operator said so");
  auto hist = h.History("term");
  BOOST_TEST(h.Kinds("term") ==
                 (std::vector<K>{K::kWorkflowStarted, K::kTimerStarted, K::kActivityScheduled,
                                 K::kActivityStarted, K::kTimerCancelled,
                                 K::kActivityCancelRequested, K::kWorkflowTerminated}),
             Harness::Describe(hist));
  BOOST_TEST(hist[4].caused_by() == 0u);
  BOOST_TEST(hist[4].timer_cancelled().timer_id() == "t");
  BOOST_TEST(hist[5].caused_by() == 0u);
  BOOST_TEST(hist[5].activity_cancel_requested().activity_id() == "1");
  BOOST_TEST(hist[6].caused_by() == 0u);
  BOOST_TEST(hist[6].workflow_terminated().reason() == "operator said so");
  BOOST_TEST(!hist[6].workflow_terminated().timed_out());
  auto rec = h.Record("term");
  BOOST_TEST(rec.timers_size() == 0);
  BOOST_TEST(rec.activities_size() == 0);
  BOOST_TEST(h.TimerRows("term").empty());
  auto cancels = h.WaitRows("term", records::OutboxRow::KIND_ACTIVITY_CANCEL, 1);
  BOOST_TEST(cancels[0].task().reason() == "workflow terminated");
  BOOST_TEST(h.WaitRows("term", records::OutboxRow::KIND_LIFECYCLE, 2)
                 .back()
                 .event()
                 .has_workflow_terminated());
  // Nothing more happens to it.
  auto late = h.engine->Send(Harness::ResultMsg("term", started.run_id, "1", 1, "late"));
  BOOST_TEST(late.status.ok());
  BOOST_TEST(late.dropped);
  BOOST_TEST(h.Terminate("term").status.code() == StatusCode::kNotRunning);
  BOOST_TEST(h.Terminate("nobody").status.code() == StatusCode::kNotFound);
  BOOST_TEST(h.engine->Signal("term", "go", JsonPayload(1)).status.code() ==
             StatusCode::kNotRunning);
  h.clock.Advance(3h);
  Settle();
  BOOST_TEST(h.History("term").size() == hist.size());
  BOOST_TEST(h.engine->Describe("term")->parked_error.empty());
}

BOOST_AUTO_TEST_CASE(terminate_stops_a_running_local_activity) {
  Harness h;
  h.Open();
  auto started = h.Start("term-local", "call", {{"type", "block"}, {"input", 1}});
  BOOST_REQUIRE(started.status.ok());
  BOOST_REQUIRE(WaitFor([&] { return h.block_calls.load() == 1; }));
  BOOST_REQUIRE(h.Terminate("term-local").status.ok());
  BOOST_REQUIRE(WaitFor([&] { return h.block_cancelled.load() == 1; }));
  BOOST_TEST(h.Result("term-local").status == records::WORKFLOW_STATUS_TERMINATED);
  BOOST_TEST(h.Kinds("term-local") ==
                 (std::vector<K>{K::kWorkflowStarted, K::kActivityScheduled, K::kActivityStarted,
                                 K::kActivityCancelRequested, K::kWorkflowTerminated}),
             Harness::Describe(h.History("term-local")));
  BOOST_TEST(h.sink.Cancels().empty());
}

BOOST_AUTO_TEST_CASE(a_queued_local_attempt_that_is_cancelled_never_runs) {
  Harness h;
  h.pool_threads = 1;
  h.Open();
  // "busy" holds the only pool thread; "queued"'s echo waits behind it.
  BOOST_REQUIRE(h.Start("busy", "call", {{"type", "block"}, {"input", 1}}).status.ok());
  BOOST_REQUIRE(WaitFor([&] { return h.block_calls.load() == 1; }));
  BOOST_REQUIRE(h.Start("queued", "call", {{"type", "echo"}, {"input", 2}}).status.ok());
  h.WaitCount("queued", K::kActivityStarted, 1);
  BOOST_REQUIRE(h.Terminate("queued").status.ok());
  BOOST_TEST(h.Result("queued").status == records::WORKFLOW_STATUS_TERMINATED);
  // The writer acks before it applies a commit's effects (the pool's
  // cancel); a second request passes through it only after they ran.
  BOOST_TEST(h.Terminate("queued").status.code() == StatusCode::kNotRunning);
  h.gate.Open();
  BOOST_TEST(h.Output("busy") == (Json{{"result", 1}}));
  // FIFO on one thread: once "after" ran, the cancelled attempt was dequeued.
  BOOST_REQUIRE(h.Start("after", "call", {{"type", "echo"}, {"input", 3}}).status.ok());
  BOOST_TEST(h.Output("after") == (Json{{"result", 3}}));
  BOOST_TEST(h.echo_calls.load() == 1);  // only "after": the terminated run's echo never ran
}

BOOST_AUTO_TEST_CASE(run_timeout_terminates_the_run_as_timed_out) {
  Harness h;
  h.Open();
  const Timestamp t0 = h.clock.Now();
  auto started = h.Start("rt", "pending", nullptr, /*run_timeout_us=*/10'000'000);
  BOOST_REQUIRE(started.status.ok());
  BOOST_TEST(h.History("rt")[0].workflow_started().run_timeout_us() == 10'000'000);
  h.WaitSize("rt", 4);
  BOOST_TEST(h.Record("rt").run_deadline_us() == t0 + 10'000'000);
  bool has_row = false;
  for (const auto& r : h.TimerRows("rt")) {
    if (r.timer_id() == "run/timeout") {
      has_row = true;
      BOOST_TEST(r.fire_at_us() == t0 + 10'000'000);
      BOOST_TEST(r.run_id() == started.run_id);
    }
  }
  BOOST_TEST(has_row);
  h.clock.Set(t0 + 9'999'999);
  Settle();
  BOOST_TEST(h.Record("rt").status() == records::WORKFLOW_STATUS_RUNNING);
  h.clock.Set(t0 + 10'000'000);
  Outcome o = h.Result("rt");
  BOOST_TEST(o.status == records::WORKFLOW_STATUS_TIMED_OUT);
  BOOST_TEST(h.Kinds("rt") ==
                 (std::vector<K>{K::kWorkflowStarted, K::kTimerStarted, K::kActivityScheduled,
                                 K::kActivityStarted, K::kTimerCancelled,
                                 K::kActivityCancelRequested, K::kWorkflowTerminated}),
             Harness::Describe(h.History("rt")));
  BOOST_TEST(h.History("rt").back().workflow_terminated().timed_out());
  BOOST_TEST(h.TimerRows("rt").empty());
  BOOST_TEST(h.Record("rt").run_deadline_us() == 0);
  auto cancels = h.WaitRows("rt", records::OutboxRow::KIND_ACTIVITY_CANCEL, 1);
  BOOST_TEST(cancels[0].task().reason() == "workflow timed out");
}

BOOST_AUTO_TEST_CASE(a_run_that_completes_first_leaves_no_run_timeout_row) {
  Harness h;
  h.Open();
  const Timestamp t0 = h.clock.Now();
  BOOST_REQUIRE(
      h.Start("rt-ok", "call", {{"type", "echo"}, {"input", 7}}, 10'000'000).status.ok());
  BOOST_TEST(h.Output("rt-ok") == (Json{{"result", 7}}));
  BOOST_TEST(h.TimerRows("rt-ok").empty());
  BOOST_TEST(h.Record("rt-ok").run_deadline_us() == 0);
  h.clock.Set(t0 + 20'000'000);
  Settle();
  BOOST_TEST(h.Record("rt-ok").status() == records::WORKFLOW_STATUS_COMPLETED);
  BOOST_TEST(h.History("rt-ok").size() == 5u);
  BOOST_TEST(h.Start("rt-neg", "call", {{"type", "echo"}}, -1).status.code() ==
             StatusCode::kInvalidArgument);
}

BOOST_AUTO_TEST_CASE(a_run_timeout_survives_a_restart) {
  Harness h;
  h.Open();
  const Timestamp t0 = h.clock.Now();
  BOOST_REQUIRE(h.Start("rt-r", "compensating", {{"wait", "signal"}}, 5'000'000).status.ok());
  BOOST_REQUIRE(WaitFor([&] { return !h.TimerRows("rt-r").empty(); }));
  h.Close();
  h.clock.Set(t0 + 6'000'000);  // due while the engine is down
  h.Open();
  BOOST_TEST(h.Result("rt-r").status == records::WORKFLOW_STATUS_TIMED_OUT);
  BOOST_TEST(h.Kinds("rt-r") == (std::vector<K>{K::kWorkflowStarted, K::kWorkflowTerminated}),
             Harness::Describe(h.History("rt-r")));
  BOOST_TEST(h.TimerRows("rt-r").empty());
}
