#include "run_machine.h"

#include <algorithm>
#include <stdexcept>
#include <typeinfo>

#include "aion/engine/ids.h"

namespace aion {

using Case = HistoryEvent::AttributesCase;

namespace {
// The fields that make two commands the same command; payloads are not compared.
bool SameCommand(const HistoryEvent& a, const HistoryEvent& b) {
  if (a.attributes_case() != b.attributes_case() || a.caused_by() != b.caused_by()) return false;
  switch (a.attributes_case()) {
    case Case::kTimerStarted:
      return a.timer_started().timer_id() == b.timer_started().timer_id() &&
             a.timer_started().fire_at_us() == b.timer_started().fire_at_us();
    case Case::kTimerCancelled:
      return a.timer_cancelled().timer_id() == b.timer_cancelled().timer_id();
    default:
      return true;
  }
}

Status NondeterminismAt(std::uint64_t seq, const std::string& expected, const std::string& found) {
  return {StatusCode::kNondeterminism, "nondeterminism at seq " + std::to_string(seq) +
                                           ": history has " + expected + ", workflow code issued " +
                                           found};
}
}  // namespace

RunMachine::RunMachine(std::string workflow_id, const WorkflowRegistry* registry)
    : workflow_id_(std::move(workflow_id)), registry_(registry) {}

RunMachine::~RunMachine() {
  // Waiters live in coroutine frames that root_ is about to destroy.
  timer_waiters_.clear();
  signal_waiters_.clear();
  ready_.clear();
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
  Status s = IsInputEvent(event) ? ApplyInput(event) : MatchCommand(event);
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
      signals_[sig.name()].push_back(sig.input());
      auto& waiters = signal_waiters_[sig.name()];
      auto& taken = signals_taken_[sig.name()];
      if (!waiters.empty() && taken < signals_[sig.name()].size()) {
        detail::Waiter* w = waiters.front();
        w->signal = signals_[sig.name()][taken++];
        Wake(w, detail::Waiter::Woken::kSignal);
      }
      break;
    }
    case Case::kTimerFired: {
      const std::string& id = event.timer_fired().timer_id();
      auto it = timers_.find(id);
      if (it == timers_.end()) {
        return NondeterminismAt(event.seq(), DescribeEvent(event), "no timer with that id");
      }
      if (it->second == TimerState::kCancelled) {
        // The fire was recorded before our cancel reached the writer, which
        // then recorded nothing for the cancel: forget it here too.
        auto moot = std::find_if(unmatched_.begin(), unmatched_.end(), [&](const auto& p) {
          return p.command.event.has_timer_cancelled() &&
                 p.command.event.timer_cancelled().timer_id() == id;
        });
        if (moot != unmatched_.end()) unmatched_.erase(moot);
        break;
      }
      it->second = TimerState::kFired;
      WakeTimerWaiters(id);
      break;
    }
    default:
      return Internal("not an input event: " + DescribeEvent(event));
  }
  RunUntilBlocked();
  return Status::Ok();
}

Status RunMachine::StartRun(const HistoryEvent& event) {
  const auto& started = event.workflow_started();
  run_id_ = event.run_id();
  random_state_ = Fnv1a64(run_id_);
  const WorkflowDefinition* def = registry_->Find(started.workflow_type());
  if (def == nullptr) {
    return {StatusCode::kUnknownWorkflowType,
            "this worker has no workflow type '" + started.workflow_type() + "'"};
  }
  if (def->options.version != started.code_version()) {
    return {StatusCode::kUnknownWorkflowType,
            "run is pinned to code version '" + started.code_version() + "' of '" +
                started.workflow_type() + "', this worker has version '" + def->options.version +
                "'"};
  }
  context_ = std::make_unique<Context>(this);
  root_ = def->run(*context_, started.input());
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
  unmatched_.pop_front();
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
    ready_.pop_front();
    h.resume();
  }
  FinishIfDone();
}

void RunMachine::FinishIfDone() {
  if (finished_ || !root_.done()) return;
  finished_ = true;
  HistoryEvent terminal;
  try {
    *terminal.mutable_workflow_completed()->mutable_output() = root_.Result();
  } catch (const std::exception& e) {
    auto* failed = terminal.mutable_workflow_failed();
    failed->set_message(e.what());
    failed->set_error_type(typeid(e).name());
  } catch (...) {
    terminal.mutable_workflow_failed()->set_message("workflow code threw a non-std exception");
  }
  // Every TimerStarted ends in TimerFired or TimerCancelled (invariant 8).
  for (auto& [id, state] : timers_) {
    if (state != TimerState::kPending) continue;
    state = TimerState::kCancelled;
    HistoryEvent cancel;
    cancel.mutable_timer_cancelled()->set_timer_id(id);
    Issue(std::move(cancel));
  }
  Issue(std::move(terminal));
}

void RunMachine::Wake(detail::Waiter* w, detail::Waiter::Woken how) {
  Forget(w);
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
    if (Status s = ValidateName("timer name", id); !s.ok()) throw std::invalid_argument(s.message());
  }
  std::string timer_id = id.empty() ? "#" + std::to_string(++timer_counter_) : std::string(id);
  auto it = timers_.find(timer_id);
  if (it != timers_.end() && it->second == TimerState::kPending) {
    throw std::invalid_argument("timer '" + timer_id + "' is already running");
  }
  timers_[timer_id] = TimerState::kPending;
  HistoryEvent cmd;
  cmd.mutable_timer_started()->set_timer_id(timer_id);
  cmd.mutable_timer_started()->set_fire_at_us(fire_at);
  Issue(std::move(cmd));
  return timer_id;
}

void RunMachine::CancelTimer(const std::string& id) {
  auto it = timers_.find(id);
  if (it == timers_.end() || it->second != TimerState::kPending) return;
  it->second = TimerState::kCancelled;
  HistoryEvent cmd;
  cmd.mutable_timer_cancelled()->set_timer_id(id);
  Issue(std::move(cmd));
  WakeTimerWaiters(id);
}

void RunMachine::WakeTimerWaiters(const std::string& id) {
  for (auto w = timer_waiters_.find(id); w != timer_waiters_.end(); w = timer_waiters_.find(id)) {
    Wake(w->second, detail::Waiter::Woken::kTimer);
  }
}

bool RunMachine::TimerFired(const std::string& id) const {
  auto it = timers_.find(id);
  return it != timers_.end() && it->second == TimerState::kFired;
}

bool RunMachine::TimerPending(const std::string& id) const {
  auto it = timers_.find(id);
  return it != timers_.end() && it->second == TimerState::kPending;
}

std::optional<Payload> RunMachine::TakeSignal(const std::string& name) {
  auto it = signals_.find(name);
  if (it == signals_.end()) return std::nullopt;
  auto& taken = signals_taken_[name];
  if (taken >= it->second.size()) return std::nullopt;
  return it->second[taken++];
}

void RunMachine::WaitTimer(const std::string& id, detail::Waiter* w) {
  timer_waiters_.emplace(id, w);
}

void RunMachine::WaitSignal(const std::string& name, detail::Waiter* w) {
  signal_waiters_[name].push_back(w);
}

void RunMachine::Forget(detail::Waiter* w) {
  for (auto it = timer_waiters_.begin(); it != timer_waiters_.end();) {
    it = it->second == w ? timer_waiters_.erase(it) : std::next(it);
  }
  for (auto& [name, waiters] : signal_waiters_) {
    waiters.erase(std::remove(waiters.begin(), waiters.end(), w), waiters.end());
  }
}

}  // namespace aion
