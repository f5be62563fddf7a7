// Replay of canned histories through RunMachine (the engine's private core).
// Each case lists the history it feeds, event by event, so the expected
// behaviour can be checked by reading the test alone.
#define BOOST_TEST_MODULE replay_test
#include <boost/test/unit_test.hpp>
#include <chrono>

#include "activity_harness.h"
#include "aion/engine/registry.h"
#include "aion/examples/reference_workflows.h"
#include "run_machine.h"

using namespace aion;
using namespace std::chrono_literals;

namespace {

constexpr Timestamp kT0 = 1'700'000'000'000'000;
constexpr char kRun[] = "run-1";
// A machine refers to its workflow id; this one outlives them all.
const std::string kWf = "wf";

HistoryEvent Ev(std::uint64_t seq, Timestamp at, std::uint64_t caused_by = 0) {
  HistoryEvent e;
  e.set_seq(seq);
  e.set_recorded_at_us(at);
  e.set_run_id(kRun);
  e.set_caused_by(caused_by);
  return e;
}
HistoryEvent Started(std::uint64_t seq, const std::string& type, const Json& input,
                     const std::string& version = "1") {
  HistoryEvent e = Ev(seq, kT0);
  e.mutable_workflow_started()->set_workflow_type(type);
  *e.mutable_workflow_started()->mutable_input() = JsonPayload(input);
  e.mutable_workflow_started()->set_code_version(version);
  return e;
}
HistoryEvent TimerStarted(std::uint64_t seq, std::uint64_t cause, const std::string& id,
                          Timestamp fire_at) {
  HistoryEvent e = Ev(seq, kT0, cause);
  e.mutable_timer_started()->set_timer_id(id);
  e.mutable_timer_started()->set_fire_at_us(fire_at);
  return e;
}
HistoryEvent TimerFired(std::uint64_t seq, Timestamp at, const std::string& id) {
  HistoryEvent e = Ev(seq, at);
  e.mutable_timer_fired()->set_timer_id(id);
  return e;
}
HistoryEvent TimerCancelled(std::uint64_t seq, std::uint64_t cause, const std::string& id) {
  HistoryEvent e = Ev(seq, kT0, cause);
  e.mutable_timer_cancelled()->set_timer_id(id);
  return e;
}
HistoryEvent Signal(std::uint64_t seq, Timestamp at, const std::string& name, const Json& input) {
  HistoryEvent e = Ev(seq, at);
  e.mutable_signal_received()->set_name(name);
  *e.mutable_signal_received()->mutable_input() = JsonPayload(input);
  return e;
}
HistoryEvent Completed(std::uint64_t seq, std::uint64_t cause, const Json& output) {
  HistoryEvent e = Ev(seq, kT0, cause);
  *e.mutable_workflow_completed()->mutable_output() = JsonPayload(output);
  return e;
}

// Activity events. Commands carry caused_by; inputs are recorded `at`.
HistoryEvent Scheduled(std::uint64_t seq, std::uint64_t cause, const std::string& id,
                       const std::string& type) {
  HistoryEvent e = Ev(seq, kT0, cause);
  e.mutable_activity_scheduled()->set_activity_id(id);
  e.mutable_activity_scheduled()->set_activity_type(type);
  return e;
}
HistoryEvent ActStarted(std::uint64_t seq, Timestamp at, const std::string& id,
                        std::uint32_t attempt) {
  HistoryEvent e = Ev(seq, at);
  e.mutable_activity_started()->set_activity_id(id);
  e.mutable_activity_started()->set_attempt(attempt);
  return e;
}
HistoryEvent ActCompleted(std::uint64_t seq, Timestamp at, const std::string& id,
                          std::uint32_t attempt, const Json& result) {
  HistoryEvent e = Ev(seq, at);
  e.mutable_activity_completed()->set_activity_id(id);
  e.mutable_activity_completed()->set_attempt(attempt);
  *e.mutable_activity_completed()->mutable_result() = JsonPayload(result);
  return e;
}
HistoryEvent ActFailed(std::uint64_t seq, Timestamp at, const std::string& id,
                       std::uint32_t attempt, const std::string& type, Timestamp retry_at) {
  HistoryEvent e = Ev(seq, at);
  auto* f = e.mutable_activity_failed();
  f->set_activity_id(id);
  f->set_attempt(attempt);
  f->mutable_failure()->set_message("failed on attempt " + std::to_string(attempt));
  f->mutable_failure()->set_error_type(type);
  f->set_retry_at_us(retry_at);
  return e;
}
HistoryEvent ActTimedOut(std::uint64_t seq, Timestamp at, const std::string& id,
                         std::uint32_t attempt, history::TimeoutKind kind, Timestamp retry_at) {
  HistoryEvent e = Ev(seq, at);
  auto* t = e.mutable_activity_timed_out();
  t->set_activity_id(id);
  t->set_attempt(attempt);
  t->set_kind(kind);
  t->set_retry_at_us(retry_at);
  return e;
}
HistoryEvent ActCancel(std::uint64_t seq, std::uint64_t cause, const std::string& id) {
  HistoryEvent e = Ev(seq, kT0, cause);
  e.mutable_activity_cancel_requested()->set_activity_id(id);
  return e;
}
HistoryEvent CancelRequested(std::uint64_t seq, Timestamp at) {
  HistoryEvent e = Ev(seq, at);
  e.mutable_workflow_cancel_requested()->set_reason("asked");
  return e;
}
HistoryEvent Terminated(std::uint64_t seq, Timestamp at, bool timed_out) {
  HistoryEvent e = Ev(seq, at);
  e.mutable_workflow_terminated()->set_reason(timed_out ? "run timeout passed" : "stop");
  e.mutable_workflow_terminated()->set_timed_out(timed_out);
  return e;
}
HistoryEvent WorkflowCancelled(std::uint64_t seq, std::uint64_t cause) {
  HistoryEvent e = Ev(seq, kT0, cause);
  e.mutable_workflow_cancelled()->set_message("cancelled");
  return e;
}

// Child events. Commands carry caused_by; closes are inputs recorded `at`.
HistoryEvent ChildScheduled(std::uint64_t seq, std::uint64_t cause, const std::string& ref,
                            const std::string& id, const std::string& type) {
  HistoryEvent e = Ev(seq, kT0, cause);
  auto* c = e.mutable_child_workflow_scheduled();
  c->set_child_ref(ref);
  c->set_workflow_id(id);
  c->set_workflow_type(type);
  return e;
}
HistoryEvent ChildClosed(std::uint64_t seq, Timestamp at, const std::string& ref,
                         history::ChildStatus status, const Json& output) {
  HistoryEvent e = Ev(seq, at);
  auto* c = e.mutable_child_workflow_closed();
  c->set_child_ref(ref);
  c->set_status(status);
  if (status == history::CHILD_STATUS_COMPLETED) *c->mutable_output() = JsonPayload(output);
  if (status != history::CHILD_STATUS_COMPLETED) c->set_failure(output.get<std::string>());
  return e;
}

// A child races a 1 s timer.
Task<Json> ChildOrDeadline(Context& ctx, Json) {
  ChildOptions options{.workflow_id = "kid"};
  auto kid = ctx.child<Json>("noop", Json(1), options);
  Timer deadline = ctx.timer("deadline", 1s);
  const std::size_t winner = co_await ctx.first(kid, deadline);
  co_return winner;
}

Task<Json> SignalOrTimeout(Context& ctx, Json) {
  auto got = co_await ctx.signal<Json>("go").within(10s);
  co_return got ? *got : Json("timeout");
}

Task<Json> Deterministic(Context& ctx, Json) {
  Json out{{"now", ctx.now_us()}, {"random", ctx.random()}, {"uuid", ctx.uuid()}};
  co_await ctx.sleep(1s);
  out["after_sleep_now"] = ctx.now_us();
  co_return out;
}

Task<Json> RunIdEcho(Context& ctx, Json) { co_return Json(std::string(ctx.run_id())); }

struct Fixture {
  Fixture() {
    BOOST_REQUIRE(examples::RegisterReferenceWorkflows(registry).ok());
    BOOST_REQUIRE(registry.workflow("signal_or_timeout", &SignalOrTimeout).ok());
    BOOST_REQUIRE(registry.workflow("deterministic", &Deterministic).ok());
    BOOST_REQUIRE(registry.workflow("call", &aion::testing::CallActivity).ok());
    BOOST_REQUIRE(registry.workflow("cancel_on_signal", &aion::testing::CancelOnSignal).ok());
    BOOST_REQUIRE(registry.workflow("race_timer", &aion::testing::RaceTimer).ok());
    BOOST_REQUIRE(registry.workflow("compensating", &aion::testing::Compensating).ok());
    BOOST_REQUIRE(registry.workflow("pending", &aion::testing::Pending).ok());
    BOOST_REQUIRE(registry.workflow("child_or_deadline", &ChildOrDeadline).ok());
    BOOST_REQUIRE(registry.workflow("run_id_echo", &RunIdEcho).ok());
  }
  // Applies `history` in order; returns the first error.
  Status Replay(RunMachine& m, const std::vector<HistoryEvent>& history) {
    m.set_replaying(true);
    for (const auto& e : history) AION_RETURN_IF_ERROR(m.Apply(e));
    return Status::Ok();
  }
  WorkflowRegistry registry;
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(replay, Fixture)

// 1 WorkflowStarted(noop, {"a":1})  2 WorkflowCompleted(caused_by 1)
BOOST_AUTO_TEST_CASE(noop_history_replays_with_no_new_commands) {
  RunMachine m(kWf, &registry);
  BOOST_REQUIRE(Replay(m, {Started(1, "noop", {{"a", 1}}), Completed(2, 1, {{"a", 1}})}).ok());
  BOOST_TEST(m.terminal_recorded());
  BOOST_TEST(m.TakeNewCommands().empty());
}

// 1 WorkflowStarted(timer_signal, sleep 1000 ms, signal "go")
// 2 TimerStarted(#1, t0+1s, caused_by 1)  3 TimerFired(#1)
// 4 SignalReceived(go, "x")               5 WorkflowCompleted(caused_by 4)
BOOST_AUTO_TEST_CASE(timer_signal_history_replays_cleanly) {
  RunMachine m(kWf, &registry);
  const Timestamp fire = kT0 + 1'000'000;
  BOOST_REQUIRE(Replay(m, {Started(1, "timer_signal", {{"sleep_ms", 1000}, {"signal", "go"}}),
                           TimerStarted(2, 1, "#1", fire), TimerFired(3, fire, "#1"),
                           Signal(4, fire + 5, "go", "x"),
                           Completed(5, 4, {{"slept_ms", 1000}, {"signal", "x"}})})
                    .ok());
  BOOST_TEST(m.TakeNewCommands().empty());
}

// A signal recorded before the command of the previous input:
// 1 WorkflowStarted  2 SignalReceived(go) (arrived while the code ran)
// 3 TimerStarted(#1, caused_by 1)  4 TimerFired(#1)  5 WorkflowCompleted(caused_by 4)
BOOST_AUTO_TEST_CASE(early_signal_between_input_and_its_commands) {
  RunMachine m(kWf, &registry);
  const Timestamp fire = kT0 + 1'000'000;
  BOOST_REQUIRE(
      Replay(m, {Started(1, "timer_signal", {{"sleep_ms", 1000}, {"signal", "go"}}),
                 Signal(2, kT0 + 1, "go", 7), TimerStarted(3, 1, "#1", fire),
                 TimerFired(4, fire, "#1"), Completed(5, 4, {{"slept_ms", 1000}, {"signal", 7}})})
          .ok());
  BOOST_TEST(m.TakeNewCommands().empty());
}

// History cut short by a crash after the start was recorded:
// 1 WorkflowStarted   -> the code issues TimerStarted(#1) again, caused_by 1.
BOOST_AUTO_TEST_CASE(commands_lost_in_a_crash_are_issued_again) {
  RunMachine m(kWf, &registry);
  BOOST_REQUIRE(Replay(m, {Started(1, "timer_signal", {{"sleep_ms", 250}})}).ok());
  auto cmds = m.TakeNewCommands();
  BOOST_REQUIRE_EQUAL(cmds.size(), 1u);
  BOOST_TEST(cmds[0].event.timer_started().timer_id() == "#1");
  BOOST_TEST(cmds[0].event.timer_started().fire_at_us() == kT0 + 250'000);
  BOOST_TEST(cmds[0].event.caused_by() == 1u);
  BOOST_TEST(cmds[0].ordinal == 0u);
  BOOST_TEST(m.TakeNewCommands().empty());  // handed out once
}

// 1 WorkflowStarted(sleep 1000 ms)  2 TimerStarted(#1, t0+2s)  <- code now computes t0+1s
BOOST_AUTO_TEST_CASE(changed_timer_is_nondeterminism_naming_the_seq) {
  RunMachine m(kWf, &registry);
  Status s = Replay(m, {Started(1, "timer_signal", {{"sleep_ms", 1000}}),
                        TimerStarted(2, 1, "#1", kT0 + 2'000'000)});
  BOOST_TEST(s.code() == StatusCode::kNondeterminism);
  BOOST_TEST(s.message().find("seq 2") != std::string::npos);
  BOOST_TEST(s.message().find("fire_at_us=" + std::to_string(kT0 + 2'000'000)) !=
             std::string::npos);
  BOOST_TEST(s.message().find("fire_at_us=" + std::to_string(kT0 + 1'000'000)) !=
             std::string::npos);
}

// 1 WorkflowStarted(noop)  2 TimerStarted(#1)   <- noop completes instead
BOOST_AUTO_TEST_CASE(different_command_kind_is_nondeterminism) {
  RunMachine m(kWf, &registry);
  Status s = Replay(m, {Started(1, "noop", 1), TimerStarted(2, 1, "#1", kT0 + 5)});
  BOOST_TEST(s.code() == StatusCode::kNondeterminism);
  BOOST_TEST(s.message().find("WorkflowCompleted") != std::string::npos);
}

// 1 WorkflowStarted(noop)  2 WorkflowCompleted  3 TimerStarted   <- code issued nothing more
BOOST_AUTO_TEST_CASE(extra_recorded_command_is_nondeterminism) {
  RunMachine m(kWf, &registry);
  Status s = Replay(m, {Started(1, "noop", 1), Completed(2, 1, 1), TimerStarted(3, 1, "#1", 1)});
  BOOST_TEST(s.code() == StatusCode::kNondeterminism);
  BOOST_TEST(s.message().find("seq 3") != std::string::npos);
}

// 1 WorkflowStarted(signal_or_timeout)  2 TimerStarted(#1, t0+10s)
// 3 SignalReceived(go)   -> code cancels #1 and completes (caused_by 3)
// 4 TimerFired(#1)       <- recorded before the cancel reached the writer,
//                           which therefore recorded no TimerCancelled
// 5 WorkflowCompleted(caused_by 3)
BOOST_AUTO_TEST_CASE(cancel_that_lost_the_race_to_the_fire_is_dropped) {
  RunMachine m(kWf, &registry);
  const Timestamp fire = kT0 + 10'000'000;
  BOOST_REQUIRE(Replay(m, {Started(1, "signal_or_timeout", nullptr), TimerStarted(2, 1, "#1", fire),
                           Signal(3, fire - 1, "go", "yes"), TimerFired(4, fire, "#1"),
                           Completed(5, 3, "yes")})
                    .ok());
  BOOST_TEST(m.TakeNewCommands().empty());
}

// Same start, the cancel won: 3 SignalReceived  4 TimerCancelled(#1, caused_by 3)
// 5 WorkflowCompleted(caused_by 3)
BOOST_AUTO_TEST_CASE(cancel_recorded_before_fire) {
  RunMachine m(kWf, &registry);
  const Timestamp fire = kT0 + 10'000'000;
  BOOST_REQUIRE(Replay(m, {Started(1, "signal_or_timeout", nullptr), TimerStarted(2, 1, "#1", fire),
                           Signal(3, kT0 + 5, "go", "yes"), TimerCancelled(4, 3, "#1"),
                           Completed(5, 3, "yes")})
                    .ok());
}

// The timer wins: 3 TimerFired(#1)  4 WorkflowCompleted("timeout", caused_by 3);
// a later signal 5 is kept but nothing waits for it.
BOOST_AUTO_TEST_CASE(timeout_path_replays) {
  RunMachine m(kWf, &registry);
  const Timestamp fire = kT0 + 10'000'000;
  BOOST_REQUIRE(Replay(m, {Started(1, "signal_or_timeout", nullptr), TimerStarted(2, 1, "#1", fire),
                           TimerFired(3, fire, "#1"), Completed(4, 3, "timeout")})
                    .ok());
  BOOST_TEST(m.terminal_recorded());
}

// now(), random() and uuid() are the same on every replay of one run.
// 1 WorkflowStarted(run_id_echo), with the run id of the writer's length (32,
// kept inline) and longer ones (kept apart) -> WorkflowCompleted(run id).
BOOST_AUTO_TEST_CASE(the_code_sees_its_run_id_of_any_length) {
  for (const std::string& run_id :
       {std::string(32, 'a'), std::string(33, 'b'), std::string(200, 'c'), std::string("r")}) {
    RunMachine m(kWf, &registry);
    HistoryEvent started = Started(1, "run_id_echo", nullptr);
    started.set_run_id(run_id);
    BOOST_REQUIRE(m.Apply(started).ok());
    auto cmds = m.TakeNewCommands();
    BOOST_REQUIRE_EQUAL(cmds.size(), 1u);
    BOOST_TEST(*ParseJsonPayload(cmds[0].event.workflow_completed().output()) == Json(run_id));
    BOOST_TEST(m.RunId() == run_id);
  }
}

BOOST_AUTO_TEST_CASE(time_randomness_and_ids_are_deterministic) {
  auto run_once = [&] {
    RunMachine m(kWf, &registry);
    const Timestamp fire = kT0 + 1'000'000;
    BOOST_REQUIRE(Replay(m, {Started(1, "deterministic", nullptr), TimerStarted(2, 1, "#1", fire),
                             TimerFired(3, fire + 42, "#1")})
                      .ok());
    auto cmds = m.TakeNewCommands();
    BOOST_REQUIRE_EQUAL(cmds.size(), 1u);
    return *ParseJsonPayload(cmds[0].event.workflow_completed().output());
  };
  Json a = run_once();
  Json b = run_once();
  BOOST_TEST(a == b);
  BOOST_TEST(a["now"] == kT0);
  BOOST_TEST(a["after_sleep_now"] == kT0 + 1'000'042);
  BOOST_TEST(a["uuid"].get<std::string>().size() == 36u);
}

// A history whose type is unknown here, or pinned to another code version.
BOOST_AUTO_TEST_CASE(unknown_type_or_version_parks) {
  RunMachine a(kWf, &registry);
  BOOST_TEST(Replay(a, {Started(1, "gone", 1)}).code() == StatusCode::kUnknownWorkflowType);
  RunMachine b(kWf, &registry);
  Status s = Replay(b, {Started(1, "noop", 1, "7")});
  BOOST_TEST(s.code() == StatusCode::kUnknownWorkflowType);
  BOOST_TEST(s.message().find("version '7'") != std::string::npos);
}

// 1 WorkflowStarted  3 ...  <- seq 2 missing
BOOST_AUTO_TEST_CASE(gap_in_history_is_internal_error) {
  RunMachine m(kWf, &registry);
  Status s = Replay(m, {Started(1, "timer_signal", {{"sleep_ms", 1}}), TimerFired(3, kT0, "#1")});
  BOOST_TEST(s.code() == StatusCode::kInternal);
}

// ---------------------------------------------------------------------------
// Activities, cancellation and termination.

// The one command a truncated history leaves the code to issue.
HistoryEvent OnlyCommand(RunMachine& m) {
  auto cmds = m.TakeNewCommands();
  BOOST_REQUIRE_EQUAL(cmds.size(), 1u);
  return cmds[0].event;
}

// 1 WorkflowStarted(call: echo "x")  2 ActivityScheduled(1, echo, caused_by 1)
// 3 ActivityStarted(1, attempt 1)      4 ActivityCompleted(1, attempt 1, "x")
// 5 WorkflowCompleted({"result":"x"}, caused_by 4)
BOOST_AUTO_TEST_CASE(activity_completed_history_replays) {
  const std::vector<HistoryEvent> h = {Started(1, "call", {{"type", "echo"}, {"input", "x"}}),
                                       Scheduled(2, 1, "1", "echo"), ActStarted(3, kT0, "1", 1),
                                       ActCompleted(4, kT0 + 7, "1", 1, "x"),
                                       Completed(5, 4, {{"result", "x"}})};
  RunMachine full(kWf, &registry);
  BOOST_REQUIRE(Replay(full, h).ok());
  BOOST_TEST(full.terminal_recorded());
  BOOST_TEST(full.TakeNewCommands().empty());
  // Cut before the terminal: the result reaches the code, which completes.
  RunMachine cut(kWf, &registry);
  BOOST_REQUIRE(Replay(cut, {h.begin(), h.end() - 1}).ok());
  const HistoryEvent done = OnlyCommand(cut);
  BOOST_TEST(done.caused_by() == 4u);
  BOOST_TEST(*ParseJsonPayload(done.workflow_completed().output()) == (Json{{"result", "x"}}));
}

// 1 WorkflowStarted(call: flaky)   2 ActivityScheduled(1, flaky, caused_by 1)
// 3 ActivityStarted(1, 1)  4 ActivityFailed(1, 1, retry_at t0+1s)
// 5 ActivityStarted(1, 2)  6 ActivityFailed(1, 2, retry_at t0+3s)
// 7 ActivityStarted(1, 3)  8 ActivityCompleted(1, 3, 3)
// 9 WorkflowCompleted({"result":3}, caused_by 8)
// Non-final failures do not wake the code.
BOOST_AUTO_TEST_CASE(activity_failed_twice_then_completed_replays) {
  const std::vector<HistoryEvent> h = {
      Started(1, "call", {{"type", "flaky"}, {"input", nullptr}}),
      Scheduled(2, 1, "1", "flaky"),
      ActStarted(3, kT0, "1", 1),
      ActFailed(4, kT0, "1", 1, "Flaky", kT0 + 1'000'000),
      ActStarted(5, kT0 + 1'000'000, "1", 2),
      ActFailed(6, kT0 + 1'000'000, "1", 2, "Flaky", kT0 + 3'000'000),
      ActStarted(7, kT0 + 3'000'000, "1", 3),
      ActCompleted(8, kT0 + 3'000'000, "1", 3, 3),
      Completed(9, 8, {{"result", 3}})};
  RunMachine full(kWf, &registry);
  BOOST_REQUIRE(Replay(full, h).ok());
  BOOST_TEST(full.TakeNewCommands().empty());
  RunMachine retrying(kWf, &registry);
  BOOST_REQUIRE(Replay(retrying, {h.begin(), h.begin() + 7}).ok());
  BOOST_TEST(retrying.TakeNewCommands().empty());  // still waiting
  BOOST_REQUIRE(retrying.Apply(h[7]).ok());
  const HistoryEvent done = OnlyCommand(retrying);
  BOOST_TEST(done.caused_by() == 8u);
  BOOST_TEST(*ParseJsonPayload(done.workflow_completed().output()) == (Json{{"result", 3}}));
}

// 1 WorkflowStarted(call: work on queue q, start-to-close 5 s, one attempt)
// 2 ActivityScheduled(1, work, caused_by 1)  3 ActivityStarted(1, 1)
// 4 ActivityTimedOut(1, 1, start_to_close, final)
// -> the code sees ActivityFailedError and completes with it (caused_by 4)
BOOST_AUTO_TEST_CASE(activity_timed_out_for_good_replays) {
  RunMachine m(kWf, &registry);
  const Json in = {{"type", "work"},
                   {"input", 1},
                   {"options", {{"task_queue", "q"}, {"start_to_close_ms", 5000}}}};
  BOOST_REQUIRE(
      Replay(m, {Started(1, "call", in), Scheduled(2, 1, "1", "work"), ActStarted(3, kT0, "1", 1),
                 ActTimedOut(4, kT0 + 5'000'000, "1", 1, history::TIMEOUT_KIND_START_TO_CLOSE, 0)})
          .ok());
  const HistoryEvent done = OnlyCommand(m);
  BOOST_TEST(done.caused_by() == 4u);
  BOOST_TEST(*ParseJsonPayload(done.workflow_completed().output()) ==
             (Json{{"failed", "activity 1 timed out (start_to_close) on attempt 1"},
                   {"type", "start_to_close"},
                   {"attempt", 1},
                   {"timed_out", true}}));
  BOOST_REQUIRE(m.Apply(Completed(5, 4, nullptr)).ok());
  BOOST_TEST(m.terminal_recorded());
}

// 1 WorkflowStarted(compensating: wait on activity)
// 2 ActivityScheduled(1, work, caused_by 1)  3 ActivityStarted(1, 1)
// 4 WorkflowCancelRequested
// 5 ActivityCancelRequested(1, caused_by 4)  6 ActivityScheduled(2, undo, caused_by 4)
// 7 ActivityStarted(2, 1)  8 ActivityCompleted(2, 1, "u")
// 9 WorkflowCompleted({"compensated":"u"}, caused_by 8)
// With rethrow the code ends 9 WorkflowCancelled(caused_by 8) instead.
BOOST_AUTO_TEST_CASE(cancel_request_while_waiting_on_an_activity_with_compensation) {
  auto history = [](const Json& input) {
    return std::vector<HistoryEvent>{Started(1, "compensating", input),
                                     Scheduled(2, 1, "1", "work"),
                                     ActStarted(3, kT0, "1", 1),
                                     CancelRequested(4, kT0 + 10),
                                     ActCancel(5, 4, "1"),
                                     Scheduled(6, 4, "2", "undo"),
                                     ActStarted(7, kT0 + 10, "2", 1),
                                     ActCompleted(8, kT0 + 20, "2", 1, "u")};
  };
  RunMachine full(kWf, &registry);
  auto h = history({{"wait", "activity"}});
  h.push_back(Completed(9, 8, {{"compensated", "u"}}));
  BOOST_REQUIRE(Replay(full, h).ok());
  BOOST_TEST(full.CancelRequested());
  BOOST_TEST(full.TakeNewCommands().empty());

  RunMachine rethrow(kWf, &registry);
  BOOST_REQUIRE(Replay(rethrow, history({{"wait", "activity"}, {"rethrow", true}})).ok());
  const HistoryEvent end = OnlyCommand(rethrow);
  BOOST_TEST(end.has_workflow_cancelled());
  BOOST_TEST(end.caused_by() == 8u);
  BOOST_TEST(end.workflow_cancelled().message() == "compensated, then cancelled");
  BOOST_REQUIRE(rethrow.Apply(WorkflowCancelled(9, 8)).ok());
  BOOST_TEST(rethrow.terminal_recorded());

  // Without the compensation in history the code issues it again.
  RunMachine cut(kWf, &registry);
  auto first4 = history({{"wait", "activity"}});
  first4.resize(4);
  BOOST_REQUIRE(Replay(cut, first4).ok());
  auto cmds = cut.TakeNewCommands();
  BOOST_REQUIRE_EQUAL(cmds.size(), 2u);
  BOOST_TEST(cmds[0].event.activity_cancel_requested().activity_id() == "1");
  BOOST_TEST(cmds[1].event.activity_scheduled().activity_type() == "undo");
  BOOST_TEST(cmds[0].event.caused_by() == 4u);
  BOOST_TEST(cmds[1].event.caused_by() == 4u);
}

// 1 WorkflowStarted(pending)  2 TimerStarted(t, t0+1h, caused_by 1)
// 3 ActivityScheduled(1, work, caused_by 1)  4 ActivityStarted(1, 1)
// 5 TimerCancelled(t, caused_by 0)  6 ActivityCancelRequested(1, caused_by 0)
// 7 WorkflowTerminated       (5 and 6 were recorded by the engine, not the code)
BOOST_AUTO_TEST_CASE(terminated_run_with_engine_recorded_cancels_replays) {
  for (bool timed_out : {false, true}) {
    RunMachine m(kWf, &registry);
    BOOST_REQUIRE(
        Replay(m,
               {Started(1, "pending", nullptr), TimerStarted(2, 1, "t", kT0 + 3'600'000'000),
                Scheduled(3, 1, "1", "work"), ActStarted(4, kT0, "1", 1), TimerCancelled(5, 0, "t"),
                ActCancel(6, 0, "1"), Terminated(7, kT0 + 50, timed_out)})
            .ok());
    BOOST_TEST(m.terminal_recorded());
    BOOST_TEST(m.TakeNewCommands().empty());
  }
}

// The code cancels after signal "stop", but the result was recorded first;
// the writer recorded nothing for the cancel:
// 1 WorkflowStarted(cancel_on_signal: work on q)  2 ActivityScheduled(1, caused_by 1)
// 3 ActivityStarted(1, 1)  4 SignalReceived(stop)  5 ActivityCompleted(1, 1, "won")
// 6 WorkflowCompleted("cancelled", caused_by 4)
// The same with the cancel recorded first: 5 ActivityCancelRequested(1, caused_by 4).
BOOST_AUTO_TEST_CASE(moot_activity_cancel_replays_cleanly) {
  const Json in = {{"type", "work"}, {"input", 1}, {"options", {{"task_queue", "q"}}}};
  for (bool result_first : {true, false}) {
    RunMachine m(kWf, &registry);
    BOOST_REQUIRE(
        Replay(m, {Started(1, "cancel_on_signal", in), Scheduled(2, 1, "1", "work"),
                   ActStarted(3, kT0, "1", 1), Signal(4, kT0 + 5, "stop", nullptr),
                   result_first ? ActCompleted(5, kT0 + 6, "1", 1, "won") : ActCancel(5, 4, "1"),
                   Completed(6, 4, "cancelled")})
            .ok());
    BOOST_TEST(m.terminal_recorded());
    BOOST_TEST(m.TakeNewCommands().empty());
  }
  // Losing a race with a timer, the result recorded before the cancel:
  // 1 WorkflowStarted(race_timer 5 s)  2 ActivityScheduled(1, caused_by 1)
  // 3 ActivityStarted  4 TimerStarted(#1, t0+5s, caused_by 1)  5 TimerFired(#1)
  // 6 ActivityCompleted(1, 1)  7 WorkflowCompleted("cancelled", caused_by 5)
  RunMachine race(kWf, &registry);
  const Json race_in = {
      {"type", "work"}, {"input", 1}, {"sleep_ms", 5000}, {"options", {{"task_queue", "q"}}}};
  BOOST_REQUIRE(
      Replay(race, {Started(1, "race_timer", race_in), Scheduled(2, 1, "1", "work"),
                    ActStarted(3, kT0, "1", 1), TimerStarted(4, 1, "#1", kT0 + 5'000'000),
                    TimerFired(5, kT0 + 5'000'000, "#1"),
                    ActCompleted(6, kT0 + 5'000'001, "1", 1, "x"), Completed(7, 5, "cancelled")})
          .ok());
  BOOST_TEST(race.TakeNewCommands().empty());
}

// 1 WorkflowStarted(call: type B)  2 ActivityScheduled(1, type A, caused_by 1)
// -> the code schedules B: nondeterminism at seq 2
BOOST_AUTO_TEST_CASE(changed_activity_type_is_nondeterminism_naming_the_seq) {
  RunMachine m(kWf, &registry);
  Status s =
      Replay(m, {Started(1, "call", {{"type", "B"}, {"input", 1}}), Scheduled(2, 1, "1", "A")});
  BOOST_TEST(s.code() == StatusCode::kNondeterminism);
  BOOST_TEST(s.message().find("seq 2") != std::string::npos, s.message());
  BOOST_TEST(s.message().find("ActivityScheduled(id=1, type=A)") != std::string::npos, s.message());
  BOOST_TEST(s.message().find("ActivityScheduled(id=1, type=B)") != std::string::npos, s.message());
  // An outcome for an activity the code never scheduled is one too.
  RunMachine n(kWf, &registry);
  s = Replay(n, {Started(1, "signal_or_timeout", nullptr),
                 TimerStarted(2, 1, "#1", kT0 + 10'000'000), ActCompleted(3, kT0, "7", 1, 1)});
  BOOST_TEST(s.code() == StatusCode::kNondeterminism);
  BOOST_TEST(s.message().find("seq 3") != std::string::npos, s.message());
}

// Fanout of two noop children, closing in the other order:
// 1 WorkflowStarted(fanout {"children":2,"input":7})
// 2 ChildWorkflowScheduled(ref 1, wf-1, noop, caused_by 1)
// 3 ChildWorkflowScheduled(ref 2, wf-2, noop, caused_by 1)
// 4 ChildWorkflowClosed(ref 2, completed 7)   -> the code still awaits ref 1
// 5 ChildWorkflowClosed(ref 1, completed 7)
// 6 WorkflowCompleted({"results":[7,7]}, caused_by 5)
BOOST_AUTO_TEST_CASE(children_closing_out_of_order_replay) {
  RunMachine m(kWf, &registry);
  BOOST_REQUIRE(Replay(m, {Started(1, "fanout", {{"children", 2}, {"input", 7}}),
                           ChildScheduled(2, 1, "1", "wf-1", "noop"),
                           ChildScheduled(3, 1, "2", "wf-2", "noop"),
                           ChildClosed(4, kT0 + 1, "2", history::CHILD_STATUS_COMPLETED, 7),
                           ChildClosed(5, kT0 + 2, "1", history::CHILD_STATUS_COMPLETED, 7),
                           Completed(6, 5, {{"results", {7, 7}}})})
                    .ok());
  BOOST_TEST(m.terminal_recorded());
  BOOST_TEST(m.TakeNewCommands().empty());
}

// 1 WorkflowStarted(fanout, 1 child)  2 ChildWorkflowScheduled(ref 1, caused_by 1)
// 3 ChildWorkflowClosed(ref 1, terminated "ops")
// -> the code issues WorkflowFailed(ChildWorkflowFailed:terminated), caused_by 3
BOOST_AUTO_TEST_CASE(a_child_that_did_not_complete_fails_the_awaiting_parent) {
  RunMachine m(kWf, &registry);
  BOOST_REQUIRE(
      Replay(m, {Started(1, "fanout", {{"children", 1}}), ChildScheduled(2, 1, "1", "wf-1", "noop"),
                 ChildClosed(3, kT0 + 1, "1", history::CHILD_STATUS_TERMINATED, "ops")})
          .ok());
  const auto commands = m.TakeNewCommands();
  BOOST_REQUIRE_EQUAL(commands.size(), 1u);
  const HistoryEvent& failed = commands[0].event;
  BOOST_TEST(failed.caused_by() == 3u);
  BOOST_TEST(failed.workflow_failed().error_type() == "ChildWorkflowFailed:terminated");
  BOOST_TEST(failed.workflow_failed().message().find("'wf-1' terminated") != std::string::npos,
             failed.workflow_failed().message());
}

// The timer wins, but the child's close was recorded before the cancel
// reached the writer, which then recorded no ChildWorkflowCancelRequested:
// 1 WorkflowStarted(child_or_deadline)  2 ChildWorkflowScheduled(ref 1, kid, caused_by 1)
// 3 TimerStarted(deadline, t0+1s, caused_by 1)  4 TimerFired(deadline)
// 5 ChildWorkflowClosed(ref 1, completed)  6 WorkflowCompleted(1, caused_by 4)
BOOST_AUTO_TEST_CASE(moot_child_cancel_replays_cleanly) {
  RunMachine m(kWf, &registry);
  BOOST_REQUIRE(
      Replay(m, {Started(1, "child_or_deadline", nullptr), ChildScheduled(2, 1, "1", "kid", "noop"),
                 TimerStarted(3, 1, "deadline", kT0 + 1'000'000),
                 TimerFired(4, kT0 + 1'000'000, "deadline"),
                 ChildClosed(5, kT0 + 1'000'001, "1", history::CHILD_STATUS_COMPLETED, 1),
                 Completed(6, 4, 1)})
          .ok());
  BOOST_TEST(m.terminal_recorded());
  BOOST_TEST(m.TakeNewCommands().empty());
}

// 1 WorkflowStarted(fanout of noop)  2 ChildWorkflowScheduled(ref 1, type timer_signal)
// -> nondeterminism at seq 2; a close for a child never started is one too.
BOOST_AUTO_TEST_CASE(changed_child_type_is_nondeterminism_naming_the_seq) {
  RunMachine m(kWf, &registry);
  Status s = Replay(m, {Started(1, "fanout", {{"children", 1}}),
                        ChildScheduled(2, 1, "1", "wf-1", "timer_signal")});
  BOOST_TEST(s.code() == StatusCode::kNondeterminism);
  BOOST_TEST(s.message().find("seq 2") != std::string::npos, s.message());
  RunMachine n(kWf, &registry);
  s = Replay(n, {Started(1, "fanout", {{"children", 0}, {"await", false}}),
                 ChildClosed(2, kT0, "1", history::CHILD_STATUS_COMPLETED, 1)});
  BOOST_TEST(s.code() == StatusCode::kNondeterminism);
  BOOST_TEST(s.message().find("no child with that reference") != std::string::npos, s.message());
}

BOOST_AUTO_TEST_SUITE_END()
