// End-to-end tests of the embedded Engine over a MemoryStore and a
// ManualClock: no NATS, no LMDB, no sleeping for time.
#define BOOST_TEST_MODULE engine_test
#include "aion/engine/engine.h"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <future>
#include <sstream>
#include <thread>

#include "aion/engine/history.h"
#include "aion/engine/memory_store.h"
#include "aion/examples/reference_workflows.h"
#include "support/fault_injection_store.h"
#include "support/wait.h"

using namespace aion;
using namespace std::chrono_literals;
using aion::testing::WaitFor;

namespace {

// A workflow that waits for "go" within 10 s and reports which came first.
Task<Json> SignalOrTimeout(Context& ctx, Json) {
  auto got = co_await ctx.signal<Json>("go").within(10s);
  co_return got ? Json{{"signal", *got}} : Json{{"timed_out", true}};
}

Task<Json> WaitGo(Context& ctx, Json) { co_return co_await ctx.signal<Json>("go"); }

// Starts a named reminder, cancels it when "done" arrives, reports whether it fired.
Task<Json> Reminder(Context& ctx, Json) {
  Timer reminder = ctx.timer("reminder", 1h);
  co_await ctx.signal<Json>("done");
  reminder.Cancel();
  const bool fired = co_await reminder;
  co_return Json{{"fired", fired}};
}

// Version A and version B of one workflow type: B sleeps 2 s instead of 1 s,
// so a history recorded by A does not replay under B.
Task<Json> SleepA(Context& ctx, Json) {
  ctx.log().info("A before sleep");
  co_await ctx.sleep(1s);
  co_return co_await ctx.signal<Json>("go");
}
Task<Json> SleepB(Context& ctx, Json) {
  co_await ctx.sleep(2s);
  co_return co_await ctx.signal<Json>("go");
}

// Cancels timer "t" and starts it again at the same time (same row key).
Task<Json> RestartTimer(Context& ctx, Json) {
  Timer t = ctx.timer("t", 300ms);
  t.Cancel();
  Timer again = ctx.timer("t", 300ms);
  co_return co_await again;
}

// The resettable-timeout pattern: "idle" is restarted when "reset" arrives.
Task<Json> Resettable(Context& ctx, Json) {
  Timer idle = ctx.timer("idle", 1s);
  co_await ctx.signal<Json>("reset");
  idle.Cancel();
  Timer again = ctx.timer("idle", 10s);
  const bool fired = co_await again;
  co_return Json{{"fired", fired}};
}

Task<Json> BadTimerName(Context& ctx, Json) {
  co_await ctx.timer("no spaces allowed", 1s);
  co_return nullptr;
}

// Holds its executor thread (never do this in real workflow code).
Task<Json> Blocker(Context& ctx, Json) {
  std::this_thread::sleep_for(300ms);
  co_return nullptr;
}

// Input by reference: the engine keeps the converted input alive across the
// wait (detail::InvokeKeepingInput).
Task<Json> ByRef(Context& ctx, const Json& input) {
  Json got = co_await ctx.signal<Json>("go");
  co_return Json{{"input", input}, {"signal", got}};
}
Task<void> ByRefVoid(Context& ctx, const Json& input) {
  Json got = co_await ctx.signal<Json>("go");
  if (got != input) throw std::runtime_error("the input changed while the run waited");
}

Task<Json> Throws(Context& ctx, Json) {
  co_await ctx.sleep(1ms);
  throw std::runtime_error("card declined");
}

struct Harness {
  explicit Harness(Store* s = nullptr) : store(s ? s : &memory) {
    BOOST_REQUIRE(examples::RegisterReferenceWorkflows(registry).ok());
    BOOST_REQUIRE(registry.workflow("signal_or_timeout", &SignalOrTimeout).ok());
    BOOST_REQUIRE(registry.workflow("throws", &Throws).ok());
    BOOST_REQUIRE(registry.workflow("by_ref", &ByRef).ok());
    BOOST_REQUIRE(registry.workflow("by_ref_void", &ByRefVoid).ok());
    BOOST_REQUIRE(registry.workflow("wait_go", &WaitGo).ok());
    BOOST_REQUIRE(registry.workflow("reminder", &Reminder).ok());
    BOOST_REQUIRE(registry.workflow("sleepy", &SleepA).ok());
    BOOST_REQUIRE(registry.workflow("restart_timer", &RestartTimer).ok());
    BOOST_REQUIRE(registry.workflow("resettable", &Resettable).ok());
    BOOST_REQUIRE(registry.workflow("bad_timer_name", &BadTimerName).ok());
    BOOST_REQUIRE(registry.workflow("blocker", &Blocker).ok());
    Open();
  }
  void Open(int executor_threads = 2) {
    auto opened = Engine::Open({.store = store,
                                .registry = &registry,
                                .clock = &clock,
                                .executor_threads = executor_threads});
    BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
    engine = std::move(*opened);
  }
  void Restart() {
    engine->Shutdown();
    engine.reset();
    Open();
  }
  std::vector<HistoryEvent> History(const std::string& id) {
    auto h = engine->History(id);
    BOOST_REQUIRE(h.ok());
    return *h;
  }
  // Advances the clock once the workflow has a pending timer recorded.
  void FireNextTimer(const std::string& id) {
    BOOST_REQUIRE(WaitFor([&] {
      auto d = engine->Describe(id);
      return d.ok() && d->record.timers_size() > 0;
    }));
    auto d = engine->Describe(id);
    clock.Set(d->record.timers(0).fire_at_us());
  }
  Outcome Result(const std::string& id) {
    auto r = engine->AwaitResult(id, 20s);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    // The record's status is the one the history implies.
    BOOST_TEST(StatusFromHistory(History(id)) == r->status);
    BOOST_TEST(engine->Describe(id)->record.status() == r->status);
    return *r;
  }

  MemoryStore memory;
  Store* store;
  ManualClock clock;
  WorkflowRegistry registry;
  std::unique_ptr<Engine> engine;
};

Json Output(const Outcome& o) { return *ParseJsonPayload(o.output); }

int CountEvents(const std::vector<HistoryEvent>& h, HistoryEvent::AttributesCase c) {
  int n = 0;
  for (const auto& e : h) n += e.attributes_case() == c ? 1 : 0;
  return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(noop_returns_its_input) {
  Harness h;
  auto started = h.engine->Start("n1", "noop", JsonPayload({{"hello", "world"}}));
  BOOST_REQUIRE(started.status.ok());
  Outcome o = h.Result("n1");
  BOOST_TEST(o.status == records::WORKFLOW_STATUS_COMPLETED);
  BOOST_TEST(Output(o) == (Json{{"hello", "world"}}));
  auto hist = h.History("n1");
  BOOST_REQUIRE_EQUAL(hist.size(), 2u);
  BOOST_TEST(hist[0].has_workflow_started());
  BOOST_TEST(hist[1].has_workflow_completed());
  BOOST_TEST(hist[1].caused_by() == 1u);
}

BOOST_AUTO_TEST_CASE(workflows_taking_their_input_by_reference_keep_it_across_waits) {
  Harness h;
  const Json input = {{"order", "a-1"}, {"items", {1, 2, 3}}};
  BOOST_REQUIRE(h.engine->Start("r1", "by_ref", JsonPayload(input)).status.ok());
  BOOST_REQUIRE(h.engine->Start("r2", "by_ref_void", JsonPayload(input)).status.ok());
  BOOST_REQUIRE(h.engine->Signal("r1", "go", JsonPayload(7)).status.ok());
  BOOST_REQUIRE(h.engine->Signal("r2", "go", JsonPayload(input)).status.ok());
  Outcome o = h.Result("r1");
  BOOST_TEST(o.status == records::WORKFLOW_STATUS_COMPLETED);
  BOOST_TEST(Output(o) == (Json{{"input", input}, {"signal", 7}}));
  Outcome v = h.Result("r2");
  BOOST_TEST(v.status == records::WORKFLOW_STATUS_COMPLETED);
  BOOST_TEST(Output(v) == Json(nullptr));
}

BOOST_AUTO_TEST_CASE(timer_then_signal_completes) {
  Harness h;
  BOOST_REQUIRE(
      h.engine->Start("ts", "timer_signal", JsonPayload({{"sleep_ms", 5000}, {"signal", "go"}}))
          .status.ok());
  h.FireNextTimer("ts");
  BOOST_REQUIRE(
      WaitFor([&] { return CountEvents(h.History("ts"), HistoryEvent::kTimerFired) == 1; }));
  BOOST_REQUIRE(h.engine->Signal("ts", "go", JsonPayload({{"by", "ana"}})).status.ok());
  Outcome o = h.Result("ts");
  BOOST_TEST(Output(o) == (Json{{"slept_ms", 5000}, {"signal", {{"by", "ana"}}}}));
  auto hist = h.History("ts");
  // 1 Started, 2 TimerStarted, 3 TimerFired, 4 SignalReceived, 5 Completed
  BOOST_REQUIRE_EQUAL(hist.size(), 5u);
  BOOST_TEST(hist[1].timer_started().fire_at_us() == hist[0].recorded_at_us() + 5'000'000);
}

BOOST_AUTO_TEST_CASE(early_signal_is_kept_and_matched) {
  Harness h;
  BOOST_REQUIRE(
      h.engine->Start("early", "timer_signal", JsonPayload({{"sleep_ms", 1000}, {"signal", "go"}}))
          .status.ok());
  // The signal arrives while the workflow still sleeps.
  BOOST_REQUIRE(h.engine->Signal("early", "go", JsonPayload(1)).status.ok());
  h.FireNextTimer("early");
  BOOST_TEST(Output(h.Result("early"))["signal"] == 1);
}

BOOST_AUTO_TEST_CASE(second_start_of_running_id_is_refused_without_append) {
  Harness h;
  BOOST_REQUIRE(
      h.engine->Start("dup", "timer_signal", JsonPayload({{"sleep_ms", 1000}})).status.ok());
  BOOST_REQUIRE(WaitFor([&] { return h.History("dup").size() == 2; }));  // + TimerStarted
  const auto before = h.History("dup").size();
  auto again = h.engine->Start("dup", "noop", JsonPayload(1));
  BOOST_TEST(again.status.code() == StatusCode::kAlreadyStarted);
  BOOST_TEST(h.History("dup").size() == before);
}

BOOST_AUTO_TEST_CASE(signal_to_unknown_and_closed_workflows_is_refused) {
  Harness h;
  BOOST_TEST(h.engine->Signal("nobody", "go", JsonPayload(1)).status.code() ==
             StatusCode::kNotFound);
  BOOST_REQUIRE(h.engine->Start("closed", "noop", JsonPayload(1)).status.ok());
  h.Result("closed");
  const auto before = h.History("closed").size();
  auto refused = h.engine->Signal("closed", "go", JsonPayload(1));
  BOOST_TEST(refused.status.code() == StatusCode::kNotRunning);
  BOOST_TEST(refused.status.message().find("closed") != std::string::npos);
  BOOST_TEST(h.History("closed").size() == before);
}

BOOST_AUTO_TEST_CASE(unknown_type_and_bad_id_are_refused) {
  Harness h;
  BOOST_TEST(h.engine->Start("x1", "nope", JsonPayload(1)).status.code() ==
             StatusCode::kUnknownWorkflowType);
  BOOST_TEST(h.engine->Start("bad id", "noop", JsonPayload(1)).status.code() ==
             StatusCode::kInvalidArgument);
  BOOST_TEST(h.engine->Describe("x1").status().code() == StatusCode::kNotFound);
}

BOOST_AUTO_TEST_CASE(request_id_makes_a_retry_idempotent) {
  Harness h;
  BOOST_REQUIRE(
      h.engine->Start("idem", "timer_signal", JsonPayload({{"sleep_ms", 1000}})).status.ok());
  auto first = h.engine->Signal("idem", "go", JsonPayload(1), "r-1");
  auto second = h.engine->Signal("idem", "go", JsonPayload(1), "r-1");
  BOOST_TEST(first.status.ok());
  BOOST_TEST(!first.duplicate);
  BOOST_TEST(second.duplicate);
  BOOST_TEST(second.seq == first.seq);
  BOOST_TEST(CountEvents(h.History("idem"), HistoryEvent::kSignalReceived) == 1);
}

BOOST_AUTO_TEST_CASE(signal_wins_race_and_timer_is_cancelled) {
  Harness h;
  BOOST_REQUIRE(h.engine->Start("race", "signal_or_timeout", JsonPayload(nullptr)).status.ok());
  BOOST_REQUIRE(WaitFor([&] { return h.History("race").size() >= 2; }));
  BOOST_REQUIRE(h.engine->Signal("race", "go", JsonPayload("yes")).status.ok());
  BOOST_TEST(Output(h.Result("race")) == (Json{{"signal", "yes"}}));
  auto hist = h.History("race");
  BOOST_TEST(CountEvents(hist, HistoryEvent::kTimerCancelled) == 1);
  BOOST_TEST(CountEvents(hist, HistoryEvent::kTimerFired) == 0);
  auto d = h.engine->Describe("race");
  BOOST_TEST(d->record.timers_size() == 0);
  BOOST_TEST(h.store->DueTimers(std::numeric_limits<Timestamp>::max(), 10)->empty());
}

BOOST_AUTO_TEST_CASE(timeout_wins_race) {
  Harness h;
  BOOST_REQUIRE(h.engine->Start("late", "signal_or_timeout", JsonPayload(nullptr)).status.ok());
  h.FireNextTimer("late");
  BOOST_TEST(Output(h.Result("late")) == (Json{{"timed_out", true}}));
  // A signal after the close is refused and appends nothing.
  BOOST_TEST(h.engine->Signal("late", "go", JsonPayload(1)).status.code() ==
             StatusCode::kNotRunning);
}

BOOST_AUTO_TEST_CASE(exception_fails_the_run_with_its_message) {
  Harness h;
  BOOST_REQUIRE(h.engine->Start("boom", "throws", JsonPayload(nullptr)).status.ok());
  h.FireNextTimer("boom");
  Outcome o = h.Result("boom");
  BOOST_TEST(o.status == records::WORKFLOW_STATUS_FAILED);
  BOOST_TEST(o.failure == "card declined");
}

BOOST_AUTO_TEST_CASE(timers_due_during_downtime_fire_at_startup_exactly_once) {
  Harness h;
  for (int i = 0; i < 20; ++i) {
    BOOST_REQUIRE(h.engine
                      ->Start("down-" + std::to_string(i), "timer_signal",
                              JsonPayload({{"sleep_ms", 1000 + i}, {"signal", "go"}}))
                      .status.ok());
  }
  BOOST_REQUIRE(WaitFor([&] {
    return h.store->DueTimers(std::numeric_limits<Timestamp>::max(), 100)->size() == 20;
  }));
  h.engine->Shutdown();
  h.clock.Advance(1h);  // every timer falls due while the engine is down
  h.Restart();
  for (int i = 0; i < 20; ++i) {
    const std::string id = "down-" + std::to_string(i);
    BOOST_REQUIRE(
        WaitFor([&] { return CountEvents(h.History(id), HistoryEvent::kTimerFired) == 1; }));
    BOOST_REQUIRE(h.engine->Signal(id, "go", JsonPayload(i)).status.ok());
    BOOST_TEST(Output(h.Result(id))["signal"] == i);
    BOOST_TEST(CountEvents(h.History(id), HistoryEvent::kTimerFired) == 1);
  }
  BOOST_TEST(h.store->DueTimers(std::numeric_limits<Timestamp>::max(), 100)->empty());
}

BOOST_AUTO_TEST_CASE(restart_rebuilds_runs_by_replay) {
  Harness h;
  BOOST_REQUIRE(
      h.engine->Start("rb", "timer_signal", JsonPayload({{"sleep_ms", 10}, {"signal", "go"}}))
          .status.ok());
  h.FireNextTimer("rb");
  BOOST_REQUIRE(
      WaitFor([&] { return CountEvents(h.History("rb"), HistoryEvent::kTimerFired) == 1; }));
  h.Restart();
  BOOST_REQUIRE(h.engine->Signal("rb", "go", JsonPayload("after restart")).status.ok());
  BOOST_TEST(Output(h.Result("rb"))["signal"] == "after restart");
  auto hist = h.History("rb");
  BOOST_TEST(hist.size() == 5u);  // no command recorded twice by the replay
}

BOOST_AUTO_TEST_CASE(nothing_is_acked_or_delivered_while_commits_fail) {
  MemoryStore memory;
  aion::testing::FaultInjectionStore faulty(&memory);
  Harness h(&faulty);
  BOOST_REQUIRE(
      h.engine->Start("bp", "timer_signal", JsonPayload({{"sleep_ms", 0}, {"signal", "go"}}))
          .status.ok());
  BOOST_REQUIRE(
      WaitFor([&] { return CountEvents(h.History("bp"), HistoryEvent::kTimerFired) == 1; }));
  faulty.FailCommits(Status(StatusCode::kResourceExhausted, "disk full"));
  std::atomic<bool> acked{false};
  std::atomic<bool> ack_ok{false};
  IngressMessage m;
  m.kind = IngressMessage::Kind::kSignal;
  m.workflow_id = "bp";
  m.signal_name = "go";
  m.input = JsonPayload("late");
  h.engine->Submit({m}, [&](std::vector<IngressOutcome> o) {
    ack_ok = o[0].status.ok();  // Boost.Test checks only on the main thread
    acked = true;
  });
  BOOST_REQUIRE(WaitFor([&] { return faulty.failed_commits() >= 3; }));
  BOOST_TEST(!acked.load());  // record before ack
  // Record before deliver: the run has not seen the signal, nothing is recorded.
  BOOST_TEST(CountEvents(h.History("bp"), HistoryEvent::kSignalReceived) == 0);
  BOOST_TEST(h.engine->Describe("bp")->record.status() == records::WORKFLOW_STATUS_RUNNING);
  faulty.Heal();
  BOOST_REQUIRE(WaitFor([&] { return acked.load(); }));
  BOOST_TEST(ack_ok.load());
  BOOST_TEST(Output(h.Result("bp"))["signal"] == "late");
}

BOOST_AUTO_TEST_CASE(stale_second_writer_is_refused_and_writes_nothing) {
  Harness a;
  BOOST_REQUIRE(
      a.engine->Start("contended", "signal_or_timeout", JsonPayload(nullptr)).status.ok());
  // Its TimerStarted shows the first engine's run has executed and now waits,
  // so only the second engine's run reacts to what the second engine records.
  BOOST_REQUIRE(WaitFor([&] { return a.History("contended").size() == 2; }));
  // A second engine over the same store appends behind the first one's back.
  WorkflowRegistry registry;
  BOOST_REQUIRE(registry.workflow("signal_or_timeout", &SignalOrTimeout).ok());
  auto b = Engine::Open({.store = &a.memory, .registry = &registry, .clock = &a.clock});
  BOOST_REQUIRE(b.ok());
  BOOST_REQUIRE((*b)->Signal("contended", "go", JsonPayload("from b")).status.ok());
  // 3 SignalReceived, 4 TimerCancelled, 5 WorkflowCompleted, all by b
  BOOST_REQUIRE(WaitFor([&] { return a.History("contended").size() == 5; }));
  const auto before = a.History("contended");
  // The first engine's cached head is stale: its append names the wrong head.
  auto stale = a.engine->Signal("contended", "go", JsonPayload("from a"));
  BOOST_TEST(stale.status.code() == StatusCode::kAborted);
  BOOST_TEST(a.History("contended").size() == before.size());
  // It re-reads the store afterwards and answers from the truth.
  BOOST_TEST(a.engine->Signal("contended", "go", JsonPayload(1)).status.code() ==
             StatusCode::kNotRunning);
}

BOOST_AUTO_TEST_CASE(named_timer_is_cancelled_and_never_fires) {
  Harness h;
  BOOST_REQUIRE(h.engine->Start("rem", "reminder", JsonPayload(nullptr)).status.ok());
  BOOST_REQUIRE(WaitFor([&] { return h.History("rem").size() == 2; }));
  BOOST_REQUIRE(h.engine->Signal("rem", "done", JsonPayload(nullptr)).status.ok());
  BOOST_TEST(Output(h.Result("rem")) == (Json{{"fired", false}}));
  auto hist = h.History("rem");
  BOOST_TEST(hist[1].timer_started().timer_id() == "reminder");
  BOOST_TEST(CountEvents(hist, HistoryEvent::kTimerCancelled) == 1);
  h.clock.Advance(2h);  // past the reminder's fire time: nothing may fire now
  BOOST_TEST(h.store->DueTimers(std::numeric_limits<Timestamp>::max(), 10)->empty());
  BOOST_TEST(h.History("rem").size() == hist.size());
}

BOOST_AUTO_TEST_CASE(nondeterminism_parks_the_run_until_fixed_code_runs_it) {
  Harness h;
  BOOST_REQUIRE(h.engine->Start("nd", "sleepy", JsonPayload(nullptr)).status.ok());
  BOOST_REQUIRE(WaitFor([&] { return h.History("nd").size() == 2; }));
  h.engine->Shutdown();

  // Deploy changed code under the same type and version.
  WorkflowRegistry changed;
  BOOST_REQUIRE(changed.workflow("sleepy", &SleepB).ok());
  {
    auto e = Engine::Open({.store = &h.memory, .registry = &changed, .clock = &h.clock});
    BOOST_REQUIRE(e.ok());
    BOOST_REQUIRE(WaitFor([&] { return !(*e)->Describe("nd")->parked_error.empty(); }));
    const std::string why = (*e)->Describe("nd")->parked_error;
    BOOST_TEST(why.find("nondeterminism at seq 2") != std::string::npos, why);
    // Parked, not failed: the run stays open and keeps its inputs.
    BOOST_TEST((*e)->Signal("nd", "go", JsonPayload("kept")).status.ok());
    BOOST_TEST((*e)->Describe("nd")->record.status() == records::WORKFLOW_STATUS_RUNNING);
  }
  // Fixed (original) code resumes it from the same history.
  h.Open();
  h.FireNextTimer("nd");
  BOOST_TEST(Output(h.Result("nd")) == "kept");
}

BOOST_AUTO_TEST_CASE(workflow_logger_is_silent_during_replay) {
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  {
    Harness h;
    BOOST_REQUIRE(h.engine->Start("quiet", "sleepy", JsonPayload(nullptr)).status.ok());
    BOOST_REQUIRE(WaitFor([&] { return h.History("quiet").size() == 2; }));
    h.Restart();  // replays WorkflowStarted: its log line must not repeat
    h.FireNextTimer("quiet");
    BOOST_REQUIRE(h.engine->Signal("quiet", "go", JsonPayload(1)).status.ok());
    h.Result("quiet");
  }
  spdlog::set_default_logger(previous);
  const std::string logs = captured.str();
  std::size_t count = 0;
  for (auto pos = logs.find("A before sleep"); pos != std::string::npos;
       pos = logs.find("A before sleep", pos + 1)) {
    ++count;
  }
  BOOST_TEST(count == 1u);
}

BOOST_AUTO_TEST_CASE(shutdown_returns_while_commits_keep_failing) {
  MemoryStore memory;
  aion::testing::FaultInjectionStore faulty(&memory);
  Harness h(&faulty);
  BOOST_REQUIRE(
      h.engine->Start("stuck", "timer_signal", JsonPayload({{"sleep_ms", 10}})).status.ok());
  BOOST_REQUIRE(WaitFor([&] { return h.History("stuck").size() == 2; }));
  faulty.FailCommits(Unavailable("injected I/O error"));
  h.clock.Advance(1s);  // the timer service now waits for a commit that keeps failing
  BOOST_REQUIRE(WaitFor([&] { return faulty.failed_commits() >= 2; }));
  auto shutdown = std::async(std::launch::async, [&] { h.engine->Shutdown(); });
  const bool returned = shutdown.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  faulty.Heal();  // lets a hung shutdown finish so the test ends either way
  shutdown.wait();
  BOOST_TEST(returned);
  // Nothing was recorded for the fire that never committed; a restart fires it.
  BOOST_TEST(CountEvents(h.History("stuck"), HistoryEvent::kTimerFired) == 0);
  h.Open();
  BOOST_REQUIRE(
      WaitFor([&] { return CountEvents(h.History("stuck"), HistoryEvent::kTimerFired) == 1; }));
}

IngressMessage StartMsg(const std::string& id, const std::string& type, const std::string& key) {
  IngressMessage m;
  m.kind = IngressMessage::Kind::kStart;
  m.workflow_id = id;
  m.workflow_type = type;
  m.input = JsonPayload(id);
  m.dedupe_key = key;
  return m;
}

BOOST_AUTO_TEST_CASE(a_refused_message_does_not_take_its_batch_down) {
  MemoryStore memory;
  aion::testing::FaultInjectionStore faulty(&memory);
  Harness h(&faulty);
  faulty.RefuseBatchesWhere(
      [](const WriteBatch& b) {
        for (const auto& d : b.dedupe_puts) {
          if (d.key() == "poison") return true;
        }
        return false;
      },
      InvalidArgument("key the store cannot hold"));
  std::promise<std::vector<IngressOutcome>> done;
  h.engine->Submit({StartMsg("p-a", "noop", "a"), StartMsg("p-b", "noop", "poison"),
                    StartMsg("p-c", "noop", "c")},
                   [&](std::vector<IngressOutcome> o) { done.set_value(std::move(o)); });
  auto outcomes = done.get_future().get();
  BOOST_REQUIRE_EQUAL(outcomes.size(), 3u);
  BOOST_TEST(outcomes[0].status.ok());
  BOOST_TEST(outcomes[1].status.code() == StatusCode::kInvalidArgument);
  BOOST_TEST(outcomes[2].status.ok());
  BOOST_TEST(Output(h.Result("p-a")) == "p-a");
  BOOST_TEST(Output(h.Result("p-c")) == "p-c");
  BOOST_TEST(h.engine->Describe("p-b").status().code() == StatusCode::kNotFound);
}

BOOST_AUTO_TEST_CASE(an_id_restarted_while_its_old_run_is_resident_runs_the_new_run) {
  Harness h;
  h.engine->Shutdown();
  h.Open(/*executor_threads=*/1);
  // X closes at once; its wake waits behind the blocker on the only executor,
  // and the second start of X lands before that wake is handled.
  std::promise<void> both;
  h.engine->Submit({StartMsg("reuse", "noop", ""), StartMsg("busy", "blocker", "")},
                   [&](std::vector<IngressOutcome>) { both.set_value(); });
  both.get_future().wait();
  const Outcome first = h.Result("reuse");
  auto again = h.engine->Start("reuse", "noop", JsonPayload("second"));
  BOOST_REQUIRE(again.status.ok());
  const Outcome second = h.Result("reuse");
  BOOST_TEST(second.run_id == again.run_id);
  BOOST_TEST(second.run_id != first.run_id);
  BOOST_TEST(Output(second) == "second");
  BOOST_TEST(h.engine->Describe("reuse")->parked_error.empty());
}

BOOST_AUTO_TEST_CASE(timer_cancelled_and_restarted_with_the_same_key_still_fires) {
  Harness h;
  BOOST_REQUIRE(h.engine->Start("again", "restart_timer", JsonPayload(nullptr)).status.ok());
  h.FireNextTimer("again");
  BOOST_TEST(Output(h.Result("again")) == true);
}

BOOST_AUTO_TEST_CASE(a_stale_row_of_a_cancelled_timer_does_not_fire_its_successor) {
  Harness h;
  const Timestamp t0 = h.clock.Now();
  BOOST_REQUIRE(h.engine->Start("reset", "resettable", JsonPayload(nullptr)).status.ok());
  BOOST_REQUIRE(WaitFor([&] { return h.History("reset").size() == 2; }));
  BOOST_REQUIRE(h.engine->Signal("reset", "reset", JsonPayload(nullptr)).status.ok());
  BOOST_REQUIRE(WaitFor([&] { return h.History("reset").size() == 5; }));  // signal, cancel, start
  // The row of the cancelled "idle" (t0+1s), as a timer service that read it
  // just before the cancel committed would still hand it to the writer.
  WriteBatch stale;
  TimerRow row;
  row.set_fire_at_us(t0 + 1'000'000);
  row.set_workflow_id("reset");
  row.set_timer_id("idle");
  row.set_run_id(h.engine->Describe("reset")->record.run_id());
  stale.timer_puts.push_back(row);
  BOOST_REQUIRE(h.memory.Commit(stale).ok());
  h.clock.Set(t0 + 1'000'000);
  BOOST_REQUIRE(WaitFor([&] { return h.store->DueTimers(t0 + 1'000'000, 10)->empty(); }));
  BOOST_TEST(CountEvents(h.History("reset"), HistoryEvent::kTimerFired) == 0);
  h.clock.Set(t0 + 10'000'000);  // the successor's own time
  BOOST_TEST(Output(h.Result("reset")) == (Json{{"fired", true}}));
  BOOST_TEST(CountEvents(h.History("reset"), HistoryEvent::kTimerFired) == 1);
}

BOOST_AUTO_TEST_CASE(an_invalid_timer_name_fails_the_run) {
  Harness h;
  BOOST_REQUIRE(h.engine->Start("badname", "bad_timer_name", JsonPayload(nullptr)).status.ok());
  const Outcome o = h.Result("badname");
  BOOST_TEST(o.status == records::WORKFLOW_STATUS_FAILED);
  BOOST_TEST(o.failure.find("timer name") != std::string::npos, o.failure);
}
