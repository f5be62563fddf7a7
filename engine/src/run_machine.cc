#include "run_machine.h"

#include <algorithm>
#include <stdexcept>

#include "aion/engine/ids.h"
#include "type_name.h"

namespace aion {

using Case = HistoryEvent::AttributesCase;

namespace {
static_assert(static_cast<int>(ParentClosePolicy::kTerminate) ==
              history::PARENT_CLOSE_POLICY_TERMINATE);
static_assert(static_cast<int>(ParentClosePolicy::kRequestCancel) ==
              history::PARENT_CLOSE_POLICY_REQUEST_CANCEL);
static_assert(static_cast<int>(ParentClosePolicy::kAbandon) ==
              history::PARENT_CLOSE_POLICY_ABANDON);

// The fields that make two commands the same command; payloads are not compared.
bool SameCommand(const HistoryEvent& a, const HistoryEvent& b) {
  if (a.attributes_case() != b.attributes_case() || a.caused_by() != b.caused_by()) return false;
  switch (a.attributes_case()) {
    case Case::kTimerStarted:
      return a.timer_started().timer_id() == b.timer_started().timer_id() &&
             a.timer_started().fire_at_us() == b.timer_started().fire_at_us();
    case Case::kTimerCancelled:
      return a.timer_cancelled().timer_id() == b.timer_cancelled().timer_id();
    case Case::kActivityScheduled:
      return a.activity_scheduled().activity_id() == b.activity_scheduled().activity_id() &&
             a.activity_scheduled().activity_type() == b.activity_scheduled().activity_type();
    case Case::kActivityCancelRequested:
      return a.activity_cancel_requested().activity_id() ==
             b.activity_cancel_requested().activity_id();
    case Case::kSideEffectRecorded:
      return a.side_effect_recorded().side_effect_id() == b.side_effect_recorded().side_effect_id();
    case Case::kPatchMarker:
      return a.patch_marker().patch_id() == b.patch_marker().patch_id();
    case Case::kChildWorkflowScheduled:
      return a.child_workflow_scheduled().child_ref() == b.child_workflow_scheduled().child_ref() &&
             a.child_workflow_scheduled().workflow_id() ==
                 b.child_workflow_scheduled().workflow_id() &&
             a.child_workflow_scheduled().workflow_type() ==
                 b.child_workflow_scheduled().workflow_type();
    case Case::kChildWorkflowCancelRequested:
      return a.child_workflow_cancel_requested().child_ref() ==
             b.child_workflow_cancel_requested().child_ref();
    default:
      return true;
  }
}

history::ActivityOptions ToProto(const ActivityOptions& o) {
  history::ActivityOptions p;
  p.set_task_queue(o.task_queue);
  p.set_start_to_close_us(o.start_to_close.count());
  p.set_schedule_to_close_us(o.schedule_to_close.count());
  p.set_heartbeat_timeout_us(o.heartbeat_timeout.count());
  auto* r = p.mutable_retry();
  r->set_initial_interval_us(o.retry.initial_interval.count());
  r->set_backoff_coefficient(o.retry.backoff_coefficient);
  r->set_maximum_interval_us(o.retry.maximum_interval.count());
  r->set_maximum_attempts(o.retry.maximum_attempts);
  for (const auto& t : o.retry.non_retryable_error_types) r->add_non_retryable_error_types(t);
  return p;
}

detail::ActivityResolution CancelledResolution() {
  detail::ActivityResolution r;
  r.kind = detail::ActivityResolution::Kind::kCancelled;
  return r;
}

detail::ActivityResolution Failure(std::string message, std::string type, std::uint32_t attempt,
                                   bool timed_out) {
  detail::ActivityResolution r;
  r.kind = detail::ActivityResolution::Kind::kFailed;
  r.message = std::move(message);
  r.error_type = std::move(type);
  r.attempt = attempt;
  r.timed_out = timed_out;
  return r;
}

Status NondeterminismAt(std::uint64_t seq, const std::string& expected, const std::string& found) {
  return {StatusCode::kNondeterminism, "nondeterminism at seq " + std::to_string(seq) +
                                           ": history has " + expected + ", workflow code issued " +
                                           found};
}
}  // namespace

RunMachine::RunMachine(const std::string& workflow_id, const WorkflowRegistry* registry)
    : workflow_id_(workflow_id), registry_(registry) {}

std::string_view RunMachine::RunId() const {
  if (run_id_size_ == kRunIdInRare) return rare_->long_run_id;
  return {run_id_chars_.data(), run_id_size_};
}

void RunMachine::SetRunId(std::string_view id) {
  if (id.size() <= run_id_chars_.size()) {
    std::copy(id.begin(), id.end(), run_id_chars_.begin());
    run_id_size_ = static_cast<std::uint8_t>(id.size());
  } else {
    rare().long_run_id = std::string(id);
    run_id_size_ = kRunIdInRare;
  }
}

RunMachine::~RunMachine() {
  // Waiters live in coroutine frames that root_ is about to destroy.
  waiters_.clear();
  ready_.clear();
}

RunMachine::Rare& RunMachine::rare() {
  if (!rare_) rare_ = std::make_unique<Rare>();
  return *rare_;
}

// Newest first: the timer the code asks about is almost always a recent one.
RunMachine::TimerEntry* RunMachine::FindTimer(std::string_view id) {
  for (auto it = timers_.rbegin(); it != timers_.rend(); ++it) {
    if (it->id == id) return &*it;
  }
  return nullptr;
}

const RunMachine::TimerEntry* RunMachine::FindTimer(std::string_view id) const {
  return const_cast<RunMachine*>(this)->FindTimer(id);
}

RunMachine::SignalBox* RunMachine::FindSignals(std::string_view name) {
  for (SignalBox& box : signals_) {
    if (box.name == name) return &box;
  }
  return nullptr;
}

const RunMachine::SignalBox* RunMachine::FindSignals(std::string_view name) const {
  return const_cast<RunMachine*>(this)->FindSignals(name);
}

void RunMachine::ReleaseSpare() {
  if (unmatched_.empty()) std::vector<PendingCommand>().swap(unmatched_);
  if (ready_.empty()) std::vector<std::coroutine_handle<>>().swap(ready_);
  if (waiters_.empty()) std::vector<WaitEntry>().swap(waiters_);
}

Status RunMachine::Apply(const HistoryEvent& event) {
  if (applied_seq_ != 0 && event.seq() != applied_seq_ + 1) {
    return Internal("history of '" + workflow_id_ + "' jumps from seq " +
                    std::to_string(applied_seq_) + " to " + std::to_string(event.seq()));
  }
  if (applied_seq_ == 0 && event.attributes_case() != Case::kWorkflowStarted) {
    return Internal("run of '" + workflow_id_ + "' does not begin with WorkflowStarted (seq " +
                    std::to_string(event.seq()) + ")");
  }
  Status s = IsEngineRecorded(event) ? ApplyInput(event) : MatchCommand(event);
  if (!s.ok()) return s;
  applied_seq_ = event.seq();
  if (IsTerminalEvent(event)) terminal_recorded_ = true;
  return s;
}

Status RunMachine::ApplyInput(const HistoryEvent& event) {
  current_input_ = event.seq();
  now_ = event.recorded_at_us();
  switch (event.attributes_case()) {
    case Case::kWorkflowStarted:
      if (applied_seq_ != 0) return Internal("second WorkflowStarted in one run");
      AION_RETURN_IF_ERROR(StartRun(event));
      break;
    case Case::kSignalReceived: {
      const auto& sig = event.signal_received();
      SignalBox* box = FindSignals(sig.name());
      if (box == nullptr) box = &signals_.emplace_back(SignalBox{sig.name(), {}, 0});
      box->received.push_back(sig.input());
      WakeSignalWaiters(sig.name());
      break;
    }
    case Case::kTimerFired:
      AION_RETURN_IF_ERROR(ApplyTimerFired(event));
      break;
    case Case::kTimerCancelled: {  // recorded by the engine (termination)
      TimerEntry* timer = FindTimer(event.timer_cancelled().timer_id());
      if (timer != nullptr && timer->state == TimerState::kPending) {
        timer->state = TimerState::kCancelled;
      }
      break;
    }
    case Case::kActivityStarted:
      break;  // an attempt began; the code waits for the outcome
    case Case::kActivityCompleted: {
      const auto& done = event.activity_completed();
      detail::ActivityResolution r;
      r.result = done.result();
      r.attempt = done.attempt();
      AION_RETURN_IF_ERROR(ResolveActivity(event, done.activity_id(), std::move(r)));
      break;
    }
    case Case::kActivityFailed: {
      const auto& failed = event.activity_failed();
      if (failed.retry_at_us() > 0) break;  // another attempt follows
      AION_RETURN_IF_ERROR(
          ResolveActivity(event, failed.activity_id(),
                          Failure(failed.failure().message(), failed.failure().error_type(),
                                  failed.attempt(), false)));
      break;
    }
    case Case::kActivityTimedOut: {
      const auto& t = event.activity_timed_out();
      if (t.retry_at_us() > 0) break;
      AION_RETURN_IF_ERROR(ResolveActivity(
          event, t.activity_id(),
          Failure("activity " + t.activity_id() + " timed out (" + TimeoutKindName(t.kind()) +
                      ") on attempt " + std::to_string(t.attempt()),
                  TimeoutKindName(t.kind()), t.attempt(), true)));
      break;
    }
    case Case::kActivityCancelRequested: {  // recorded by the engine (termination)
      if (!rare_) break;
      auto it = rare_->activities.find(event.activity_cancel_requested().activity_id());
      if (it != rare_->activities.end() && !it->second) {
        it->second = CancelledResolution();
      }
      break;
    }
    case Case::kWorkflowCancelRequested:
      DeliverCancel();
      break;
    case Case::kChildWorkflowClosed:
      AION_RETURN_IF_ERROR(ResolveChild(event));
      break;
    case Case::kWorkflowTerminated:
      break;  // terminal: Apply marks it
    default:
      return Internal("not an input event: " + DescribeEvent(event));
  }
  RunUntilBlocked();
  return Status::Ok();
}

Status RunMachine::ApplyTimerFired(const HistoryEvent& event) {
  const std::string& id = event.timer_fired().timer_id();
  TimerEntry* timer = FindTimer(id);
  if (timer == nullptr) {
    return NondeterminismAt(event.seq(), DescribeEvent(event), "no timer with that id");
  }
  if (timer->state == TimerState::kCancelled) {
    // The fire was recorded before our cancel reached the writer, which
    // then recorded nothing for the cancel: forget it here too.
    DropMootCommand([&](const HistoryEvent& c) {
      return c.has_timer_cancelled() && c.timer_cancelled().timer_id() == id;
    });
    return Status::Ok();
  }
  timer->state = TimerState::kFired;
  WakeWaiters(WaitKind::kTimer, id, detail::Waiter::Woken::kTimer);
  return Status::Ok();
}

Status RunMachine::ResolveActivity(const HistoryEvent& event, const std::string& id,
                                   detail::ActivityResolution resolution) {
  auto it = rare().activities.find(id);
  if (it == rare_->activities.end()) {
    return NondeterminismAt(event.seq(), DescribeEvent(event), "no activity with that id");
  }
  if (it->second) {
    // Cancelled by the code before this outcome was applied: the writer had
    // recorded the outcome first and recorded nothing for the cancel.
    DropMootCommand([&](const HistoryEvent& c) {
      return c.has_activity_cancel_requested() && c.activity_cancel_requested().activity_id() == id;
    });
    return Status::Ok();
  }
  it->second = std::move(resolution);
  WakeWaiters(WaitKind::kActivity, id, detail::Waiter::Woken::kActivity);
  return Status::Ok();
}

Status RunMachine::ResolveChild(const HistoryEvent& event) {
  const auto& closed = event.child_workflow_closed();
  auto it = rare().children.find(closed.child_ref());
  if (it == rare_->children.end()) {
    return NondeterminismAt(event.seq(), DescribeEvent(event), "no child with that reference");
  }
  if (it->second.resolution) {
    // Cancelled by the code before this close was applied: the writer had
    // recorded the close first and recorded nothing for the cancel.
    DropMootCommand([&](const HistoryEvent& c) {
      return c.has_child_workflow_cancel_requested() &&
             c.child_workflow_cancel_requested().child_ref() == closed.child_ref();
    });
    return Status::Ok();
  }
  detail::ChildResolution r;
  if (closed.status() == history::CHILD_STATUS_COMPLETED) {
    r.result = closed.output();
  } else {
    r.kind = detail::ChildResolution::Kind::kFailed;
    r.status = ChildStatusName(closed.status());
    r.message = "child workflow '" + it->second.workflow_id + "' " + r.status +
                (closed.failure().empty() ? "" : ": " + closed.failure());
  }
  it->second.resolution = std::move(r);
  WakeWaiters(WaitKind::kChild, closed.child_ref(), detail::Waiter::Woken::kChild);
  return Status::Ok();
}

void RunMachine::WakeWaiters(WaitKind kind, const std::string& key, detail::Waiter::Woken how) {
  // Wake unregisters the waiter (and its other registrations): look again
  // from the start each time.
  while (true) {
    auto w = std::find_if(waiters_.begin(), waiters_.end(),
                          [&](const WaitEntry& e) { return e.kind == kind && e.key == key; });
    if (w == waiters_.end()) return;
    Wake(w->waiter, how);
  }
}

template <typename Pred>
void RunMachine::DropMootCommand(Pred is_it) {
  auto moot = std::find_if(unmatched_.begin(), unmatched_.end(),
                           [&](const PendingCommand& p) { return is_it(p.command.event); });
  if (moot != unmatched_.end()) unmatched_.erase(moot);
}

void RunMachine::DeliverCancel() {
  cancel_requested_ = true;
  // Every wait in progress ends with CancelledError; Wake unregisters each.
  // Order: timers, activities, children, signals; within a kind by key,
  // then by registration (the order replay of older histories expects).
  while (!waiters_.empty()) {
    const WaitEntry* first = &waiters_.front();
    for (const WaitEntry& e : waiters_) {
      if (e.kind < first->kind || (e.kind == first->kind && e.key < first->key)) first = &e;
    }
    Wake(first->waiter, detail::Waiter::Woken::kCancelled);
  }
}

Status RunMachine::StartRun(const HistoryEvent& event) {
  const auto& started = event.workflow_started();
  SetRunId(event.run_id());
  random_state_ = Fnv1a64(event.run_id());
  if (registry_->Find(started.workflow_type()) == nullptr) {
    return {StatusCode::kUnknownWorkflowType,
            "this worker has no workflow type '" + started.workflow_type() + "'"};
  }
  const WorkflowDefinition* def = registry_->Find(started.workflow_type(), started.code_version());
  if (def == nullptr) {
    return {StatusCode::kUnknownWorkflowType,
            "run is pinned to code version '" + started.code_version() + "' of '" +
                started.workflow_type() + "', this worker has version(s) " +
                registry_->Versions(started.workflow_type())};
  }
  root_ = def->run(context_, started.input());
  ready_.push_back(root_.handle());
  return Status::Ok();
}

Status RunMachine::MatchCommand(const HistoryEvent& event) {
  if (unmatched_.empty()) {
    return NondeterminismAt(event.seq(), DescribeEvent(event), "no further command");
  }
  const IssuedCommand& issued = unmatched_.front().command;
  if (!SameCommand(event, issued.event)) {
    return NondeterminismAt(
        event.seq(), DescribeEvent(event) + " after seq " + std::to_string(event.caused_by()),
        DescribeEvent(issued.event) + " after seq " + std::to_string(issued.event.caused_by()));
  }
  unmatched_.erase(unmatched_.begin());
  return Status::Ok();
}

void RunMachine::Issue(HistoryEvent command) {
  command.set_caused_by(current_input_);
  unmatched_.push_back({IssuedCommand{next_ordinal_++, std::move(command)}, false});
}

std::vector<IssuedCommand> RunMachine::TakeNewCommands() {
  std::vector<IssuedCommand> out;
  for (auto& p : unmatched_) {
    if (p.handed_out) continue;
    p.handed_out = true;
    out.push_back(p.command);
  }
  return out;
}

void RunMachine::RunUntilBlocked() {
  while (!ready_.empty()) {
    auto h = ready_.front();
    ready_.erase(ready_.begin());
    h.resume();
  }
  FinishIfDone();
}

void RunMachine::FinishIfDone() {
  if (finished_ || !root_.done()) return;
  finished_ = true;
  // The handlers may refer to the code's locals, which are gone now.
  if (rare_) rare_->query_handlers.clear();
  HistoryEvent terminal;
  try {
    *terminal.mutable_workflow_completed()->mutable_output() = root_.Result();
  } catch (const ContinueAsNewRequest& next) {
    *terminal.mutable_workflow_continued_as_new()->mutable_input() = next.input;
  } catch (const CancelledError& e) {
    if (cancel_requested_) {
      terminal.mutable_workflow_cancelled()->set_message(e.what());
    } else {
      terminal.mutable_workflow_failed()->set_message(e.what());
      terminal.mutable_workflow_failed()->set_error_type("CancelledError");
    }
  } catch (const ActivityFailedError& e) {
    auto* failed = terminal.mutable_workflow_failed();
    failed->set_message(e.what());
    failed->set_error_type("ActivityFailed:" + e.type());
  } catch (const ChildWorkflowFailedError& e) {
    auto* failed = terminal.mutable_workflow_failed();
    failed->set_message(e.what());
    failed->set_error_type("ChildWorkflowFailed:" + e.status());
  } catch (const std::exception& e) {
    auto* failed = terminal.mutable_workflow_failed();
    failed->set_message(e.what());
    failed->set_error_type(TypeNameOf(e));
  } catch (...) {
    terminal.mutable_workflow_failed()->set_message("workflow code threw a non-std exception");
  }
  // Every TimerStarted ends in TimerFired or TimerCancelled (invariant 8).
  // In id order, as recorded histories have them.
  std::vector<TimerEntry*> pending;
  for (TimerEntry& t : timers_) {
    if (t.state == TimerState::kPending) pending.push_back(&t);
  }
  std::sort(pending.begin(), pending.end(),
            [](const TimerEntry* a, const TimerEntry* b) { return a->id < b->id; });
  for (TimerEntry* t : pending) {
    t->state = TimerState::kCancelled;
    HistoryEvent cancel;
    cancel.mutable_timer_cancelled()->set_timer_id(t->id);
    Issue(std::move(cancel));
  }
  // Activities nobody awaited are cancelled with the run.
  if (rare_) {
    for (auto& [id, resolution] : rare_->activities) {
      if (resolution) continue;
      resolution = CancelledResolution();
      HistoryEvent cancel;
      cancel.mutable_activity_cancel_requested()->set_activity_id(id);
      Issue(std::move(cancel));
    }
  }
  Issue(std::move(terminal));
}

void RunMachine::Wake(detail::Waiter* w, detail::Waiter::Woken how) {
  Forget(w);
  // A combinator's waiter may be reached twice in one step: resume once.
  if (std::find(ready_.begin(), ready_.end(), w->handle) != ready_.end()) return;
  w->woken = how;
  ready_.push_back(w->handle);
}

std::uint64_t RunMachine::NextRandom() {
  // splitmix64: small, fast, and identical on every platform.
  std::uint64_t z = (random_state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::string RunMachine::StartTimer(std::string_view id, Timestamp fire_at) {
  if (!id.empty()) {
    if (Status s = ValidateName("timer name", id); !s.ok())
      throw std::invalid_argument(s.message());
  }
  std::string timer_id(id);
  if (id.empty()) {
    timer_id = '#';  // built in steps: GCC 12 warns falsely on "#" + to_string (-Wrestrict)
    timer_id += std::to_string(++timer_counter_);
  }
  // A generated id ('#' is no name character) is new; a name may be reused
  // once its timer ended.
  TimerEntry* timer = id.empty() ? nullptr : FindTimer(timer_id);
  if (timer != nullptr && timer->state == TimerState::kPending) {
    throw std::invalid_argument("timer '" + timer_id + "' is already running");
  }
  if (timer != nullptr) {
    timer->state = TimerState::kPending;
  } else {
    timers_.push_back(TimerEntry{timer_id, TimerState::kPending});
  }
  HistoryEvent cmd;
  cmd.mutable_timer_started()->set_timer_id(timer_id);
  cmd.mutable_timer_started()->set_fire_at_us(fire_at);
  Issue(std::move(cmd));
  return timer_id;
}

void RunMachine::CancelTimer(const std::string& id) {
  TimerEntry* timer = FindTimer(id);
  if (timer == nullptr || timer->state != TimerState::kPending) return;
  timer->state = TimerState::kCancelled;
  HistoryEvent cmd;
  cmd.mutable_timer_cancelled()->set_timer_id(id);
  Issue(std::move(cmd));
  WakeWaiters(WaitKind::kTimer, id, detail::Waiter::Woken::kTimer);
}

bool RunMachine::TimerFired(const std::string& id) const {
  const TimerEntry* timer = FindTimer(id);
  return timer != nullptr && timer->state == TimerState::kFired;
}

bool RunMachine::TimerPending(const std::string& id) const {
  const TimerEntry* timer = FindTimer(id);
  return timer != nullptr && timer->state == TimerState::kPending;
}

void RunMachine::WakeSignalWaiters(const std::string& name) {
  // Peeking waiters (combinators) all wake and take nothing; the first
  // taking waiter takes the signal.
  std::vector<detail::Waiter*> waiting;  // Wake edits waiters_
  for (const WaitEntry& e : waiters_) {
    if (e.kind == WaitKind::kSignal && e.key == name) waiting.push_back(e.waiter);
  }
  SignalBox* box = FindSignals(name);
  for (detail::Waiter* w : waiting) {
    if (w->peek) {
      Wake(w, detail::Waiter::Woken::kSignal);
    } else if (box != nullptr && box->taken < box->received.size()) {
      *w->signal = std::move(box->received[box->taken++]);
      Wake(w, detail::Waiter::Woken::kSignal);
    }
  }
}

bool RunMachine::SignalAvailable(const std::string& name) const {
  const SignalBox* box = FindSignals(name);
  return box != nullptr && box->taken < box->received.size();
}

std::optional<Payload> RunMachine::TakeSignal(const std::string& name) {
  SignalBox* box = FindSignals(name);
  if (box == nullptr || box->taken >= box->received.size()) return std::nullopt;
  return std::move(box->received[box->taken++]);
}

void RunMachine::WaitTimer(const std::string& id, detail::Waiter* w) {
  waiters_.push_back(WaitEntry{WaitKind::kTimer, id, w});
}

void RunMachine::WaitSignal(const std::string& name, detail::Waiter* w) {
  waiters_.push_back(WaitEntry{WaitKind::kSignal, name, w});
}

std::string RunMachine::ScheduleActivity(std::string_view type, Payload input,
                                         const ActivityOptions& options) {
  if (Status s = ValidateName("activity type", type); !s.ok()) {
    throw std::invalid_argument(s.message());
  }
  if (!options.task_queue.empty()) {
    if (Status s = ValidateName("task queue", options.task_queue); !s.ok()) {
      throw std::invalid_argument(s.message());
    }
  }
  Rare& r = rare();
  std::string id = std::to_string(++r.activity_counter);
  r.activities[id] = std::nullopt;
  HistoryEvent cmd;
  auto* scheduled = cmd.mutable_activity_scheduled();
  scheduled->set_activity_id(id);
  scheduled->set_activity_type(std::string(type));
  *scheduled->mutable_input() = std::move(input);
  *scheduled->mutable_options() = ToProto(options);
  Issue(std::move(cmd));
  return id;
}

void RunMachine::CancelActivity(const std::string& id) {
  if (!rare_) return;
  auto it = rare_->activities.find(id);
  if (it == rare_->activities.end() || it->second) return;
  it->second = CancelledResolution();
  HistoryEvent cmd;
  cmd.mutable_activity_cancel_requested()->set_activity_id(id);
  Issue(std::move(cmd));
  WakeWaiters(WaitKind::kActivity, id, detail::Waiter::Woken::kActivity);
}

const detail::ActivityResolution* RunMachine::ActivityResult(const std::string& id) const {
  if (!rare_) return nullptr;
  auto it = rare_->activities.find(id);
  return it == rare_->activities.end() || !it->second ? nullptr : &*it->second;
}

void RunMachine::WaitActivity(const std::string& id, detail::Waiter* w) {
  waiters_.push_back(WaitEntry{WaitKind::kActivity, id, w});
}

std::string RunMachine::StartChild(std::string_view type, Payload input,
                                   const ChildOptions& options) {
  if (Status s = ValidateName("workflow type", type); !s.ok()) {
    throw std::invalid_argument(s.message());
  }
  Rare& r = rare();
  std::string ref = std::to_string(++r.child_counter);
  std::string id = options.workflow_id;
  if (id.empty()) {
    // Unique per run, so a later run of this id does not collide with
    // children an earlier run abandoned.
    id = workflow_id_.substr(0, 100) + "-" + std::string(RunId().substr(0, 8)) + "-" + ref;
  }
  if (Status s = ValidateWorkflowId(id); !s.ok()) throw std::invalid_argument(s.message());
  if (options.run_timeout.count() < 0) {
    throw std::invalid_argument("a child's run timeout must not be negative");
  }
  r.children[ref] = ChildState{id, std::nullopt};
  HistoryEvent cmd;
  auto* scheduled = cmd.mutable_child_workflow_scheduled();
  scheduled->set_child_ref(ref);
  scheduled->set_workflow_id(std::move(id));
  scheduled->set_workflow_type(std::string(type));
  *scheduled->mutable_input() = std::move(input);
  scheduled->set_parent_close_policy(
      static_cast<history::ParentClosePolicy>(options.parent_close_policy));
  scheduled->set_run_timeout_us(options.run_timeout.count());
  Issue(std::move(cmd));
  return ref;
}

const std::string& RunMachine::ChildWorkflowId(const std::string& ref) const {
  if (!rare_) throw std::out_of_range("no child " + ref);
  return rare_->children.at(ref).workflow_id;
}

void RunMachine::CancelChild(const std::string& ref) {
  if (!rare_) return;
  auto it = rare_->children.find(ref);
  if (it == rare_->children.end() || it->second.resolution) return;
  detail::ChildResolution cancelled;
  cancelled.kind = detail::ChildResolution::Kind::kCancelled;
  it->second.resolution = std::move(cancelled);
  HistoryEvent cmd;
  cmd.mutable_child_workflow_cancel_requested()->set_child_ref(ref);
  Issue(std::move(cmd));
  WakeWaiters(WaitKind::kChild, ref, detail::Waiter::Woken::kChild);
}

const detail::ChildResolution* RunMachine::ChildResult(const std::string& ref) const {
  if (!rare_) return nullptr;
  auto it = rare_->children.find(ref);
  return it == rare_->children.end() || !it->second.resolution ? nullptr : &*it->second.resolution;
}

void RunMachine::WaitChild(const std::string& ref, detail::Waiter* w) {
  waiters_.push_back(WaitEntry{WaitKind::kChild, ref, w});
}

void RunMachine::Preload(const std::vector<HistoryEvent>& events) {
  for (const HistoryEvent& e : events) {
    if (e.has_side_effect_recorded()) {
      rare().recorded_side_effects[e.side_effect_recorded().side_effect_id()] =
          e.side_effect_recorded().value();
    } else if (e.has_patch_marker()) {
      rare().recorded_patches.emplace(e.patch_marker().patch_id(), e.caused_by());
    }
  }
}

Payload RunMachine::SideEffect(const std::function<Payload()>& fn) {
  Rare& r = rare();
  std::string id = std::to_string(++r.side_effect_counter);
  auto recorded = r.recorded_side_effects.find(id);
  Payload value = recorded != r.recorded_side_effects.end() ? recorded->second : fn();
  HistoryEvent cmd;
  cmd.mutable_side_effect_recorded()->set_side_effect_id(std::move(id));
  *cmd.mutable_side_effect_recorded()->mutable_value() = value;
  Issue(std::move(cmd));
  return value;
}

bool RunMachine::Patched(std::string_view patch_id) {
  if (Status s = ValidateName("patch id", patch_id); !s.ok()) {
    throw std::invalid_argument(s.message());
  }
  Rare& r = rare();
  if (auto known = r.patches.find(patch_id); known != r.patches.end()) return known->second;
  // Replaying an input: take the new path only where the history recorded
  // taking it; live: take it and record so.
  auto recorded = r.recorded_patches.find(patch_id);
  const bool take =
      recorded != r.recorded_patches.end() ? recorded->second == current_input_ : !replaying_;
  r.patches.emplace(std::string(patch_id), take);
  if (take) {
    HistoryEvent cmd;
    cmd.mutable_patch_marker()->set_patch_id(std::string(patch_id));
    Issue(std::move(cmd));
  }
  return take;
}

void RunMachine::SetQueryHandler(std::string name, std::function<Json(const Json&)> handler) {
  if (Status s = ValidateName("query name", name); !s.ok())
    throw std::invalid_argument(s.message());
  rare().query_handlers[std::move(name)] = std::move(handler);
}

Result<Payload> RunMachine::Query(const std::string& name, const Payload& args) const {
  if (finished_) {
    return Status{StatusCode::kNotRunning,
                  "the run of '" + workflow_id_ + "' has ended; its query handlers ended with it"};
  }
  static const std::map<std::string, std::function<Json(const Json&)>> kNone;
  const auto& handlers = rare_ ? rare_->query_handlers : kNone;
  auto it = handlers.find(name);
  if (it == handlers.end()) {
    std::string known;
    for (const auto& [n, h] : handlers) known += (known.empty() ? "" : ", ") + n;
    return Status{StatusCode::kUnknownQuery,
                  "workflow '" + workflow_id_ + "' has no query handler '" + name +
                      "' (it has: " + (known.empty() ? "none" : known) + ")"};
  }
  Json parsed = nullptr;
  if (!args.data().empty()) {
    auto json = ParseJsonPayload(args);
    if (!json.ok()) return json.status();
    parsed = std::move(*json);
  }
  try {
    return JsonPayload(it->second(parsed));
  } catch (const std::exception& e) {
    return InvalidArgument("query '" + name + "' failed: " + e.what());
  }
}

void RunMachine::Forget(detail::Waiter* w) {
  waiters_.erase(std::remove_if(waiters_.begin(), waiters_.end(),
                                [w](const WaitEntry& e) { return e.waiter == w; }),
                 waiters_.end());
}

}  // namespace aion
