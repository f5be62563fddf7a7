// Context: everything workflow code may use besides its own variables.
//
// Time, randomness, ids and logging come only from here so that replaying a
// history re-runs the code to the same commands (DESIGN §4.5). A Context
// belongs to one run and is used only from the coroutine of that run (one
// thread at a time). Waits are awaitables: `co_await ctx.sleep(1s)`.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "aion/engine/activity.h"
#include "aion/engine/clock.h"
#include "aion/engine/payload.h"
#include "aion/engine/task.h"

namespace aion {

// Thrown into workflow code at the wait it is blocked on when the workflow is
// asked to cancel (once per request: later waits proceed, so the code can
// run compensations), and by awaiting an activity that was cancelled.
// Escaping the workflow after a cancel request, it ends the run as
// cancelled; otherwise as failed.
class CancelledError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by awaiting an activity whose last attempt failed or timed out and
// that will not be retried.
class ActivityFailedError : public std::runtime_error {
 public:
  ActivityFailedError(const std::string& message, std::string type, std::uint32_t attempt,
                      bool timed_out)
      : std::runtime_error(message),
        type_(std::move(type)),
        attempt_(attempt),
        timed_out_(timed_out) {}
  // The activity's error type, or the timeout kind ("start_to_close", ...).
  const std::string& type() const { return type_; }
  std::uint32_t attempt() const { return attempt_; }
  bool timed_out() const { return timed_out_; }

 private:
  std::string type_;
  std::uint32_t attempt_;
  bool timed_out_;
};

// Thrown by awaiting a child workflow that did not complete: it failed, was
// cancelled, terminated or timed out, or its start was refused (its id is
// already running, or its type is unknown where it would run).
class ChildWorkflowFailedError : public std::runtime_error {
 public:
  ChildWorkflowFailedError(const std::string& message, std::string workflow_id, std::string status)
      : std::runtime_error(message),
        workflow_id_(std::move(workflow_id)),
        status_(std::move(status)) {}
  const std::string& workflow_id() const { return workflow_id_; }
  // "failed", "cancelled", "terminated", "timed_out" or "start_failed".
  const std::string& status() const { return status_; }

 private:
  std::string workflow_id_;
  std::string status_;
};

// What happens to a child that is still open when its parent's run ends
// (completed, failed, cancelled, terminated, timed out or continued as new).
enum class ParentClosePolicy {
  kTerminate,      // terminate it (default)
  kRequestCancel,  // ask it to cancel; it may compensate
  kAbandon,        // let it run on
};

struct ChildOptions {
  // The child's workflow id; "" = "<parent id>-<first 8 of the run id>-<n>"
  // for the run's n-th child. It may belong to any partition.
  std::string workflow_id;
  ParentClosePolicy parent_close_policy = ParentClosePolicy::kTerminate;
  // The child's run timeout (whole milliseconds over NATS); 0 = none.
  Micros run_timeout{0};
};

// Thrown by Context::continue_as_new. Not a std::exception, so a
// `catch (const std::exception&)` in workflow code does not swallow it.
struct ContinueAsNewRequest {
  Payload input;
};

namespace detail {

// One suspended wait of workflow code: on a timer, a signal, an activity, or
// several. kCancelled: the workflow was asked to cancel while it waited.
// Small on purpose: every awaitable holds one, and the coroutine frames of
// parked runs hold the awaitables.
struct Waiter {
  enum class Woken : std::uint8_t { kNot, kTimer, kSignal, kActivity, kChild, kCancelled };
  std::coroutine_handle<> handle;
  // Where the signal taken for this wait is put when it wakes it (unless peek).
  std::optional<Payload>* signal = nullptr;
  Woken woken = Woken::kNot;
  // Waits for a signal to be available without taking it (combinators).
  bool peek = false;
};

// A wait that can take part in ctx.first / ctx.all: it tells whether it has
// resolved, can register a waiter, and can be cancelled when it loses.
class Selectable {
 public:
  virtual ~Selectable() = default;
  virtual bool SelectReady() const = 0;
  // Resolved with an error (an activity that failed or was cancelled).
  virtual bool SelectFailed() const { return false; }
  virtual void SelectArm(Waiter* w) = 0;
  virtual void SelectCancel() = 0;
};

// How an activity ended, as workflow code sees it.
struct ActivityResolution {
  enum class Kind { kCompleted, kFailed, kCancelled };
  Kind kind = Kind::kCompleted;
  Payload result;          // kCompleted
  std::string message;     // kFailed
  std::string error_type;  // kFailed: the error type or the timeout kind
  std::uint32_t attempt = 0;
  bool timed_out = false;
};

// How a child workflow ended, as its parent's code sees it.
struct ChildResolution {
  enum class Kind { kCompleted, kFailed, kCancelled };  // kCancelled: by the parent
  Kind kind = Kind::kCompleted;
  Payload result;      // kCompleted
  std::string status;  // kFailed: see ChildWorkflowFailedError::status
  std::string message;
};

// What a run offers its Context. Implemented by the runtime; one per run.
class RunCore {
 public:
  virtual ~RunCore() = default;
  virtual const std::string& WorkflowId() const = 0;
  virtual std::string_view RunId() const = 0;
  virtual Timestamp Now() const = 0;  // time of the input being processed
  virtual std::uint64_t NextRandom() = 0;
  virtual bool Replaying() const = 0;

  // Timers. Ids are unique within a run; "" asks for a generated one.
  virtual std::string StartTimer(std::string_view id, Timestamp fire_at) = 0;
  virtual void CancelTimer(const std::string& id) = 0;
  virtual bool TimerFired(const std::string& id) const = 0;
  virtual bool TimerPending(const std::string& id) const = 0;
  // Signals are matched by (name, index): the n-th take of a name gets the
  // n-th signal of that name, whenever it arrived.
  virtual std::optional<Payload> TakeSignal(const std::string& name) = 0;
  virtual bool SignalAvailable(const std::string& name) const = 0;
  // Register/unregister a suspended wait. A woken waiter is unregistered by
  // the core before its handle is resumed.
  virtual void WaitTimer(const std::string& id, Waiter* w) = 0;
  virtual void WaitSignal(const std::string& name, Waiter* w) = 0;
  virtual void Forget(Waiter* w) = 0;

  // Activities. Ids are generated, unique within a run.
  virtual std::string ScheduleActivity(std::string_view type, Payload input,
                                       const ActivityOptions& options) = 0;
  virtual void CancelActivity(const std::string& id) = 0;
  // Null while the activity is pending; else how it ended.
  virtual const ActivityResolution* ActivityResult(const std::string& id) const = 0;
  virtual void WaitActivity(const std::string& id, Waiter* w) = 0;
  // The workflow has been asked to cancel.
  virtual bool CancelRequested() const = 0;

  // Child workflows. Returns the child's reference within the run.
  virtual std::string StartChild(std::string_view type, Payload input,
                                 const ChildOptions& options) = 0;
  virtual const std::string& ChildWorkflowId(const std::string& ref) const = 0;
  virtual void CancelChild(const std::string& ref) = 0;
  // Null while the child is open; else how it ended.
  virtual const ChildResolution* ChildResult(const std::string& ref) const = 0;
  virtual void WaitChild(const std::string& ref, Waiter* w) = 0;

  // The recorded value of the run's next side effect, or fn() recorded now.
  virtual Payload SideEffect(const std::function<Payload()>& fn) = 0;
  // See Context::patched.
  virtual bool Patched(std::string_view patch_id) = 0;
  // See Context::on_query.
  virtual void SetQueryHandler(std::string name, std::function<Json(const Json&)> handler) = 0;
};

}  // namespace detail

// A started timer. Awaiting it yields true when it fired, false when it was
// cancelled first. Cancel() is a no-op once it fired.
class Timer : public detail::Selectable {
 public:
  Timer(detail::RunCore* core, std::string id) : core_(core), id_(std::move(id)) {}
  const std::string& id() const { return id_; }
  void Cancel() { core_->CancelTimer(id_); }

  bool await_ready() const { return !core_->TimerPending(id_); }
  void await_suspend(std::coroutine_handle<> h) {
    waiter_.handle = h;
    core_->WaitTimer(id_, &waiter_);
  }
  // Throws CancelledError (after cancelling the timer) when the workflow was
  // asked to cancel while it waited.
  bool await_resume() {
    if (waiter_.woken == detail::Waiter::Woken::kCancelled) {
      core_->CancelTimer(id_);
      throw CancelledError("workflow cancelled while waiting for timer '" + id_ + "'");
    }
    return core_->TimerFired(id_);
  }

  bool SelectReady() const override { return await_ready(); }
  void SelectArm(detail::Waiter* w) override { core_->WaitTimer(id_, w); }
  void SelectCancel() override { Cancel(); }

 private:
  detail::RunCore* core_;
  std::string id_;
  detail::Waiter waiter_;
};

// Awaiting yields the next signal `name` (by index) converted to T.
// `.within(d)` yields std::optional<T>: nullopt when d passes first.
template <typename T>
class SignalAwaitable : public detail::Selectable {
 public:
  SignalAwaitable(detail::RunCore* core, std::string name) : core_(core), name_(std::move(name)) {}

  bool await_ready() {
    got_ = core_->TakeSignal(name_);
    return got_.has_value();
  }
  void await_suspend(std::coroutine_handle<> h) {
    waiter_.handle = h;
    waiter_.signal = &got_;
    core_->WaitSignal(name_, &waiter_);
  }
  T await_resume() {
    if (!got_ && waiter_.woken == detail::Waiter::Woken::kCancelled) {
      throw CancelledError("workflow cancelled while waiting for signal '" + name_ + "'");
    }
    return detail::FromPayload<T>(*got_);  // taken at once or when the signal woke us
  }

  class Within {
   public:
    Within(detail::RunCore* core, std::string name, Micros timeout)
        : core_(core), name_(std::move(name)), timeout_(timeout) {}
    bool await_ready() {
      got_ = core_->TakeSignal(name_);
      return got_.has_value();
    }
    void await_suspend(std::coroutine_handle<> h) {
      waiter_.handle = h;
      waiter_.signal = &got_;
      timer_ = core_->StartTimer("", core_->Now() + timeout_.count());
      core_->WaitSignal(name_, &waiter_);
      core_->WaitTimer(timer_, &waiter_);
    }
    std::optional<T> await_resume() {
      if (waiter_.woken == detail::Waiter::Woken::kNot) {
        return detail::FromPayload<T>(*got_);  // taken at once: no timer was started
      }
      if (waiter_.woken == detail::Waiter::Woken::kCancelled) {
        core_->CancelTimer(timer_);
        throw CancelledError("workflow cancelled while waiting for signal '" + name_ + "'");
      }
      if (waiter_.woken == detail::Waiter::Woken::kSignal) {
        core_->CancelTimer(timer_);
        return detail::FromPayload<T>(*got_);
      }
      return std::nullopt;
    }

   private:
    detail::RunCore* core_;
    std::string name_;
    Micros timeout_;
    std::string timer_;
    std::optional<Payload> got_;
    detail::Waiter waiter_;
  };

  template <typename Rep, typename Period>
  Within within(std::chrono::duration<Rep, Period> timeout) {
    return Within(core_, name_, std::chrono::duration_cast<Micros>(timeout));
  }

  // Ready when a signal `name` is there to take; taking it is the co_await.
  bool SelectReady() const override { return got_.has_value() || core_->SignalAvailable(name_); }
  void SelectArm(detail::Waiter* w) override {
    w->peek = true;
    core_->WaitSignal(name_, w);
  }
  void SelectCancel() override {}

 private:
  detail::RunCore* core_;
  std::string name_;
  std::optional<Payload> got_;
  detail::Waiter waiter_;
};

// A scheduled activity. Awaiting it yields its result converted to T, or
// throws ActivityFailedError (failed or timed out for good) or CancelledError
// (cancelled by Cancel() or by a cancel request of the workflow).
template <typename T>
class Activity : public detail::Selectable {
 public:
  Activity(detail::RunCore* core, std::string id) : core_(core), id_(std::move(id)) {}
  const std::string& id() const { return id_; }
  // Stops waiting and tells the activity's worker; a no-op once it ended.
  void Cancel() { core_->CancelActivity(id_); }

  bool await_ready() const { return core_->ActivityResult(id_) != nullptr; }
  void await_suspend(std::coroutine_handle<> h) {
    waiter_.handle = h;
    core_->WaitActivity(id_, &waiter_);
  }
  T await_resume() {
    if (waiter_.woken == detail::Waiter::Woken::kCancelled) {
      core_->CancelActivity(id_);
      throw CancelledError("workflow cancelled while waiting for activity " + id_);
    }
    const detail::ActivityResolution& r = *core_->ActivityResult(id_);
    using Kind = detail::ActivityResolution::Kind;
    if (r.kind == Kind::kCancelled) throw CancelledError("activity " + id_ + " was cancelled");
    if (r.kind == Kind::kFailed) {
      throw ActivityFailedError(r.message, r.error_type, r.attempt, r.timed_out);
    }
    if constexpr (!std::is_void_v<T>) return detail::FromPayload<T>(r.result);
  }

  bool SelectReady() const override { return await_ready(); }
  bool SelectFailed() const override {
    const detail::ActivityResolution* r = core_->ActivityResult(id_);
    return r != nullptr && r->kind != detail::ActivityResolution::Kind::kCompleted;
  }
  void SelectArm(detail::Waiter* w) override { core_->WaitActivity(id_, w); }
  void SelectCancel() override { Cancel(); }

 private:
  detail::RunCore* core_;
  std::string id_;
  detail::Waiter waiter_;
};

// A started child workflow. Awaiting it yields its result converted to T, or
// throws ChildWorkflowFailedError (it did not complete) or CancelledError
// (cancelled by Cancel() or by a cancel request of this workflow, which
// also asks the child to cancel).
template <typename T>
class ChildWorkflow : public detail::Selectable {
 public:
  ChildWorkflow(detail::RunCore* core, std::string ref) : core_(core), ref_(std::move(ref)) {}
  const std::string& workflow_id() const { return core_->ChildWorkflowId(ref_); }
  // Stops waiting and asks the child to cancel; a no-op once it ended.
  void Cancel() { core_->CancelChild(ref_); }

  bool await_ready() const { return core_->ChildResult(ref_) != nullptr; }
  void await_suspend(std::coroutine_handle<> h) {
    waiter_.handle = h;
    core_->WaitChild(ref_, &waiter_);
  }
  T await_resume() {
    if (waiter_.woken == detail::Waiter::Woken::kCancelled) {
      Cancel();
      throw CancelledError("workflow cancelled while waiting for child '" + workflow_id() + "'");
    }
    const detail::ChildResolution& r = *core_->ChildResult(ref_);
    using Kind = detail::ChildResolution::Kind;
    if (r.kind == Kind::kCancelled) {
      throw CancelledError("child workflow '" + workflow_id() + "' was cancelled");
    }
    if (r.kind == Kind::kFailed) throw ChildWorkflowFailedError(r.message, workflow_id(), r.status);
    if constexpr (!std::is_void_v<T>) return detail::FromPayload<T>(r.result);
  }

  bool SelectReady() const override { return await_ready(); }
  bool SelectFailed() const override {
    const detail::ChildResolution* r = core_->ChildResult(ref_);
    return r != nullptr && r->kind != detail::ChildResolution::Kind::kCompleted;
  }
  void SelectArm(detail::Waiter* w) override { core_->WaitChild(ref_, w); }
  void SelectCancel() override { Cancel(); }

 private:
  detail::RunCore* core_;
  std::string ref_;
  detail::Waiter waiter_;
};

namespace detail {
// Resumes when any of `waits` is ready; takes nothing. A cancel request of
// the workflow cancels them all and throws CancelledError.
class AnyReady {
 public:
  explicit AnyReady(std::vector<Selectable*> waits) : waits_(std::move(waits)) {}
  bool await_ready() const {
    for (const Selectable* w : waits_) {
      if (w->SelectReady()) return true;
    }
    return waits_.empty();
  }
  void await_suspend(std::coroutine_handle<> h) {
    waiter_.handle = h;
    for (Selectable* w : waits_) w->SelectArm(&waiter_);
  }
  void await_resume() {
    if (waiter_.woken != Waiter::Woken::kCancelled) return;
    for (Selectable* w : waits_) w->SelectCancel();
    throw CancelledError("workflow cancelled while waiting for several things");
  }

 private:
  std::vector<Selectable*> waits_;
  Waiter waiter_;
};
}  // namespace detail

// Logs through spdlog with the workflow id; silent while replaying history.
class WorkflowLogger {
 public:
  explicit WorkflowLogger(const detail::RunCore* core) : core_(core) {}
  void info(std::string_view msg) const;
  void warn(std::string_view msg) const;
  void error(std::string_view msg) const;

 private:
  const detail::RunCore* core_;
};

class Context {
 public:
  explicit Context(detail::RunCore* core) : core_(core), logger_(core) {}
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const std::string& workflow_id() const { return core_->WorkflowId(); }
  // Valid while the run's code runs (a resident run keeps it inline).
  std::string_view run_id() const { return core_->RunId(); }
  // Deterministic time: when the input the code is reacting to was recorded.
  std::chrono::system_clock::time_point now() const {
    return std::chrono::system_clock::time_point(Micros(core_->Now()));
  }
  Timestamp now_us() const { return core_->Now(); }
  // Deterministic pseudo-random numbers, seeded by the run id.
  std::uint64_t random() { return core_->NextRandom(); }
  // A deterministic RFC 4122 version-4 style UUID drawn from random().
  std::string uuid();
  const WorkflowLogger& log() const { return logger_; }

  // Durable sleep.
  template <typename Rep, typename Period>
  Timer sleep(std::chrono::duration<Rep, Period> d) {
    return timer("", d);
  }
  // A durable timer that can be cancelled; `name` ("" = generated) must be
  // unique among the run's timers.
  template <typename Rep, typename Period>
  Timer timer(std::string_view name, std::chrono::duration<Rep, Period> d) {
    const auto us = std::chrono::duration_cast<Micros>(d).count();
    return Timer(core_, core_->StartTimer(name, core_->Now() + (us > 0 ? us : 0)));
  }
  // The next signal `name`, matched by (name, index).
  template <typename T = Json>
  SignalAwaitable<T> signal(std::string name) {
    return SignalAwaitable<T>(core_, std::move(name));
  }
  // Schedules an activity now (it runs even if never awaited, until the run
  // ends or it is cancelled). Local when options.task_queue is empty.
  template <typename T = Json, typename In = Json>
  Activity<T> activity(std::string_view type, const In& input, const ActivityOptions& options) {
    return Activity<T>(core_, core_->ScheduleActivity(type, detail::ToPayload(input), options));
  }
  // With the default options. An overload, not a default argument: GCC 12
  // destroys a default argument's temporary wrongly inside `co_await`.
  template <typename T = Json, typename In = Json>
  Activity<T> activity(std::string_view type, const In& input) {
    const ActivityOptions defaults;
    return activity<T>(type, input, defaults);
  }
  // Starts a child workflow of `type` (it runs even if never awaited; see
  // ChildOptions for its id and what happens to it when this run ends).
  template <typename T = Json, typename In = Json>
  ChildWorkflow<T> child(std::string_view type, const In& input, const ChildOptions& options) {
    return ChildWorkflow<T>(core_, core_->StartChild(type, detail::ToPayload(input), options));
  }
  // With the default options (an overload for the reason `activity` has one).
  template <typename T = Json, typename In = Json>
  ChildWorkflow<T> child(std::string_view type, const In& input) {
    const ChildOptions defaults;
    return child<T>(type, input, defaults);
  }

  // The workflow has been asked to cancel (see CancelledError).
  bool cancel_requested() const { return core_->CancelRequested(); }

  // Waits for the first of several activities, children, timers and signals to be
  // ready and returns its index (the first in argument order when several
  // are). The losers are cancelled (signals are left untaken). Then
  // `co_await` the winner for its value:
  //   auto pay = ctx.activity<Json>("charge", order);
  //   auto deadline = ctx.timer("deadline", 1h);
  //   const std::size_t winner = co_await ctx.first(pay, deadline);
  //   if (winner == 0) receipt = co_await pay;
  template <typename... Waits>
  Task<std::size_t> first(Waits&... waits) {
    std::vector<detail::Selectable*> all{&waits...};
    co_await detail::AnyReady(all);
    std::size_t winner = all.size();
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (winner == all.size() && all[i]->SelectReady()) {
        winner = i;
      } else if (!all[i]->SelectReady()) {
        all[i]->SelectCancel();
      }
    }
    co_return winner;
  }

  // Waits until all of them are ready, or until one activity or child fails (then the
  // others are cancelled). `co_await` each afterwards for its value or error.
  template <typename... Waits>
  Task<void> all(Waits&... waits) {
    std::vector<detail::Selectable*> every{&waits...};
    while (true) {
      std::vector<detail::Selectable*> pending;
      bool failed = false;
      for (detail::Selectable* w : every) {
        if (!w->SelectReady()) pending.push_back(w);
        failed = failed || w->SelectFailed();
      }
      if (failed) {
        for (detail::Selectable* w : pending) w->SelectCancel();
        co_return;
      }
      if (pending.empty()) co_return;
      co_await detail::AnyReady(std::move(pending));
    }
  }

  // Runs `fn` (no arguments; returns something JSON-convertible) once and
  // records its value; replay returns the recorded value without running it.
  // For small non-deterministic reads; use an activity for real I/O.
  template <typename Fn>
  auto side_effect(Fn fn) -> std::invoke_result_t<Fn> {
    using T = std::invoke_result_t<Fn>;
    Payload value = core_->SideEffect([&] { return detail::ToPayload<T>(fn()); });
    return detail::FromPayload<T>(value);
  }

  // Safe code changes: true where the run takes the new code path. A run
  // that reaches this point live takes it (and records a PatchMarker); a run
  // replaying an input whose commands were recorded before the change keeps
  // the old path. An input whose code recorded nothing counts as live. The
  // answer is fixed per run and patch id.
  bool patched(std::string_view patch_id) { return core_->Patched(patch_id); }

  // Ends this run and starts a new run of the same id and type (on the
  // worker's current code version) with `input`: a fresh, short history for
  // long-lived workflows. Pending timers and activities are cancelled.
  template <typename In>
  [[noreturn]] void continue_as_new(const In& input) {
    throw ContinueAsNewRequest{detail::ToPayload(input)};
  }

  // Answers the query `name` (aion.req.<id>.query) from the live run. The
  // handler runs on the run's executor between steps of the code, must only
  // read, and is never recorded. It may capture locals of the workflow
  // function by reference (not of a nested coroutine that ends earlier); a
  // closed run answers kNotRunning. Registering a name again replaces it.
  void on_query(std::string name, std::function<Json(const Json&)> handler) {
    core_->SetQueryHandler(std::move(name), std::move(handler));
  }

 private:
  detail::RunCore* core_;
  WorkflowLogger logger_;
};

}  // namespace aion
