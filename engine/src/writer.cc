#include "writer.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <set>

#include "aion/engine/history.h"
#include "aion/engine/ids.h"

namespace aion {
namespace {

std::string OutboxKey(const std::string& workflow_id, std::uint64_t seq) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(seq));
  return workflow_id + "/" + buf;
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
  if (terminal.has_workflow_failed()) o.failure = terminal.workflow_failed().message();
  return o;
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
        return {Status::Ok(), /*duplicate=*/true, d.run_id(), d.seq()};
      }
    }
    IngressOutcome out = msg.kind == IngressMessage::Kind::kStart ? Start(msg) : Signal(msg);
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
      // Cannot check them now: the run rebuilds and sends them again.
      effects_.rebuild.push_back(work.workflow_id);
      return;
    }
    if (*staged == nullptr) return;
    Staged& st = **staged;
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

  void OutboxPublished(const std::vector<std::string>& keys) {
    batch_.outbox_deletes.insert(batch_.outbox_deletes.end(), keys.begin(), keys.end());
  }

  WriteBatch& batch() {
    batch_.appends.clear();
    for (auto& [id, st] : staged_) {
      if (!st.touched) continue;
      AppendOp op;
      op.workflow_id = id;
      op.expected_head = st.base_head;
      op.events = st.events;
      op.record = st.rec;
      batch_.appends.push_back(std::move(op));
    }
    return batch_;
  }

  // The commit succeeded: staged records become the writer's truth.
  CommitEffects Publish() {
    for (auto& [id, st] : staged_) {
      if (!st.touched) continue;
      if (st.rec.status() == records::WORKFLOW_STATUS_RUNNING) {
        w_.records_[id] = st.rec;
      } else {
        w_.records_.erase(id);  // closed workflows are re-read on demand
      }
    }
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
        st.rec = cached->second;
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
    started->set_request_id(msg.request_id);
    const std::uint64_t seq = Append(st, e);
    st.rec.set_run_start_seq(seq);
    AddLifecycle(st, seq);
    effects_.wake.push_back(msg.workflow_id);
    return {Status::Ok(), false, st.rec.run_id(), seq};
  }

  IngressOutcome Signal(const IngressMessage& msg) {
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
    *sig->mutable_input() = msg.input;
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
        // Cancelled and restarted with the same key in this batch: the row
        // must survive (stores apply deletes after puts).
        std::erase_if(batch_.timer_deletes, [&](const TimerRow& d) { return SameTimerRow(d, row); });
        batch_.timer_puts.push_back(std::move(row));
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
      case HistoryEvent::kWorkflowCompleted:
      case HistoryEvent::kWorkflowFailed: {
        st.rec.set_status(cmd.has_workflow_completed() ? records::WORKFLOW_STATUS_COMPLETED
                                                       : records::WORKFLOW_STATUS_FAILED);
        st.rec.set_close_time_us(now_);
        const std::uint64_t seq = Append(st, cmd);
        AddLifecycle(st, seq);
        effects_.closed.emplace_back(st.rec.workflow_id(), OutcomeOf(st.rec, cmd));
        effects_.wake.push_back(st.rec.workflow_id());
        return;
      }
      default:
        spdlog::error("writer: '{}' sent a non-command event {}", st.rec.workflow_id(),
                      DescribeEvent(cmd));
    }
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
    row.set_key(OutboxKey(st.rec.workflow_id(), seq));
    row.set_kind(OutboxRow::KIND_LIFECYCLE);
    row.set_workflow_id(st.rec.workflow_id());
    row.set_workflow_type(st.rec.workflow_type());
    *row.mutable_event() = st.events.back();
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

Writer::Writer(const EngineOptions& options, EffectsSink effects)
    : options_(options), effects_(std::move(effects)), thread_([this] { Loop(); }) {}

Writer::~Writer() { Stop(); }

void Writer::SubmitIngress(std::vector<IngressMessage> batch, IngressCallback done) {
  Enqueue(IngressWork{std::move(batch), std::move(done)});
}

void Writer::SubmitCommands(std::string workflow_id, std::string run_id,
                            std::vector<IssuedCommand> commands) {
  Enqueue(CommandWork{std::move(workflow_id), std::move(run_id), std::move(commands)});
}

void Writer::SubmitDueTimers(std::vector<TimerRow> due, std::function<void(Status)> done) {
  Enqueue(TimerWork{std::move(due), std::move(done)});
}

void Writer::SubmitOutboxPublished(std::vector<std::string> keys,
                                   std::function<void(Status)> done) {
  Enqueue(OutboxWork{std::move(keys), std::move(done)});
}

void Writer::Enqueue(Work work) {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (!stopping_) {
      queue_.push_back(std::move(work));
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

void Writer::Loop() {
  while (true) {
    std::deque<Work> items;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      const std::size_t n = std::min(queue_.size(), options_.max_batch_items);
      for (std::size_t i = 0; i < n; ++i) {
        items.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    HandleBatch(std::move(items));
  }
}

void Writer::HandleBatch(std::deque<Work> items) {
  BatchBuilder builder(*this, options_.clock->Now());
  std::vector<std::vector<IngressOutcome>> outcomes(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (auto* in = std::get_if<IngressWork>(&items[i])) {
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
      o->done(committed);
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
    one.push_back(IngressWork{{std::move(in->batch[i])},
                              [&outcomes, i](std::vector<IngressOutcome> o) {
                                outcomes[i] = std::move(o[0]);
                              }});
    HandleBatch(std::move(one));
  }
  in->done(std::move(outcomes));
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
