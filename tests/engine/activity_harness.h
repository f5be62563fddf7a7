// Shared fixture of the activity, cancel and terminate tests: an Engine over a
// MemoryStore (or any Store) with a ManualClock, a collecting OutboxSink, and
// a set of input-driven workflows and controllable local activities. Time
// only moves when a test moves the ManualClock; waits poll the store for
// another thread's progress, never for time.
#pragma once

#include <boost/test/unit_test.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "aion/engine/engine.h"
#include "aion/engine/history.h"
#include "aion/engine/memory_store.h"
#include "support/wait.h"

namespace aion::testing {

using namespace std::chrono_literals;
using Case = HistoryEvent::AttributesCase;

// ---------------------------------------------------------------------------
// Workflow code shared by the tests. Thread ids seen by workflow code.
inline std::mutex g_workflow_threads_mu;
inline std::vector<std::thread::id> g_workflow_threads;
inline void NoteWorkflowThread() {
  std::lock_guard<std::mutex> g(g_workflow_threads_mu);
  g_workflow_threads.push_back(std::this_thread::get_id());
}

// {"task_queue":"q","start_to_close_ms":..,"schedule_to_close_ms":..,
//  "heartbeat_timeout_ms":.., "retry":{"initial_ms","coefficient","max_ms",
//  "max_attempts","non_retryable":[..]}}
inline ActivityOptions OptionsFrom(const Json& j) {
  ActivityOptions o;
  if (!j.is_object()) return o;
  o.task_queue = j.value("task_queue", "");
  o.start_to_close = Micros(j.value("start_to_close_ms", std::int64_t{0}) * 1000);
  o.schedule_to_close = Micros(j.value("schedule_to_close_ms", std::int64_t{0}) * 1000);
  o.heartbeat_timeout = Micros(j.value("heartbeat_timeout_ms", std::int64_t{0}) * 1000);
  if (j.contains("retry")) {
    const Json& r = j["retry"];
    o.retry.initial_interval = Micros(r.value("initial_ms", std::int64_t{0}) * 1000);
    o.retry.backoff_coefficient = r.value("coefficient", 0.0);
    o.retry.maximum_interval = Micros(r.value("max_ms", std::int64_t{0}) * 1000);
    o.retry.maximum_attempts = r.value("max_attempts", 0u);
    if (r.contains("non_retryable")) {
      o.retry.non_retryable_error_types = r["non_retryable"].get<std::vector<std::string>>();
    }
  }
  return o;
}

inline Json FailureJson(const ActivityFailedError& e) {
  return Json{{"failed", e.what()},
              {"type", e.type()},
              {"attempt", e.attempt()},
              {"timed_out", e.timed_out()}};
}

// GCC 12 destroys temporaries of a full-expression holding a co_await at the
// wrong time (even in branches not taken): every value with a destructor is
// built in a variable first, and co_await only names an awaitable variable.

// Calls one activity: input {"type","input","options"}; returns {"result":..}
// or the ActivityFailedError as {"failed","type","attempt","timed_out"}.
inline Task<Json> CallActivity(Context& ctx, Json in) {
  NoteWorkflowThread();
  const std::string type = in["type"];
  const ActivityOptions options = OptionsFrom(in["options"]);
  auto act = ctx.activity<Json>(type, in["input"], options);
  Json out;
  try {
    Json r = co_await act;
    NoteWorkflowThread();
    out["result"] = r;
  } catch (const ActivityFailedError& e) {
    out = FailureJson(e);
  }
  co_return out;
}

// Schedules the activity, waits for signal "stop", cancels the activity and
// awaits it: "cancelled", or {"result":..} when it had completed first.
// With in["then_wait"] the run then stays open until signal "end".
inline Task<Json> CancelOnSignal(Context& ctx, Json in) {
  const std::string type = in["type"];
  const ActivityOptions options = OptionsFrom(in["options"]);
  auto a = ctx.activity<Json>(type, in["input"], options);
  auto stop = ctx.signal<Json>("stop");
  co_await stop;
  a.Cancel();
  Json out = "cancelled";
  try {
    Json r = co_await a;
    out = Json::object();
    out["result"] = r;
  } catch (const CancelledError&) {
  }
  if (in.value("then_wait", false)) {
    auto end = ctx.signal<Json>("end");
    co_await end;
  }
  co_return out;
}

// The activity races a timer of in["sleep_ms"]: the code sleeps, then
// cancels the activity and awaits it.
inline Task<Json> RaceTimer(Context& ctx, Json in) {
  const std::string type = in["type"];
  const ActivityOptions options = OptionsFrom(in["options"]);
  auto a = ctx.activity<Json>(type, in["input"], options);
  Timer sleep = ctx.sleep(std::chrono::milliseconds(in["sleep_ms"].get<int>()));
  co_await sleep;
  a.Cancel();
  Json out = "cancelled";
  try {
    Json r = co_await a;
    out = Json::object();
    out["result"] = r;
  } catch (const CancelledError&) {
  }
  co_return out;
}

// Waits on in["wait"] ("activity": remote activity "work" on queue "q";
// "timer": 1 h; "signal": "go"; "within": "go" within 1 h). A CancelledError runs the local
// compensation activity in["undo"] (default "undo"; after the catch block:
// no co_await in a handler) and then returns {"compensated": its result},
// or, when in["rethrow"] is true, throws a CancelledError again. Without a
// cancel it returns "done".
inline Task<Json> Compensating(Context& ctx, Json in) {
  const std::string wait = in["wait"];
  const std::string undo_type = in.value("undo", "undo");
  const bool rethrow = in.value("rethrow", false);
  const Json w = "w";
  const Json u = "u";
  ActivityOptions remote;
  remote.task_queue = "q";
  bool cancelled = false;
  try {
    if (wait == "activity") {
      auto work = ctx.activity<Json>("work", w, remote);
      co_await work;
    } else if (wait == "timer") {
      Timer t = ctx.sleep(1h);
      co_await t;
    } else if (wait == "within") {
      auto go = ctx.signal<Json>("go").within(1h);
      co_await go;
    } else {
      auto go = ctx.signal<Json>("go");
      co_await go;
    }
  } catch (const CancelledError&) {
    cancelled = true;
  }
  Json out = "done";
  if (cancelled) {
    // Later waits proceed: the cancel request is delivered once.
    auto undo = ctx.activity<Json>(undo_type, u);
    Json undone = co_await undo;
    if (rethrow) throw CancelledError("compensated, then cancelled");
    out = Json::object();
    out["compensated"] = undone;
  }
  co_return out;
}

// Starts timer "t" (1 h) and a remote activity "work" on "q" (start-to-close
// 2 h, so it has a timer row too), then waits for signal "go" forever:
// something to terminate or time out.
inline Task<Json> Pending(Context& ctx, Json) {
  const Json w = "w";
  ActivityOptions remote;
  remote.task_queue = "q";
  remote.start_to_close = 2h;
  Timer t = ctx.timer("t", 1h);
  auto a = ctx.activity<Json>("work", w, remote);
  auto go = ctx.signal<Json>("go");
  co_await go;
  co_return Json("done");
}

// Two local activities in sequence with a timer between them (restart tests).
inline Task<Json> TwoSteps(Context& ctx, Json in) {
  const Json one = "one";
  const Json two = "two";
  const std::string second = in.value("second", "echo");
  const ActivityOptions options = OptionsFrom(in.value("options", Json::object()));
  auto first = ctx.activity<Json>("echo", one);
  Json a = co_await first;
  Timer sleep = ctx.sleep(1s);
  co_await sleep;
  auto then = ctx.activity<Json>(second, two, options);
  Json b = co_await then;
  Json out = Json::array();
  out.push_back(a);
  out.push_back(b);
  co_return out;
}

// ---------------------------------------------------------------------------
class CollectingSink final : public OutboxSink {
 public:
  Status Publish(const OutboxRow& row) override {
    std::lock_guard<std::mutex> g(mu_);
    rows_.push_back(row);
    return Status::Ok();
  }
  std::vector<OutboxRow> Rows(records::OutboxRow::Kind kind) const {
    std::lock_guard<std::mutex> g(mu_);
    std::vector<OutboxRow> out;
    for (const auto& r : rows_) {
      if (r.kind() == kind) out.push_back(r);
    }
    return out;
  }
  std::vector<OutboxRow> Tasks() const { return Rows(records::OutboxRow::KIND_ACTIVITY_TASK); }
  std::vector<OutboxRow> Cancels() const { return Rows(records::OutboxRow::KIND_ACTIVITY_CANCEL); }

 private:
  mutable std::mutex mu_;
  std::vector<OutboxRow> rows_;
};

// A latch local activities can wait on (or be cancelled out of).
class Gate {
 public:
  void Open() {
    std::lock_guard<std::mutex> g(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Waits until opened or `ctx` is cancelled; true if opened.
  bool Wait(ActivityContext& ctx) {
    std::unique_lock<std::mutex> lock(mu_);
    while (!open_) {
      if (ctx.cancelled()) return false;
      cv_.wait_for(lock, 1ms);
    }
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

struct Harness {
  explicit Harness(Store* s = nullptr) : store(s ? s : &memory) {
    BOOST_REQUIRE(registry.workflow("call", &CallActivity).ok());
    BOOST_REQUIRE(registry.workflow("cancel_on_signal", &CancelOnSignal).ok());
    BOOST_REQUIRE(registry.workflow("race_timer", &RaceTimer).ok());
    BOOST_REQUIRE(registry.workflow("compensating", &Compensating).ok());
    BOOST_REQUIRE(registry.workflow("pending", &Pending).ok());
    BOOST_REQUIRE(registry.workflow("two_steps", &TwoSteps).ok());
    BOOST_REQUIRE(activities.activity("echo", [this](ActivityContext&, Json in) {
      ++echo_calls;
      return in;
    }).ok());
    // Throws ActivityError(message, type, non_retryable) from its input.
    BOOST_REQUIRE(activities.activity("fail", [this](ActivityContext& ctx, Json in) -> Json {
      ++fail_calls;
      NoteActivityThread();
      throw ActivityError(in.value("message", "boom"), in.value("type", "Boom"),
                          in.value("non_retryable", false));
    }).ok());
    // Fails before attempt in["succeed_on"] (default 2), then returns its attempt.
    BOOST_REQUIRE(activities.activity("flaky", [](ActivityContext& ctx, Json in) -> Json {
      const std::uint32_t succeed_on = in.is_object() ? in.value("succeed_on", 2u) : 2u;
      if (ctx.attempt() < succeed_on) throw ActivityError("not yet", "Flaky");
      return ctx.attempt();
    }).ok());
    // Waits for `gate` (or its cancellation); records its thread.
    BOOST_REQUIRE(activities.activity("block", [this](ActivityContext& ctx, Json in) -> Json {
      NoteActivityThread();
      ++block_calls;
      if (!gate.Wait(ctx)) {
        ++block_cancelled;
        return "cancelled";
      }
      return in;
    }).ok());
    BOOST_REQUIRE(activities.activity("undo", [this](ActivityContext&, Json in) {
      ++undo_calls;
      return in;
    }).ok());
  }
  ~Harness() {
    gate.Open();
    if (engine) engine->Shutdown();
  }

  void Open() {
    auto opened = Engine::Open({.store = store,
                                .registry = &registry,
                                .clock = &clock,
                                .outbox = &sink,
                                .activities = &activities,
                                .activity_threads = pool_threads,
                                .max_resident_runs = max_resident_runs});
    BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
    engine = std::move(*opened);
  }
  void Close() {
    engine->Shutdown();
    engine.reset();
  }
  void Restart() {
    Close();
    Open();
  }

  void NoteActivityThread() {
    std::lock_guard<std::mutex> g(mu);
    activity_threads.push_back(std::this_thread::get_id());
  }

  IngressOutcome Start(const std::string& id, const std::string& type, const Json& input,
                       std::int64_t run_timeout_us = 0) {
    IngressMessage m;
    m.kind = IngressMessage::Kind::kStart;
    m.workflow_id = id;
    m.workflow_type = type;
    m.input = JsonPayload(input);
    m.run_timeout_us = run_timeout_us;
    return engine->Send(std::move(m));
  }
  IngressOutcome Cancel(const std::string& id, const std::string& reason = "asked") {
    IngressMessage m;
    m.kind = IngressMessage::Kind::kCancel;
    m.workflow_id = id;
    m.reason = reason;
    return engine->Send(std::move(m));
  }
  IngressOutcome Terminate(const std::string& id, const std::string& reason = "stop it") {
    IngressMessage m;
    m.kind = IngressMessage::Kind::kTerminate;
    m.workflow_id = id;
    m.reason = reason;
    return engine->Send(std::move(m));
  }
  static IngressMessage ResultMsg(const std::string& id, const std::string& run_id,
                                  const std::string& activity_id, std::uint32_t attempt,
                                  const Json& result) {
    IngressMessage m;
    m.kind = IngressMessage::Kind::kActivityResult;
    m.workflow_id = id;
    m.run_id = run_id;
    m.activity_id = activity_id;
    m.attempt = attempt;
    m.input = JsonPayload(result);
    return m;
  }
  static IngressMessage FailureMsg(const std::string& id, const std::string& run_id,
                                   const std::string& activity_id, std::uint32_t attempt,
                                   const std::string& type, bool non_retryable = false) {
    IngressMessage m = ResultMsg(id, run_id, activity_id, attempt, nullptr);
    m.activity_failed = true;
    m.failure.set_message("remote failure");
    m.failure.set_error_type(type);
    m.failure.set_non_retryable(non_retryable);
    return m;
  }
  Status Heartbeat(const std::string& id, const std::string& run_id,
                   const std::string& activity_id, std::uint32_t attempt, const Json& details) {
    std::promise<Status> done;
    engine->Heartbeat({id, run_id, activity_id, attempt, JsonPayload(details)},
                      [&done](Status s) { done.set_value(std::move(s)); });
    return done.get_future().get();
  }

  std::vector<HistoryEvent> History(const std::string& id) {
    auto h = engine->History(id);
    BOOST_REQUIRE_MESSAGE(h.ok(), h.status().ToString());
    return *h;
  }
  WorkflowRecord Record(const std::string& id) {
    auto d = engine->Describe(id);
    BOOST_REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    return d->record;
  }
  static int Count(const std::vector<HistoryEvent>& h, Case c) {
    int n = 0;
    for (const auto& e : h) n += e.attributes_case() == c ? 1 : 0;
    return n;
  }
  // Waits until the history of `id` holds `n` events of kind `c`.
  void WaitCount(const std::string& id, Case c, int n) {
    const bool ok = WaitFor([&] {
      auto h = engine->History(id);
      return h.ok() && Count(*h, c) >= n;
    });
    BOOST_REQUIRE_MESSAGE(ok, "history of " + id + " never reached " + std::to_string(n) +
                                  " events of kind " + std::to_string(c) + ": " +
                                  Describe(History(id)));
  }
  void WaitSize(const std::string& id, std::size_t n) {
    const bool ok = WaitFor([&] {
      auto h = engine->History(id);
      return h.ok() && h->size() >= n;
    });
    BOOST_REQUIRE_MESSAGE(ok, "history of " + id + " never reached " + std::to_string(n) +
                                  " events: " + Describe(History(id)));
  }
  static std::string Describe(const std::vector<HistoryEvent>& h) {
    std::string s;
    for (const auto& e : h) {
      s += std::to_string(e.seq()) + " " + DescribeEvent(e) + "(cb " +
           std::to_string(e.caused_by()) + ") ";
    }
    return s;
  }
  // The kinds of the history, in order.
  std::vector<Case> Kinds(const std::string& id) {
    std::vector<Case> out;
    for (const auto& e : History(id)) out.push_back(e.attributes_case());
    return out;
  }
  Outcome Result(const std::string& id) {
    auto r = engine->AwaitResult(id, 20s);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    BOOST_TEST(StatusFromHistory(History(id)) == r->status);
    BOOST_TEST(Record(id).status() == r->status);
    return *r;
  }
  Json Output(const std::string& id) {
    Outcome o = Result(id);
    BOOST_REQUIRE_MESSAGE(o.status == records::WORKFLOW_STATUS_COMPLETED,
                          "status " + WorkflowStatusName(o.status) + ": " + o.failure);
    return *ParseJsonPayload(o.output);
  }
  // Timer rows of `id` (all of them, whenever due).
  std::vector<TimerRow> TimerRows(const std::string& id) {
    auto due = store->DueTimers(std::numeric_limits<Timestamp>::max(), 1000);
    BOOST_REQUIRE(due.ok());
    std::vector<TimerRow> out;
    for (const auto& r : *due) {
      if (r.workflow_id() == id) out.push_back(r);
    }
    return out;
  }
  // Waits until the sink saw `n` rows of `kind` for `id`; returns them.
  std::vector<OutboxRow> WaitRows(const std::string& id, records::OutboxRow::Kind kind,
                                  std::size_t n) {
    std::vector<OutboxRow> mine;
    const bool ok = WaitFor([&] {
      mine.clear();
      for (auto& r : sink.Rows(kind)) {
        if (r.workflow_id() == id) mine.push_back(r);
      }
      return mine.size() >= n;
    });
    BOOST_REQUIRE_MESSAGE(ok, "sink never saw " + std::to_string(n) + " rows of kind " +
                                  std::to_string(kind) + " for " + id);
    return mine;
  }

  MemoryStore memory;
  Store* store;
  ManualClock clock;
  WorkflowRegistry registry;
  ActivityRegistry activities;
  CollectingSink sink;
  int pool_threads = 4;  // of the local activity pool, from the next Open()
  std::size_t max_resident_runs = 100000;  // from the next Open()
  Gate gate;
  std::atomic<int> echo_calls{0}, fail_calls{0}, block_calls{0}, block_cancelled{0},
      undo_calls{0};
  std::mutex mu;
  std::vector<std::thread::id> activity_threads;  // guarded by mu
  std::unique_ptr<Engine> engine;
};

}  // namespace aion::testing
