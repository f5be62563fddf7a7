#include "writer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <map>
#include <optional>
#include <set>

#include "aion/engine/history.h"
#include "aion/engine/ids.h"
#include "aion/engine/version.h"
#include "close_replies.h"
#include "outbox_positions.h"

namespace aion {
namespace {

// The msg id of the outbox rows an event produces: `<workflow id>/<seq>`.
std::string EventMsgId(const std::string& workflow_id, std::uint64_t seq) {
  return workflow_id + "/" + TwentyDigits(seq);
}

bool SameTimerRow(const TimerRow& a, const TimerRow& b) {
  return a.fire_at_us() == b.fire_at_us() && a.workflow_id() == b.workflow_id() &&
         a.timer_id() == b.timer_id();
}

// Failures worth retrying unchanged; anything else is a refusal.
bool IsTransient(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kResourceExhausted;
}

Outcome OutcomeOf(const WorkflowRecord& rec, const HistoryEvent& terminal) {
  Outcome o;
  o.status = rec.status();
  o.run_id = rec.run_id();
  if (terminal.has_workflow_completed()) o.output = terminal.workflow_completed().output();
  o.failure = TerminalMessage(terminal);
  return o;
}

// Timer ids of the engine's own rows; '/' is never in a workflow timer name.
constexpr std::string_view kActivityTimerPrefix = "activity/";
constexpr std::string_view kRunTimeoutTimer = "run/timeout";
constexpr Timestamp kDefaultRetryInterval = 1'000'000;

std::string ActivityTimerId(const std::string& activity_id) {
  return std::string(kActivityTimerPrefix) + activity_id;
}

bool IsLocal(const records::PendingActivity& pa) { return pa.options().task_queue().empty(); }

// The earliest deadline of a started attempt; 0 if it has none.
Timestamp AttemptDeadline(const records::PendingActivity& pa) {
  const auto& o = pa.options();
  Timestamp d = 0;
  auto consider = [&](Timestamp t) {
    if (d == 0 || t < d) d = t;
  };
  if (o.start_to_close_us() > 0) consider(pa.attempt_started_at_us() + o.start_to_close_us());
  if (o.schedule_to_close_us() > 0) consider(pa.scheduled_at_us() + o.schedule_to_close_us());
  if (o.heartbeat_timeout_us() > 0) {
    consider(std::max(pa.attempt_started_at_us(), pa.last_heartbeat_us()) +
             o.heartbeat_timeout_us());
  }
  return d;
}

// Which timeout of a started attempt has passed at `now`, if any.
history::TimeoutKind ExpiredTimeout(const records::PendingActivity& pa, Timestamp now) {
  const auto& o = pa.options();
  if (o.schedule_to_close_us() > 0 && now >= pa.scheduled_at_us() + o.schedule_to_close_us()) {
    return history::TIMEOUT_KIND_SCHEDULE_TO_CLOSE;
  }
  if (o.start_to_close_us() > 0 && now >= pa.attempt_started_at_us() + o.start_to_close_us()) {
    return history::TIMEOUT_KIND_START_TO_CLOSE;
  }
  if (o.heartbeat_timeout_us() > 0 &&
      now >=
          std::max(pa.attempt_started_at_us(), pa.last_heartbeat_us()) + o.heartbeat_timeout_us()) {
    return history::TIMEOUT_KIND_HEARTBEAT;
  }
  return history::TIMEOUT_KIND_UNSPECIFIED;
}

// When the next attempt starts after `pa`'s current one ended, or 0 when it
// ended for good (non-retryable, out of attempts or of schedule-to-close).
Timestamp RetryAt(const records::PendingActivity& pa, const ActivityFailure* failure,
                  history::TimeoutKind timeout, Timestamp now) {
  const auto& policy = pa.options().retry();
  if (timeout == history::TIMEOUT_KIND_SCHEDULE_TO_CLOSE) return 0;
  if (failure != nullptr) {
    if (failure->non_retryable()) return 0;
    for (const auto& t : policy.non_retryable_error_types()) {
      if (t == failure->error_type()) return 0;
    }
  }
  if (policy.maximum_attempts() > 0 && pa.attempt() >= policy.maximum_attempts()) return 0;
  const double initial = static_cast<double>(
      policy.initial_interval_us() > 0 ? policy.initial_interval_us() : kDefaultRetryInterval);
  const double coefficient = policy.backoff_coefficient() >= 1 ? policy.backoff_coefficient() : 2.0;
  const double maximum = policy.maximum_interval_us() > 0
                             ? static_cast<double>(policy.maximum_interval_us())
                             : 100 * initial;
  double delay = initial;
  for (std::uint32_t i = 1; i < pa.attempt() && delay < maximum; ++i) delay *= coefficient;
  const Timestamp retry_at = now + static_cast<Timestamp>(std::min(delay, maximum));
  const auto s2c = pa.options().schedule_to_close_us();
  if (s2c > 0 && retry_at >= pa.scheduled_at_us() + s2c) return 0;
  return retry_at;
}

}  // namespace

// Accumulates the effects of one group commit. Records are staged here and
// become the writer's cached truth only if the commit succeeds.
class Writer::BatchBuilder {
 public:
  BatchBuilder(Writer& writer, Timestamp now) : w_(writer), now_(now) {}

  IngressOutcome Ingress(const IngressMessage& msg) {
    if (Status s = ValidateWorkflowId(msg.workflow_id); !s.ok()) return {s};
    if (!msg.dedupe_key.empty()) {
      auto seen = FindDedupe(msg.dedupe_key);
      if (!seen.ok()) return {seen.status()};
      if (seen->has_value()) {
        const DedupeEntry& d = **seen;
        if (!msg.close_reply_to.empty()) {
          if (Status s = CloseReplyOfDuplicate(msg); !s.ok()) return {s};
        }
        return {Status::Ok(), /*duplicate=*/true, d.run_id(), d.seq()};
      }
    }
    IngressOutcome out = Dispatch(msg);
    if (!out.status.ok() && IsChildStart(msg) && !IsTransient(out.status)) {
      out = RefuseChildStart(msg, out.status);
    }
    if (out.status.ok() && !msg.dedupe_key.empty()) {
      DedupeEntry d;
      d.set_key(msg.dedupe_key);
      d.set_seq(out.seq);
      d.set_recorded_at_us(now_);
      d.set_run_id(out.run_id);
      batch_.dedupe_puts.push_back(d);
      dedupe_[msg.dedupe_key] = d;
    }
    return out;
  }

  void Commands(const CommandWork& work) {
    auto staged = Stage(work.workflow_id);
    if (!staged.ok()) {
      // Cannot check them now: the run rebuilds and sends them again. A
      // note alone (ran_through, no commands) is only a log hint: dropping
      // it costs at most a repeated log line, and a rebuild would send it
      // again, every 20 ms for as long as the store fails.
      if (!work.commands.empty()) effects_.rebuild.push_back(work.workflow_id);
      return;
    }
    if (*staged == nullptr) return;
    Staged& st = **staged;
    if (work.ran_through > st.rec.code_ran_through() && st.rec.run_id() == work.run_id &&
        st.rec.status() == records::WORKFLOW_STATUS_RUNNING) {
      st.rec.set_code_ran_through(work.ran_through);
      st.touched = true;
    }
    for (const IssuedCommand& cmd : work.commands) {
      if (st.rec.run_id() != work.run_id || st.rec.status() != records::WORKFLOW_STATUS_RUNNING) {
        return;  // terminal is final (invariant 6); stale runs are ignored
      }
      if (cmd.ordinal < st.rec.commands_handled()) continue;  // re-sent after a rebuild
      st.rec.set_commands_handled(cmd.ordinal + 1);
      Command(st, cmd.event);
    }
  }

  void FireTimer(const TimerRow& row) {
    auto staged = Stage(row.workflow_id());
    if (!staged.ok()) return;  // the row stays due; the timer service retries
    DeleteTimerRow(row);
    if (*staged == nullptr) return;  // an orphan row
    Staged& st = **staged;
    if (st.rec.run_id() != row.run_id() || st.rec.status() != records::WORKFLOW_STATUS_RUNNING) {
      return;  // a row left by an earlier run
    }
    if (row.timer_id().rfind(kActivityTimerPrefix, 0) == 0) {
      FireActivityTimer(st, row.timer_id().substr(kActivityTimerPrefix.size()), row.fire_at_us());
      return;
    }
    if (row.timer_id() == kRunTimeoutTimer) {
      if (st.rec.run_deadline_us() != row.fire_at_us()) return;
      st.rec.set_run_deadline_us(0);  // its row is deleted above
      TerminateRun(st, "run timeout passed", "", /*timed_out=*/true);
      return;
    }
    // A row left by a cancelled timer must not fire a same-named successor.
    if (st.rec.run_id() != row.run_id() ||
        !RemovePendingTimer(st.rec, row.timer_id(), row.fire_at_us())) {
      return;
    }
    HistoryEvent e;
    e.mutable_timer_fired()->set_timer_id(row.timer_id());
    Append(st, std::move(e));
    effects_.wake.push_back(row.workflow_id());
  }

  // Ok, or kNotFound when the attempt no longer runs (its worker should stop).
  Status Heartbeat(const ActivityHeartbeat& hb) {
    auto staged = Stage(hb.workflow_id);
    if (!staged.ok()) return staged.status();
    if (*staged == nullptr) return NotFound("no workflow '" + hb.workflow_id + "'");
    Staged& st = **staged;
    records::PendingActivity* pa = RunningAttempt(st, hb.run_id, hb.activity_id, hb.attempt);
    if (pa == nullptr) {
      return NotFound("activity " + hb.activity_id + " attempt " + std::to_string(hb.attempt) +
                      " of '" + hb.workflow_id + "' is no longer running");
    }
    pa->set_last_heartbeat_us(now_);
    *pa->mutable_heartbeat_details() = hb.details;
    ArmActivityTimer(st, *pa, AttemptDeadline(*pa));
    st.touched = true;
    return Status::Ok();
  }

  void OutboxPublished(const std::vector<std::string>& keys) {
    batch_.outbox_deletes.insert(batch_.outbox_deletes.end(), keys.begin(), keys.end());
  }

  // Moves the staged appends into the batch: call once, after all items.
  WriteBatch& batch() {
    for (auto& [id, st] : staged_) {
      if (!st.touched) continue;
      AppendOp op;
      op.workflow_id = id;
      op.expected_head = st.base_head;
      op.events = std::move(st.events);
      op.record = std::move(st.rec);
      batch_.appends.push_back(std::move(op));
    }
    return batch_;
  }

  // The commit succeeded: the committed records become the writer's truth.
  CommitEffects Publish() {
    for (auto& [id, st] : staged_) {
      // Staged, not committed: its record was moved out of the cache (and
      // may hold uncommitted changes); the next batch reads it from the store.
      if (!st.touched) w_.records_.erase(id);
    }
    for (AppendOp& op : batch_.appends) {
      if (op.record.status() == records::WORKFLOW_STATUS_RUNNING) {
        w_.records_[op.workflow_id] = std::move(op.record);
      } else {
        w_.records_.erase(op.workflow_id);  // closed workflows are re-read on demand
      }
    }
    w_.TrimRecordCache();
    effects_.timers_added = !batch_.timer_puts.empty();
    effects_.outbox_added = !batch_.outbox_puts.empty();
    return std::move(effects_);
  }

  // The commit failed for good: forget what was staged; runs that sent
  // commands rebuild from the store.
  CommitEffects Discard() {
    CommitEffects e;
    for (auto& [id, st] : staged_) {
      w_.records_.erase(id);
      e.rebuild.push_back(id);
    }
    return e;
  }

 private:
  struct Staged {
    bool exists = false;
    std::uint64_t base_head = 0;
    WorkflowRecord rec;
    std::vector<HistoryEvent> events;
    bool touched = false;
  };

  // The staged record of `id`, loading it if needed; nullptr if unknown.
  Result<Staged*> Stage(const std::string& id) {
    // A read that failed fails for the whole batch, so a later message for the
    // id cannot be answered from a different (successful) read.
    if (auto bad = unreadable_.find(id); bad != unreadable_.end()) return bad->second;
    auto it = staged_.find(id);
    if (it == staged_.end()) {
      Staged st;
      auto cached = w_.records_.find(id);
      if (cached != w_.records_.end()) {
        // Moved, not copied: Publish puts it back, Discard drops the entry.
        st.rec = std::move(cached->second);
        st.exists = true;
      } else {
        auto loaded = w_.options_.store->GetWorkflow(id);
        if (loaded.ok()) {
          st.rec = std::move(*loaded);
          st.exists = true;
        } else if (loaded.status().code() != StatusCode::kNotFound) {
          unreadable_.emplace(id, loaded.status());
          return loaded.status();
        }
      }
      st.base_head = st.rec.head_seq();
      it = staged_.emplace(id, std::move(st)).first;
    }
    return &it->second;
  }

  Result<std::optional<DedupeEntry>> FindDedupe(const std::string& key) {
    if (auto it = dedupe_.find(key); it != dedupe_.end()) return std::optional(it->second);
    auto stored = w_.options_.store->GetDedupe(key);
    if (stored.ok()) return std::optional(std::move(*stored));
    if (stored.status().code() == StatusCode::kNotFound) return std::optional<DedupeEntry>();
    return stored.status();
  }

  IngressOutcome Start(const IngressMessage& msg) {
    if (msg.run_timeout_us < 0) return {InvalidArgument("run timeout must not be negative")};
    const WorkflowDefinition* def = w_.options_.registry->Find(msg.workflow_type);
    if (def == nullptr) {
      return {{StatusCode::kUnknownWorkflowType,
               "no workflow type '" + msg.workflow_type + "' is registered"}};
    }
    auto staged = Stage(msg.workflow_id);
    if (!staged.ok()) return {staged.status()};
    Staged& st = **staged;
    if (st.exists && st.rec.status() == records::WORKFLOW_STATUS_RUNNING) {
      return {
          {StatusCode::kAlreadyStarted,
           "workflow '" + msg.workflow_id + "' is already running (run " + st.rec.run_id() + ")"},
          false,
          st.rec.run_id()};
    }
    if (st.exists && !ReuseAllowed(msg.id_reuse_policy, st.rec.status())) {
      return {
          {StatusCode::kAlreadyStarted,
           "workflow id '" + msg.workflow_id + "' was used by run " + st.rec.run_id() + " (" +
               WorkflowStatusName(st.rec.status()) + ") and the id-reuse policy refuses a new run"},
          false,
          st.rec.run_id()};
    }
    const std::uint64_t head = st.rec.head_seq();
    st.rec.Clear();
    st.rec.set_workflow_id(msg.workflow_id);
    st.rec.set_workflow_type(msg.workflow_type);
    st.rec.set_run_id(NewRunId());
    st.rec.set_status(records::WORKFLOW_STATUS_RUNNING);
    st.rec.set_head_seq(head);
    st.rec.set_code_version(def->options.version);
    st.rec.set_start_time_us(now_);
    st.rec.set_partition(PartitionOf(msg.workflow_id, w_.options_.partition_count));
    st.exists = true;

    HistoryEvent e;
    auto* started = e.mutable_workflow_started();
    started->set_workflow_type(msg.workflow_type);
    *started->mutable_input() = msg.input;
    started->set_code_version(def->options.version);
    started->set_aion_version(std::string(Version()));
    started->set_request_id(msg.request_id);
    started->set_run_timeout_us(msg.run_timeout_us);
    if (IsChildStart(msg)) {
      *started->mutable_parent() = msg.parent;
      *st.rec.mutable_parent() = msg.parent;
    }
    const std::uint64_t seq = Append(st, e);
    st.rec.set_run_start_seq(seq);
    AddCloseReply(st.rec, msg.close_reply_to, msg.close_reply_json);
    if (msg.run_timeout_us > 0) {
      st.rec.set_run_deadline_us(now_ + msg.run_timeout_us);
      PutTimerRow(EngineTimerRow(st, std::string(kRunTimeoutTimer), st.rec.run_deadline_us()));
    }
    AddLifecycle(st, seq);
    effects_.wake.push_back(msg.workflow_id);
    return {Status::Ok(), false, st.rec.run_id(), seq};
  }

  static bool ReuseAllowed(IngressMessage::IdReusePolicy policy, WorkflowStatus closed) {
    switch (policy) {
      case IngressMessage::IdReusePolicy::kAllowDuplicate:
        return true;
      case IngressMessage::IdReusePolicy::kAllowDuplicateFailedOnly:
        return closed != records::WORKFLOW_STATUS_COMPLETED;
      case IngressMessage::IdReusePolicy::kRejectDuplicate:
        return false;
    }
    return false;
  }

  // Signals the running run, starting one first if there is none.
  IngressOutcome SignalWithStart(const IngressMessage& msg) {
    if (Status s = ValidateName("signal name", msg.signal_name); !s.ok()) return {s};
    auto staged = Stage(msg.workflow_id);
    if (!staged.ok()) return {staged.status()};
    const bool running = *staged != nullptr && (*staged)->exists &&
                         (*staged)->rec.status() == records::WORKFLOW_STATUS_RUNNING;
    if (!running) {
      IngressOutcome started = Start(msg);
      if (!started.status.ok()) return started;
    }
    return RecordSignal(msg, msg.signal_input);
  }

  IngressOutcome Signal(const IngressMessage& msg) { return RecordSignal(msg, msg.input); }

  IngressOutcome RecordSignal(const IngressMessage& msg, const Payload& input) {
    if (Status s = ValidateName("signal name", msg.signal_name); !s.ok()) return {s};
    auto staged = Stage(msg.workflow_id);
    if (!staged.ok()) return {staged.status()};
    Staged& st = **staged;
    if (!st.exists) return {NotFound("no workflow '" + msg.workflow_id + "'")};
    if (st.rec.status() != records::WORKFLOW_STATUS_RUNNING) {
      return {{StatusCode::kNotRunning, "workflow '" + msg.workflow_id + "' is closed (" +
                                            WorkflowStatusName(st.rec.status()) +
                                            "); signals are refused"},
              false,
              st.rec.run_id()};
    }
    HistoryEvent e;
    auto* sig = e.mutable_signal_received();
    sig->set_name(msg.signal_name);
    *sig->mutable_input() = input;
    sig->set_request_id(msg.request_id);
    const std::uint64_t seq = Append(st, std::move(e));
    effects_.wake.push_back(msg.workflow_id);
    return {Status::Ok(), false, st.rec.run_id(), seq};
  }

  void Command(Staged& st, const HistoryEvent& cmd) {
    switch (cmd.attributes_case()) {
      case HistoryEvent::kTimerStarted: {
        auto* pending = st.rec.add_timers();
        pending->set_timer_id(cmd.timer_started().timer_id());
        pending->set_fire_at_us(cmd.timer_started().fire_at_us());
        TimerRow row;
        row.set_fire_at_us(pending->fire_at_us());
        row.set_workflow_id(st.rec.workflow_id());
        row.set_timer_id(pending->timer_id());
        row.set_run_id(st.rec.run_id());
        PutTimerRow(std::move(row));
        Append(st, cmd);
        return;
      }
      case HistoryEvent::kTimerCancelled: {
        const std::string& id = cmd.timer_cancelled().timer_id();
        std::int64_t fire_at = 0;
        for (const auto& t : st.rec.timers()) {
          if (t.timer_id() == id) fire_at = t.fire_at_us();
        }
        // Already fired: the fire stands and the cancel records nothing (invariant 8).
        if (!RemovePendingTimer(st.rec, id)) return;
        TimerRow row;
        row.set_fire_at_us(fire_at);
        row.set_workflow_id(st.rec.workflow_id());
        row.set_timer_id(id);
        DeleteTimerRow(row);
        Append(st, cmd);
        return;
      }
      case HistoryEvent::kActivityScheduled:
        ScheduleActivity(st, cmd);
        return;
      case HistoryEvent::kActivityCancelRequested: {
        records::PendingActivity* pa =
            FindActivity(st.rec, cmd.activity_cancel_requested().activity_id());
        // Already ended: the outcome stands and the cancel records nothing.
        if (pa == nullptr) return;
        const std::uint64_t seq = Append(st, cmd);
        DropActivity(st, *pa, seq, "cancelled by the workflow");
        return;
      }
      case HistoryEvent::kSideEffectRecorded:
      case HistoryEvent::kPatchMarker:
        Append(st, cmd);
        return;
      case HistoryEvent::kChildWorkflowScheduled:
        ScheduleChild(st, cmd);
        return;
      case HistoryEvent::kChildWorkflowCancelRequested: {
        const std::string& ref = cmd.child_workflow_cancel_requested().child_ref();
        // Already closed: the close stands and the cancel records nothing.
        const records::PendingChild* child = FindChild(st.rec, ref);
        if (child == nullptr) return;
        const std::uint64_t seq = Append(st, cmd);
        SendToChild(st, *child, records::WorkflowMessageRow::KIND_CANCEL,
                    EventMsgId(st.rec.workflow_id(), seq),
                    "cancelled by its parent workflow '" + st.rec.workflow_id() + "'");
        ForgetChild(st.rec, ref);
        return;
      }
      case HistoryEvent::kWorkflowCompleted:
      case HistoryEvent::kWorkflowFailed:
      case HistoryEvent::kWorkflowCancelled:
        Close(st, cmd);
        return;
      case HistoryEvent::kWorkflowContinuedAsNew:
        ContinueAsNew(st, cmd);
        return;
      default:
        spdlog::error("writer: '{}' sent a non-command event {}", st.rec.workflow_id(),
                      DescribeEvent(cmd));
    }
  }

  IngressOutcome Dispatch(const IngressMessage& msg) {
    switch (msg.kind) {
      case IngressMessage::Kind::kStart:
        return Start(msg);
      case IngressMessage::Kind::kSignal:
        return Signal(msg);
      case IngressMessage::Kind::kSignalWithStart:
        return SignalWithStart(msg);
      case IngressMessage::Kind::kActivityResult:
        return ActivityResult(msg);
      case IngressMessage::Kind::kCancel:
        return CancelRequest(msg);
      case IngressMessage::Kind::kTerminate:
        return Terminate(msg);
      case IngressMessage::Kind::kChildResult:
        return ChildResult(msg);
    }
    return {InvalidArgument("unknown ingress kind")};
  }

  // The staged record of a running workflow, or why there is none.
  Result<Staged*> StageRunning(const std::string& id, std::string_view what) {
    auto staged = Stage(id);
    if (!staged.ok()) return staged.status();
    if (*staged == nullptr || !(*staged)->exists) return NotFound("no workflow '" + id + "'");
    Staged& st = **staged;
    if (st.rec.status() != records::WORKFLOW_STATUS_RUNNING) {
      return Status{StatusCode::kNotRunning, "workflow '" + id + "' is closed (" +
                                                 WorkflowStatusName(st.rec.status()) + "); " +
                                                 std::string(what) + " refused"};
    }
    return &st;
  }

  IngressOutcome ActivityResult(const IngressMessage& msg) {
    auto staged = Stage(msg.workflow_id);
    if (!staged.ok()) return {staged.status()};
    if (*staged == nullptr || !(*staged)->exists) {
      return {NotFound("no workflow '" + msg.workflow_id + "'")};
    }
    Staged& st = **staged;
    records::PendingActivity* pa = RunningAttempt(st, msg.run_id, msg.activity_id, msg.attempt);
    // Timed out, superseded, cancelled or the run closed: ack and drop.
    if (pa == nullptr) return Dropped(st);
    if (msg.activity_failed) {
      const std::uint64_t seq =
          AttemptEnded(st, *pa, &msg.failure, history::TIMEOUT_KIND_UNSPECIFIED);
      return {Status::Ok(), false, st.rec.run_id(), seq};
    }
    HistoryEvent e;
    auto* done = e.mutable_activity_completed();
    done->set_activity_id(pa->activity_id());
    done->set_attempt(pa->attempt());
    *done->mutable_result() = msg.input;
    const std::uint64_t seq = Append(st, std::move(e));
    ForgetActivity(st, *pa);
    effects_.wake.push_back(msg.workflow_id);
    return {Status::Ok(), false, st.rec.run_id(), seq};
  }

  IngressOutcome CancelRequest(const IngressMessage& msg) {
    auto staged = StageRunning(msg.workflow_id, "cancel");
    if (!staged.ok()) return RefusedOrDropped(msg, staged.status());
    Staged& st = **staged;
    if (!SentByItsParent(st, msg)) return Dropped(st);
    if (st.rec.cancel_requested()) return Dropped(st);
    st.rec.set_cancel_requested(true);
    st.rec.set_cancel_reason(msg.reason);
    HistoryEvent e;
    e.mutable_workflow_cancel_requested()->set_reason(msg.reason);
    e.mutable_workflow_cancel_requested()->set_request_id(msg.request_id);
    const std::uint64_t seq = Append(st, std::move(e));
    effects_.wake.push_back(msg.workflow_id);
    return {Status::Ok(), false, st.rec.run_id(), seq};
  }

  IngressOutcome Terminate(const IngressMessage& msg) {
    auto staged = StageRunning(msg.workflow_id, "terminate");
    if (!staged.ok()) return RefusedOrDropped(msg, staged.status());
    Staged& st = **staged;
    if (!SentByItsParent(st, msg)) return Dropped(st);
    const std::uint64_t seq = TerminateRun(st, msg.reason, msg.request_id, false);
    return {Status::Ok(), false, st.rec.run_id(), seq};
  }

  // Ends a running run at once: what it waits for is cancelled by the
  // engine (caused_by 0), then WorkflowTerminated. Returns its seq.
  std::uint64_t TerminateRun(Staged& st, const std::string& reason, const std::string& request_id,
                             bool timed_out) {
    for (const auto& t : st.rec.timers()) {
      TimerRow row;
      row.set_fire_at_us(t.fire_at_us());
      row.set_workflow_id(st.rec.workflow_id());
      row.set_timer_id(t.timer_id());
      DeleteTimerRow(row);
      HistoryEvent cancel;
      cancel.mutable_timer_cancelled()->set_timer_id(t.timer_id());
      Append(st, std::move(cancel));
    }
    st.rec.clear_timers();
    while (st.rec.activities_size() > 0) {
      records::PendingActivity& pa = *st.rec.mutable_activities(0);
      HistoryEvent cancel;
      cancel.mutable_activity_cancel_requested()->set_activity_id(pa.activity_id());
      const std::uint64_t seq = Append(st, std::move(cancel));
      DropActivity(st, pa, seq, timed_out ? "workflow timed out" : "workflow terminated");
    }
    HistoryEvent e;
    auto* term = e.mutable_workflow_terminated();
    term->set_reason(reason);
    term->set_request_id(request_id);
    term->set_timed_out(timed_out);
    return Close(st, e);
  }

  // Ends the run and starts the next one of the id in the same commit; the
  // id stays open, so nobody waiting for its result is told anything yet.
  void ContinueAsNew(Staged& st, HistoryEvent cmd) {
    const WorkflowDefinition* def = w_.options_.registry->Find(st.rec.workflow_type());
    if (def == nullptr) {  // cannot happen: this worker ran the run
      spdlog::error("writer: '{}' continues as new with unknown type", st.rec.workflow_id());
      return;
    }
    const std::string next_run = NewRunId();
    cmd.mutable_workflow_continued_as_new()->set_new_run_id(next_run);
    const std::uint64_t run_timeout_us = RunTimeoutOf(st);
    EndRun(st, cmd);
    const Payload input = cmd.workflow_continued_as_new().input();
    st.rec.set_run_id(next_run);
    st.rec.set_status(records::WORKFLOW_STATUS_RUNNING);
    st.rec.set_code_version(def->options.version);
    st.rec.set_start_time_us(now_);
    st.rec.set_close_time_us(0);
    st.rec.clear_timers();
    st.rec.set_commands_handled(0);
    st.rec.set_cancel_requested(false);
    st.rec.clear_cancel_reason();
    HistoryEvent e;
    auto* started = e.mutable_workflow_started();
    started->set_workflow_type(st.rec.workflow_type());
    *started->mutable_input() = input;
    started->set_code_version(def->options.version);
    started->set_aion_version(std::string(Version()));
    started->set_run_timeout_us(run_timeout_us);
    if (st.rec.has_parent()) *started->mutable_parent() = st.rec.parent();
    const std::uint64_t seq = Append(st, std::move(e));
    st.rec.set_run_start_seq(seq);
    if (run_timeout_us > 0) {
      st.rec.set_run_deadline_us(now_ + run_timeout_us);
      PutTimerRow(EngineTimerRow(st, std::string(kRunTimeoutTimer), st.rec.run_deadline_us()));
    }
    AddLifecycle(st, seq);
    effects_.wake.push_back(st.rec.workflow_id());
  }

  // The run timeout the current run was started with.
  std::uint64_t RunTimeoutOf(const Staged& st) {
    auto first = w_.options_.store->ReadHistory(st.rec.workflow_id(), st.rec.run_start_seq(), 1);
    if (!first.ok() || first->empty() || !first->front().has_workflow_started()) return 0;
    return first->front().workflow_started().run_timeout_us();
  }

  // A repeated start that asks for a close reply: added to the open run, or
  // answered at once (from its terminal event) when the id's run is closed.
  // A store error is returned (the message is retried); so is a full list
  // of close replies (kInvalidArgument: the sender hears of it).
  Status CloseReplyOfDuplicate(const IngressMessage& msg) {
    auto staged = Stage(msg.workflow_id);
    if (!staged.ok()) return staged.status();
    if (*staged == nullptr || !(*staged)->exists) return Status::Ok();
    Staged& st = **staged;
    if (st.rec.status() == records::WORKFLOW_STATUS_RUNNING) {
      if (!AddCloseReply(st.rec, msg.close_reply_to, msg.close_reply_json)) {
        return InvalidArgument("workflow '" + msg.workflow_id + "' already has " +
                               std::to_string(kMaxCloseReplies) +
                               " close replies waiting; ask for its result instead");
      }
      st.touched = true;
      return Status::Ok();
    }
    HistoryEvent terminal;
    if (!st.events.empty() && IsTerminalEvent(st.events.back())) {
      terminal = st.events.back();
    } else {
      auto last = w_.options_.store->ReadHistory(msg.workflow_id, st.rec.head_seq(), 1);
      if (!last.ok()) return last.status();
      if (last->empty() || !IsTerminalEvent(last->front())) return Status::Ok();
      terminal = std::move(last->front());
    }
    records::CloseReply reply;
    reply.set_subject(msg.close_reply_to);
    reply.set_json(msg.close_reply_json);
    PutOutbox(CloseReplyRow(st.rec, reply, terminal, 0));
    return Status::Ok();
  }

  // Records a terminal event and closes the run. Returns its seq.
  std::uint64_t Close(Staged& st, const HistoryEvent& terminal) {
    const std::uint64_t seq = EndRun(st, terminal);
    effects_.closed.emplace_back(st.rec.workflow_id(), OutcomeOf(st.rec, terminal));
    effects_.wake.push_back(st.rec.workflow_id());
    return seq;
  }

  // Appends a terminal event and releases what the run held.
  std::uint64_t EndRun(Staged& st, const HistoryEvent& terminal) {
    st.rec.set_status(StatusOfTerminal(terminal));
    st.rec.set_close_time_us(now_);
    DisarmRunTimeout(st);
    while (st.rec.activities_size() > 0) ForgetActivity(st, *st.rec.mutable_activities(0));
    const std::uint64_t seq = Append(st, terminal);
    AddLifecycle(st, seq);
    if (!terminal.has_workflow_continued_as_new()) {
      for (OutboxRow& row : TakeCloseReplies(st.rec, st.events.back())) PutOutbox(std::move(row));
    }
    ApplyParentClosePolicies(st, seq);
    if (st.rec.has_parent() && !terminal.has_workflow_continued_as_new()) {
      ReportToParent(st, terminal, EventMsgId(st.rec.workflow_id(), seq) + "/parent");
    }
    return seq;
  }

  // Children: started by a command, closed by a ChildResult input; the
  // messages to and from them leave through the outbox (they may live on
  // another worker).
  void ScheduleChild(Staged& st, const HistoryEvent& cmd) {
    const auto& sched = cmd.child_workflow_scheduled();
    if (FindChild(st.rec, sched.child_ref()) != nullptr) {
      spdlog::error("writer: '{}' started child {} twice", st.rec.workflow_id(), sched.child_ref());
      return;
    }
    const std::uint64_t seq = Append(st, cmd);
    records::PendingChild* child = st.rec.add_children();
    child->set_child_ref(sched.child_ref());
    child->set_workflow_id(sched.workflow_id());
    child->set_workflow_type(sched.workflow_type());
    child->set_parent_close_policy(sched.parent_close_policy());
    child->set_scheduled_at_us(now_);
    records::WorkflowMessageRow start =
        MessageToChild(st, *child, records::WorkflowMessageRow::KIND_START);
    start.set_workflow_type(sched.workflow_type());
    *start.mutable_input() = sched.input();
    start.set_run_timeout_us(sched.run_timeout_us());
    AddMessage(EventMsgId(st.rec.workflow_id(), seq), std::move(start));
  }

  IngressOutcome ChildResult(const IngressMessage& msg) {
    auto staged = Stage(msg.workflow_id);
    if (!staged.ok()) return {staged.status()};
    if (*staged == nullptr || !(*staged)->exists) {
      return {NotFound("no workflow '" + msg.workflow_id + "'")};
    }
    Staged& st = **staged;
    const std::string& ref = msg.parent.child_ref();
    // The parent run ended or cancelled the child first: ack and drop.
    if (st.rec.status() != records::WORKFLOW_STATUS_RUNNING ||
        st.rec.run_id() != msg.parent.run_id() || FindChild(st.rec, ref) == nullptr) {
      return Dropped(st);
    }
    HistoryEvent e;
    *e.mutable_child_workflow_closed() = msg.child_result;
    e.mutable_child_workflow_closed()->set_child_ref(ref);
    const std::uint64_t seq = Append(st, std::move(e));
    ForgetChild(st.rec, ref);
    effects_.wake.push_back(msg.workflow_id);
    return {Status::Ok(), false, st.rec.run_id(), seq};
  }

  // The parent is told the start was refused (its id runs already, its type
  // is unknown here, ...); the sender, an outbox, needs no error.
  IngressOutcome RefuseChildStart(const IngressMessage& msg, const Status& why) {
    records::WorkflowMessageRow result;
    result.set_kind(records::WorkflowMessageRow::KIND_CHILD_RESULT);
    result.set_workflow_id(msg.parent.workflow_id());
    result.set_request_id(ChildRequestId(msg.parent));
    *result.mutable_parent() = msg.parent;
    auto* closed = result.mutable_result();
    closed->set_child_ref(msg.parent.child_ref());
    closed->set_workflow_id(msg.workflow_id);
    closed->set_status(history::CHILD_STATUS_START_FAILED);
    closed->set_failure(why.message());
    AddMessage(msg.workflow_id + "/refused/" + ChildRequestId(msg.parent), std::move(result));
    IngressOutcome out{Status::Ok(), false, ""};
    out.dropped = true;
    return out;
  }

  void ReportToParent(const Staged& st, const HistoryEvent& terminal, std::string key) {
    records::WorkflowMessageRow result;
    result.set_kind(records::WorkflowMessageRow::KIND_CHILD_RESULT);
    result.set_workflow_id(st.rec.parent().workflow_id());
    result.set_request_id(ChildRequestId(st.rec.parent()));
    *result.mutable_parent() = st.rec.parent();
    auto* closed = result.mutable_result();
    closed->set_child_ref(st.rec.parent().child_ref());
    closed->set_workflow_id(st.rec.workflow_id());
    closed->set_run_id(st.rec.run_id());
    closed->set_status(ChildStatusOf(st.rec.status()));
    if (terminal.has_workflow_completed()) {
      *closed->mutable_output() = terminal.workflow_completed().output();
    }
    closed->set_failure(TerminalMessage(terminal));
    AddMessage(std::move(key), std::move(result));
  }

  // Children still open when the run ends get what their policy says.
  void ApplyParentClosePolicies(Staged& st, std::uint64_t terminal_seq) {
    const std::string reason = "parent workflow '" + st.rec.workflow_id() + "' closed (" +
                               WorkflowStatusName(st.rec.status()) + ")";
    for (const records::PendingChild& child : st.rec.children()) {
      const std::string key =
          EventMsgId(st.rec.workflow_id(), terminal_seq) + "/child/" + child.child_ref();
      switch (child.parent_close_policy()) {
        case history::PARENT_CLOSE_POLICY_REQUEST_CANCEL:
          SendToChild(st, child, records::WorkflowMessageRow::KIND_CANCEL, key, reason);
          break;
        case history::PARENT_CLOSE_POLICY_ABANDON:
          break;
        default:
          SendToChild(st, child, records::WorkflowMessageRow::KIND_TERMINATE, key, reason);
      }
    }
    st.rec.clear_children();
  }

  void SendToChild(const Staged& st, const records::PendingChild& child,
                   records::WorkflowMessageRow::Kind kind, std::string key, std::string reason) {
    records::WorkflowMessageRow m = MessageToChild(st, child, kind);
    m.set_reason(std::move(reason));
    AddMessage(std::move(key), std::move(m));
  }

  static records::WorkflowMessageRow MessageToChild(const Staged& st,
                                                    const records::PendingChild& child,
                                                    records::WorkflowMessageRow::Kind kind) {
    records::WorkflowMessageRow m;
    m.set_kind(kind);
    m.set_workflow_id(child.workflow_id());
    auto* parent = m.mutable_parent();
    parent->set_workflow_id(st.rec.workflow_id());
    parent->set_run_id(st.rec.run_id());
    parent->set_child_ref(child.child_ref());
    std::string request_id = ChildRequestId(*parent);
    if (kind != records::WorkflowMessageRow::KIND_START) {
      request_id += ':';
      request_id += KindName(kind);
    }
    m.set_request_id(std::move(request_id));
    return m;
  }

  // Unique per child of a parent run: makes each message to or from the
  // child idempotent at its addressee.
  static std::string ChildRequestId(const history::ParentRef& parent) {
    return parent.run_id() + ":" + parent.child_ref();
  }

  static std::string KindName(records::WorkflowMessageRow::Kind kind) {
    return kind == records::WorkflowMessageRow::KIND_CANCEL ? "cancel" : "terminate";
  }

  void AddMessage(std::string msg_id, records::WorkflowMessageRow message) {
    OutboxRow row;
    row.set_msg_id(std::move(msg_id));
    row.set_kind(OutboxRow::KIND_WORKFLOW_MESSAGE);
    row.set_workflow_id(message.workflow_id());
    *row.mutable_message() = std::move(message);
    PutOutbox(std::move(row));
  }

  static records::PendingChild* FindChild(WorkflowRecord& rec, const std::string& ref) {
    for (auto& c : *rec.mutable_children()) {
      if (c.child_ref() == ref) return &c;
    }
    return nullptr;
  }

  static void ForgetChild(WorkflowRecord& rec, const std::string& ref) {
    auto* list = rec.mutable_children();
    for (int i = 0; i < list->size(); ++i) {
      if (list->Get(i).child_ref() == ref) {
        list->DeleteSubrange(i, 1);
        return;
      }
    }
  }

  static bool IsChildStart(const IngressMessage& msg) {
    return msg.kind == IngressMessage::Kind::kStart && !msg.parent.workflow_id().empty();
  }

  // A cancel or terminate sent by a parent applies only to a run it started.
  static bool SentByItsParent(const Staged& st, const IngressMessage& msg) {
    if (msg.parent.workflow_id().empty()) return true;  // not from a parent
    return st.rec.parent().workflow_id() == msg.parent.workflow_id() &&
           st.rec.parent().run_id() == msg.parent.run_id();
  }

  // A parent's cancel or terminate for a child that closed is dropped, not refused.
  static IngressOutcome RefusedOrDropped(const IngressMessage& msg, const Status& why) {
    if (msg.parent.workflow_id().empty() || why.code() != StatusCode::kNotRunning) return {why};
    IngressOutcome out{Status::Ok()};
    out.dropped = true;
    return out;
  }

  static IngressOutcome Dropped(const Staged& st) {
    IngressOutcome out{Status::Ok(), false, st.rec.run_id()};
    out.dropped = true;
    return out;
  }

  void ScheduleActivity(Staged& st, const HistoryEvent& cmd) {
    const auto& sched = cmd.activity_scheduled();
    if (FindActivity(st.rec, sched.activity_id()) != nullptr) {
      spdlog::error("writer: '{}' scheduled activity {} twice", st.rec.workflow_id(),
                    sched.activity_id());
      return;
    }
    Append(st, cmd);
    records::PendingActivity* pa = st.rec.add_activities();
    pa->set_activity_id(sched.activity_id());
    pa->set_activity_type(sched.activity_type());
    *pa->mutable_options() = sched.options();
    *pa->mutable_input() = sched.input();
    pa->set_attempt(1);
    pa->set_scheduled_at_us(now_);
    StartAttempt(st, *pa);
  }

  void StartAttempt(Staged& st, records::PendingActivity& pa) {
    pa.set_state(records::PendingActivity::STATE_STARTED);
    pa.set_attempt_started_at_us(now_);
    pa.set_last_heartbeat_us(0);
    pa.clear_heartbeat_details();
    HistoryEvent e;
    e.mutable_activity_started()->set_activity_id(pa.activity_id());
    e.mutable_activity_started()->set_attempt(pa.attempt());
    const std::uint64_t seq = Append(st, std::move(e));
    records::ActivityTaskRow task = TaskOf(st, pa);
    if (IsLocal(pa)) {
      effects_.local_tasks.push_back({st.rec.workflow_id(), std::move(task)});
    } else {
      AddTaskRow(st, seq, records::OutboxRow::KIND_ACTIVITY_TASK, std::move(task));
    }
    ArmActivityTimer(st, pa, AttemptDeadline(pa));
  }

  void FireActivityTimer(Staged& st, const std::string& activity_id, Timestamp fire_at) {
    records::PendingActivity* pa = FindActivity(st.rec, activity_id);
    if (pa == nullptr || pa->deadline_us() != fire_at) return;  // a stale row
    pa->set_deadline_us(0);                                     // its row is deleted by the caller
    if (pa->state() == records::PendingActivity::STATE_BACKING_OFF) {
      StartAttempt(st, *pa);
      return;
    }
    const history::TimeoutKind kind = ExpiredTimeout(*pa, now_);
    if (kind == history::TIMEOUT_KIND_UNSPECIFIED) {
      ArmActivityTimer(st, *pa, AttemptDeadline(*pa));  // fired early: wait again
      return;
    }
    AttemptEnded(st, *pa, nullptr, kind);
  }

  // Records the failed or timed-out attempt and either backs off for the
  // next one or ends the activity. Returns the seq of the event.
  std::uint64_t AttemptEnded(Staged& st, records::PendingActivity& pa,
                             const ActivityFailure* failure, history::TimeoutKind timeout) {
    const Timestamp retry_at = RetryAt(pa, failure, timeout, now_);
    HistoryEvent e;
    if (failure != nullptr) {
      auto* f = e.mutable_activity_failed();
      f->set_activity_id(pa.activity_id());
      f->set_attempt(pa.attempt());
      *f->mutable_failure() = *failure;
      f->set_retry_at_us(retry_at);
      pa.set_last_failure("attempt " + std::to_string(pa.attempt()) + ": " + failure->message());
    } else {
      auto* t = e.mutable_activity_timed_out();
      t->set_activity_id(pa.activity_id());
      t->set_attempt(pa.attempt());
      t->set_kind(timeout);
      t->set_retry_at_us(retry_at);
      pa.set_last_failure("attempt " + std::to_string(pa.attempt()) + ": timed out (" +
                          TimeoutKindName(timeout) + ")");
    }
    const std::uint64_t seq = Append(st, std::move(e));
    // A timed-out attempt may still be running somewhere: tell it to stop.
    if (failure == nullptr) NoteCancel(st, pa, seq, "attempt timed out");
    if (retry_at == 0) {
      ForgetActivity(st, pa);
      effects_.wake.push_back(st.rec.workflow_id());
      return seq;
    }
    pa.set_attempt(pa.attempt() + 1);
    pa.set_state(records::PendingActivity::STATE_BACKING_OFF);
    ArmActivityTimer(st, pa, retry_at);
    return seq;
  }

  // Stops an activity the run no longer waits for: tells its worker and
  // forgets it. `seq` is the event that cancelled it.
  void DropActivity(Staged& st, records::PendingActivity& pa, std::uint64_t seq,
                    const std::string& reason) {
    if (pa.state() == records::PendingActivity::STATE_STARTED) NoteCancel(st, pa, seq, reason);
    ForgetActivity(st, pa);
  }

  void NoteCancel(Staged& st, const records::PendingActivity& pa, std::uint64_t seq,
                  const std::string& reason) {
    records::ActivityTaskRow task = TaskOf(st, pa);
    task.clear_input();
    task.set_reason(reason);
    if (IsLocal(pa)) {
      effects_.local_cancels.push_back({st.rec.workflow_id(), std::move(task)});
    } else {
      AddTaskRow(st, seq, records::OutboxRow::KIND_ACTIVITY_CANCEL, std::move(task));
    }
  }

  // Deletes the activity's timer row and its pending entry.
  void ForgetActivity(Staged& st, records::PendingActivity& pa) {
    ArmActivityTimer(st, pa, 0);
    const std::string id = pa.activity_id();
    auto* list = st.rec.mutable_activities();
    for (int i = 0; i < list->size(); ++i) {
      if (list->Get(i).activity_id() == id) {
        list->DeleteSubrange(i, 1);
        return;
      }
    }
  }

  // Moves the activity's single timer row to `fire_at` (0 = none).
  void ArmActivityTimer(Staged& st, records::PendingActivity& pa, Timestamp fire_at) {
    if (pa.deadline_us() == fire_at) return;
    if (pa.deadline_us() != 0) {
      DeleteTimerRow(EngineTimerRow(st, ActivityTimerId(pa.activity_id()), pa.deadline_us()));
    }
    pa.set_deadline_us(fire_at);
    if (fire_at != 0) PutTimerRow(EngineTimerRow(st, ActivityTimerId(pa.activity_id()), fire_at));
  }

  void DisarmRunTimeout(Staged& st) {
    if (st.rec.run_deadline_us() == 0) return;
    DeleteTimerRow(EngineTimerRow(st, std::string(kRunTimeoutTimer), st.rec.run_deadline_us()));
    st.rec.set_run_deadline_us(0);
  }

  static TimerRow EngineTimerRow(const Staged& st, std::string timer_id, Timestamp fire_at) {
    TimerRow row;
    row.set_fire_at_us(fire_at);
    row.set_workflow_id(st.rec.workflow_id());
    row.set_timer_id(std::move(timer_id));
    row.set_run_id(st.rec.run_id());
    return row;
  }

  void PutTimerRow(TimerRow row) {
    // Deleted and put again in this batch: the row must survive (stores
    // apply deletes after puts).
    std::erase_if(batch_.timer_deletes, [&](const TimerRow& d) { return SameTimerRow(d, row); });
    batch_.timer_puts.push_back(std::move(row));
  }

  static records::PendingActivity* FindActivity(WorkflowRecord& rec, const std::string& id) {
    for (auto& pa : *rec.mutable_activities()) {
      if (pa.activity_id() == id) return &pa;
    }
    return nullptr;
  }

  // The pending activity whose attempt `attempt` of run `run_id` is running.
  static records::PendingActivity* RunningAttempt(Staged& st, const std::string& run_id,
                                                  const std::string& activity_id,
                                                  std::uint32_t attempt) {
    if (st.rec.status() != records::WORKFLOW_STATUS_RUNNING || st.rec.run_id() != run_id) {
      return nullptr;
    }
    records::PendingActivity* pa = FindActivity(st.rec, activity_id);
    if (pa == nullptr || pa->attempt() != attempt ||
        pa->state() != records::PendingActivity::STATE_STARTED) {
      return nullptr;
    }
    return pa;
  }

  records::ActivityTaskRow TaskOf(const Staged& st, const records::PendingActivity& pa) const {
    records::ActivityTaskRow task;
    task.set_run_id(st.rec.run_id());
    task.set_activity_id(pa.activity_id());
    task.set_attempt(pa.attempt());
    task.set_activity_type(pa.activity_type());
    task.set_task_queue(pa.options().task_queue());
    *task.mutable_input() = pa.input();
    task.set_start_to_close_us(pa.options().start_to_close_us());
    task.set_heartbeat_timeout_us(pa.options().heartbeat_timeout_us());
    task.set_scheduled_at_us(pa.scheduled_at_us());
    task.set_started_at_us(pa.attempt_started_at_us());
    return task;
  }

  void AddTaskRow(const Staged& st, std::uint64_t seq, records::OutboxRow::Kind kind,
                  records::ActivityTaskRow task) {
    OutboxRow row;
    row.set_msg_id(EventMsgId(st.rec.workflow_id(), seq));
    row.set_kind(kind);
    row.set_workflow_id(st.rec.workflow_id());
    row.set_workflow_type(st.rec.workflow_type());
    *row.mutable_task() = std::move(task);
    PutOutbox(std::move(row));
  }

  // Removes the pending timer `timer_id` (only if it fires at `fire_at`, when
  // given); false if there is none.
  static bool RemovePendingTimer(WorkflowRecord& rec, const std::string& timer_id,
                                 std::optional<Timestamp> fire_at = std::nullopt) {
    auto* timers = rec.mutable_timers();
    for (int i = 0; i < timers->size(); ++i) {
      const auto& t = timers->Get(i);
      if (t.timer_id() == timer_id && (!fire_at || t.fire_at_us() == *fire_at)) {
        timers->DeleteSubrange(i, 1);
        return true;
      }
    }
    return false;
  }

  void DeleteTimerRow(const TimerRow& row) {
    for (const TimerRow& done : batch_.timer_deletes) {
      if (SameTimerRow(done, row)) return;
    }
    batch_.timer_deletes.push_back(row);
  }

  std::uint64_t Append(Staged& st, HistoryEvent e) {
    const std::uint64_t seq = st.rec.head_seq() + 1;
    e.set_seq(seq);
    e.set_recorded_at_us(now_);
    e.set_run_id(st.rec.run_id());
    st.rec.set_head_seq(seq);
    st.events.push_back(std::move(e));
    st.touched = true;
    return seq;
  }

  void AddLifecycle(const Staged& st, std::uint64_t seq) {
    OutboxRow row;
    row.set_msg_id(EventMsgId(st.rec.workflow_id(), seq));
    row.set_kind(OutboxRow::KIND_LIFECYCLE);
    row.set_workflow_id(st.rec.workflow_id());
    row.set_workflow_type(st.rec.workflow_type());
    *row.mutable_event() = st.events.back();
    PutOutbox(std::move(row));
  }

  // Keys rows by their position in commit order (batches commit one after
  // another, and rows are staged in seq order), so reading the outbox in key
  // order reads it in commit order. A discarded batch leaves a gap: harmless.
  void PutOutbox(OutboxRow row) {
    row.set_key(OutboxPositionKey(w_.next_outbox_position_++));
    batch_.outbox_puts.push_back(std::move(row));
  }

  Writer& w_;
  const Timestamp now_;
  std::map<std::string, Staged> staged_;
  std::map<std::string, Status> unreadable_;
  std::map<std::string, DedupeEntry> dedupe_;
  WriteBatch batch_;
  CommitEffects effects_;
};

Writer::Writer(const EngineOptions& options, std::uint64_t first_outbox_position,
               EffectsSink effects)
    : options_(options),
      effects_(std::move(effects)),
      next_outbox_position_(first_outbox_position),
      thread_([this] { Loop(); }) {}

Writer::~Writer() { Stop(); }

void Writer::SubmitIngress(std::vector<IngressMessage> batch, IngressCallback done) {
  Enqueue(IngressWork{std::move(batch), std::move(done)});
}

void Writer::SubmitCommands(std::string workflow_id, std::string run_id,
                            std::vector<IssuedCommand> commands, std::uint64_t ran_through) {
  Enqueue(CommandWork{std::move(workflow_id), std::move(run_id), std::move(commands), ran_through});
}

void Writer::SubmitDueTimers(std::vector<TimerRow> due, std::function<void(Status)> done) {
  Enqueue(TimerWork{std::move(due), std::move(done)});
}

void Writer::SubmitOutboxPublished(std::vector<std::string> keys,
                                   std::function<void(Status)> done) {
  Enqueue(OutboxWork{std::move(keys), std::move(done)});
}

void Writer::SubmitHeartbeat(ActivityHeartbeat heartbeat, std::function<void(Status)> done) {
  Enqueue(HeartbeatWork{std::move(heartbeat), std::move(done)});
}

void Writer::Enqueue(Work work) {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (!stopping_) {
      const auto* cmd = std::get_if<CommandWork>(&work);
      if (std::holds_alternative<OutboxWork>(work) || (cmd != nullptr && cmd->commands.empty())) {
        Defer(std::move(work));  // no hurry: rides along with the next commit
      } else {
        work_.Started();
        queue_.push_back(std::move(work));
      }
      cv_.notify_one();
      return;
    }
  }
  // Refused after Stop: tell the submitter nothing was recorded.
  const Status stopped = Unavailable("engine is shutting down");
  if (auto* in = std::get_if<IngressWork>(&work)) {
    in->done(std::vector<IngressOutcome>(in->batch.size(), IngressOutcome{stopped}));
  } else if (auto* t = std::get_if<TimerWork>(&work)) {
    t->done(stopped);
  } else if (auto* o = std::get_if<OutboxWork>(&work)) {
    o->done(stopped);
  } else if (auto* h = std::get_if<HeartbeatWork>(&work)) {
    h->done(stopped);
  }
}

void Writer::BeginStop() {
  std::lock_guard<std::mutex> g(mu_);
  stopping_ = true;
  cv_.notify_all();
}

void Writer::Stop() {
  BeginStop();
  if (thread_.joinable()) thread_.join();
}

void Writer::Defer(Work work) {
  if (deferred_.empty()) deferred_since_ = std::chrono::steady_clock::now();
  deferred_.push_back(std::move(work));
}

bool Writer::Redefer(OutboxWork& work) {
  std::lock_guard<std::mutex> g(mu_);
  if (stopping_) return false;
  Defer(std::move(work));
  return true;
}

void Writer::WaitForWork(std::unique_lock<std::mutex>& lock) {
  while (!stopping_ && queue_.empty()) {
    if (deferred_.empty()) {
      cv_.wait(lock);
    } else if (deferred_.size() >= kMaxDeferredDeletions ||
               cv_.wait_until(lock, deferred_since_ + kDeletionDeferral) ==
                   std::cv_status::timeout) {
      return;
    }
  }
}

void Writer::Loop() {
  while (true) {
    std::deque<Work> items;
    std::size_t n = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      WaitForWork(lock);
      if (queue_.empty() && deferred_.empty()) return;  // stopping and drained
      // Deletions of published outbox rows ride along with this commit.
      std::move(deferred_.begin(), deferred_.end(), std::back_inserter(items));
      deferred_.clear();
      n = std::min(queue_.size(), options_.max_batch_items);
      for (std::size_t i = 0; i < n; ++i) {
        items.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    HandleBatch(std::move(items));
    work_.Finished(n);  // after their effects were handed on
  }
}

void Writer::HandleBatch(std::deque<Work> items) {
  BatchBuilder builder(*this, options_.clock->Now());
  std::vector<std::vector<IngressOutcome>> outcomes(items.size());
  std::vector<Status> heartbeats(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (auto* h = std::get_if<HeartbeatWork>(&items[i])) {
      heartbeats[i] = builder.Heartbeat(h->heartbeat);
    } else if (auto* in = std::get_if<IngressWork>(&items[i])) {
      for (const IngressMessage& msg : in->batch) outcomes[i].push_back(builder.Ingress(msg));
    } else if (auto* c = std::get_if<CommandWork>(&items[i])) {
      builder.Commands(*c);
    } else if (auto* t = std::get_if<TimerWork>(&items[i])) {
      for (const TimerRow& row : t->due) builder.FireTimer(row);
    } else if (auto* o = std::get_if<OutboxWork>(&items[i])) {
      builder.OutboxPublished(o->keys);
    }
  }
  const WriteBatch& batch = builder.batch();
  const Status committed = batch.empty() ? Status::Ok() : CommitWithRetry(batch);
  const auto* only = items.size() == 1 ? std::get_if<IngressWork>(&items[0]) : nullptr;
  const bool splittable = items.size() > 1 || (only != nullptr && only->batch.size() > 1);
  if (committed.code() == StatusCode::kInvalidArgument && splittable) {
    // The store refused the group's shape (one item is malformed): commit each
    // item on its own so only the offending one is refused (invariant 9).
    // Not for kAborted: a stale head is never retried silently (invariant 1).
    builder.Discard();
    for (Work& item : items) HandleAlone(std::move(item));
    return;
  }
  const CommitEffects effects = committed.ok() ? builder.Publish() : builder.Discard();
  // Deletions that rode along with other work did not fail themselves: they
  // wait for the next commit rather than make the relay republish.
  const bool only_deletions = std::all_of(items.begin(), items.end(), [](const Work& w) {
    return std::holds_alternative<OutboxWork>(w);
  });
  // Record before ack, record before deliver: effects run only now.
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (auto* in = std::get_if<IngressWork>(&items[i])) {
      if (!committed.ok()) {
        for (auto& o : outcomes[i]) o = IngressOutcome{committed};
      }
      in->done(std::move(outcomes[i]));
    } else if (auto* t = std::get_if<TimerWork>(&items[i])) {
      t->done(committed);
    } else if (auto* o = std::get_if<OutboxWork>(&items[i])) {
      if (committed.ok() || only_deletions || !Redefer(*o)) o->done(committed);
    } else if (auto* h = std::get_if<HeartbeatWork>(&items[i])) {
      h->done(committed.ok() ? heartbeats[i] : committed);
    }
  }
  effects_(effects);
}

void Writer::HandleAlone(Work item) {
  auto* in = std::get_if<IngressWork>(&item);
  if (in == nullptr || in->batch.size() == 1) {
    std::deque<Work> one;
    one.push_back(std::move(item));
    HandleBatch(std::move(one));
    return;
  }
  // One commit per message; HandleBatch runs each callback before it returns.
  std::vector<IngressOutcome> outcomes(in->batch.size());
  for (std::size_t i = 0; i < in->batch.size(); ++i) {
    std::deque<Work> one;
    one.push_back(IngressWork{
        {std::move(in->batch[i])},
        [&outcomes, i](std::vector<IngressOutcome> o) { outcomes[i] = std::move(o[0]); }});
    HandleBatch(std::move(one));
  }
  in->done(std::move(outcomes));
}

void Writer::TrimRecordCache() {
  const std::size_t limit = options_.max_cached_records;
  if (limit == 0 || records_.size() <= limit) return;
  // Any entries will do: a record not cached is one store read away, and
  // parked runs (most of a large cache) are the least likely to need theirs.
  auto it = records_.begin();
  while (records_.size() > limit - limit / 8) it = records_.erase(it);
}

Status Writer::CommitWithRetry(const WriteBatch& batch) {
  auto backoff = std::chrono::milliseconds(10);
  for (int attempt = 1;; ++attempt) {
    Status s = options_.store->Commit(batch);
    if (s.ok()) {
      if (attempt > 1) spdlog::info("writer: commit succeeded after {} attempts", attempt);
      return s;
    }
    if (!IsTransient(s)) {
      spdlog::error("writer: commit refused: {}", s.ToString());
      return s;
    }
    if (attempt == 1 || attempt % 50 == 0) {
      spdlog::warn("writer: commit failed ({}), holding acks and retrying", s.ToString());
    }
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Backpressure, not loss (invariant 10): keep retrying until it
      // commits, or give up only when the engine is being shut down.
      if (cv_.wait_for(lock, backoff, [&] { return stopping_; })) return s;
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
}

}  // namespace aion
