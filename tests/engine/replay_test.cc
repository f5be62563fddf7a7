// Replay of canned histories through RunMachine (the engine's private core).
// Each case lists the history it feeds, event by event, so the expected
// behaviour can be checked by reading the test alone.
#define BOOST_TEST_MODULE replay_test
#include <boost/test/unit_test.hpp>
#include <chrono>

#include "aion/engine/registry.h"
#include "aion/examples/reference_workflows.h"
#include "run_machine.h"

using namespace aion;
using namespace std::chrono_literals;

namespace {

constexpr Timestamp kT0 = 1'700'000'000'000'000;
constexpr char kRun[] = "run-1";

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

struct Fixture {
  Fixture() {
    BOOST_REQUIRE(examples::RegisterReferenceWorkflows(registry).ok());
    BOOST_REQUIRE(registry.workflow("signal_or_timeout", &SignalOrTimeout).ok());
    BOOST_REQUIRE(registry.workflow("deterministic", &Deterministic).ok());
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
  RunMachine m("wf", &registry);
  BOOST_REQUIRE(Replay(m, {Started(1, "noop", {{"a", 1}}), Completed(2, 1, {{"a", 1}})}).ok());
  BOOST_TEST(m.terminal_recorded());
  BOOST_TEST(m.TakeNewCommands().empty());
}

// 1 WorkflowStarted(timer_signal, sleep 1000 ms, signal "go")
// 2 TimerStarted(#1, t0+1s, caused_by 1)  3 TimerFired(#1)
// 4 SignalReceived(go, "x")               5 WorkflowCompleted(caused_by 4)
BOOST_AUTO_TEST_CASE(timer_signal_history_replays_cleanly) {
  RunMachine m("wf", &registry);
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
  RunMachine m("wf", &registry);
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
  RunMachine m("wf", &registry);
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
  RunMachine m("wf", &registry);
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
  RunMachine m("wf", &registry);
  Status s = Replay(m, {Started(1, "noop", 1), TimerStarted(2, 1, "#1", kT0 + 5)});
  BOOST_TEST(s.code() == StatusCode::kNondeterminism);
  BOOST_TEST(s.message().find("WorkflowCompleted") != std::string::npos);
}

// 1 WorkflowStarted(noop)  2 WorkflowCompleted  3 TimerStarted   <- code issued nothing more
BOOST_AUTO_TEST_CASE(extra_recorded_command_is_nondeterminism) {
  RunMachine m("wf", &registry);
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
  RunMachine m("wf", &registry);
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
  RunMachine m("wf", &registry);
  const Timestamp fire = kT0 + 10'000'000;
  BOOST_REQUIRE(Replay(m, {Started(1, "signal_or_timeout", nullptr), TimerStarted(2, 1, "#1", fire),
                           Signal(3, kT0 + 5, "go", "yes"), TimerCancelled(4, 3, "#1"),
                           Completed(5, 3, "yes")})
                    .ok());
}

// The timer wins: 3 TimerFired(#1)  4 WorkflowCompleted("timeout", caused_by 3);
// a later signal 5 is kept but nothing waits for it.
BOOST_AUTO_TEST_CASE(timeout_path_replays) {
  RunMachine m("wf", &registry);
  const Timestamp fire = kT0 + 10'000'000;
  BOOST_REQUIRE(Replay(m, {Started(1, "signal_or_timeout", nullptr), TimerStarted(2, 1, "#1", fire),
                           TimerFired(3, fire, "#1"), Completed(4, 3, "timeout")})
                    .ok());
  BOOST_TEST(m.terminal_recorded());
}

// now(), random() and uuid() are the same on every replay of one run.
BOOST_AUTO_TEST_CASE(time_randomness_and_ids_are_deterministic) {
  auto run_once = [&] {
    RunMachine m("wf", &registry);
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
  RunMachine a("wf", &registry);
  BOOST_TEST(Replay(a, {Started(1, "gone", 1)}).code() == StatusCode::kUnknownWorkflowType);
  RunMachine b("wf", &registry);
  Status s = Replay(b, {Started(1, "noop", 1, "7")});
  BOOST_TEST(s.code() == StatusCode::kUnknownWorkflowType);
  BOOST_TEST(s.message().find("version '7'") != std::string::npos);
}

// 1 WorkflowStarted  3 ...  <- seq 2 missing
BOOST_AUTO_TEST_CASE(gap_in_history_is_internal_error) {
  RunMachine m("wf", &registry);
  Status s = Replay(m, {Started(1, "timer_signal", {{"sleep_ms", 1}}), TimerFired(3, kT0, "#1")});
  BOOST_TEST(s.code() == StatusCode::kInternal);
}

BOOST_AUTO_TEST_SUITE_END()
