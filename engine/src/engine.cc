#include "aion/engine/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>

#include "activity_pool.h"
#include "aion/engine/history.h"
#include "aion/engine/ids.h"
#include "outbox_positions.h"
#include "outbox_relay.h"
#include "run_host.h"
#include "timer_service.h"
#include "writer.h"

namespace aion {
namespace {

// Calls close callbacks exactly once: whoever removes a token runs its callback.
class CloseWaiters {
 public:
  using Callback = std::function<void(Result<Outcome>)>;

  std::uint64_t Add(std::string_view id, Callback cb) {
    std::lock_guard<std::mutex> g(mu_);
    const std::uint64_t token = ++next_token_;
    by_id_[std::string(id)][token] = std::move(cb);
    ids_[token] = std::string(id);
    return token;
  }
  // The callback of `token` if it was still waiting.
  Callback Take(std::uint64_t token) {
    std::lock_guard<std::mutex> g(mu_);
    auto id = ids_.find(token);
    if (id == ids_.end()) return nullptr;
    auto& waiting = by_id_[id->second];
    Callback cb = std::move(waiting[token]);
    waiting.erase(token);
    if (waiting.empty()) by_id_.erase(id->second);
    ids_.erase(id);
    return cb;
  }
  std::vector<Callback> TakeAll(const std::string& id) {
    std::lock_guard<std::mutex> g(mu_);
    std::vector<Callback> out;
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return out;
    for (auto& [token, cb] : it->second) {
      out.push_back(std::move(cb));
      ids_.erase(token);
    }
    by_id_.erase(it);
    return out;
  }

 private:
  std::mutex mu_;
  std::uint64_t next_token_ = 0;                                    // guarded by mu_
  std::map<std::string, std::map<std::uint64_t, Callback>> by_id_;  // guarded by mu_
  std::map<std::uint64_t, std::string> ids_;                        // guarded by mu_
};

class EngineImpl final : public Engine {
 public:
  EngineImpl(EngineOptions options, std::uint64_t first_outbox_position)
      : options_(std::move(options)) {
    // First: commit effects (which may start as soon as the writer exists)
    // hand local attempts to the pool.
    activities_ = std::make_unique<ActivityPool>(
        options_.activities, options_.activity_threads,
        [this](IngressMessage result) { ReportLocalResult(std::move(result)); },
        [this](ActivityHeartbeat hb) { return HeartbeatAndWait(std::move(hb)); });
    writer_ = std::make_unique<Writer>(options_, first_outbox_position,
                                       [this](const CommitEffects& e) { Apply(e); });
    runs_ = std::make_unique<RunHost>(
        options_, [this](const std::string& id, std::string_view run_id,
                         std::vector<IssuedCommand> commands, std::uint64_t ran_through) {
          writer_->SubmitCommands(id, std::string(run_id), std::move(commands), ran_through);
        });
    timers_ = std::make_unique<TimerService>(options_, writer_.get());
    relay_ = std::make_unique<OutboxRelay>(options_, writer_.get());
    // The timer service fires rows that fell due during downtime as soon as
    // it exists, so the writer may commit (a run timeout, an activity retry)
    // before relay_ is set: Apply waits for this.
    constructed_.set_value();
  }

  ~EngineImpl() override { Shutdown(); }

  Status Recover() {
    std::string after;
    std::size_t count = 0;
    while (true) {
      auto page = options_.store->ListByStatus(records::WORKFLOW_STATUS_RUNNING, after, 1024);
      if (!page.ok()) return page.status();
      for (const WorkflowRecord& rec : *page) {
        runs_->Notify(rec.workflow_id());
        RestartLocalActivities(rec);
      }
      count += page->size();
      if (page->size() < 1024) break;
      after = page->back().workflow_id();
    }
    if (count > 0) spdlog::info("engine: rebuilding {} open workflows by replay", count);
    return Status::Ok();
  }

  void Shutdown() override {
    if (shut_down_.exchange(true)) return;
    // First: the writer takes no new work and gives up on failing commits, so
    // threads waiting for one of its commits cannot hang the shutdown.
    writer_->BeginStop();
    activities_->Stop();
    timers_->Stop();
    relay_->Stop();
    runs_->Stop();
    writer_->Stop();  // finishes queued work; its callbacks ack
  }

  void Submit(std::vector<IngressMessage> batch, IngressCallback done) override {
    writer_->SubmitIngress(std::move(batch), std::move(done));
  }

  IngressOutcome Start(std::string workflow_id, std::string workflow_type, Payload input,
                       std::string request_id) override {
    IngressMessage m;
    m.kind = IngressMessage::Kind::kStart;
    m.workflow_id = std::move(workflow_id);
    m.workflow_type = std::move(workflow_type);
    m.input = std::move(input);
    m.dedupe_key = RequestDedupeKey("start", m.workflow_id, request_id);
    m.request_id = std::move(request_id);
    return SubmitOne(std::move(m));
  }

  IngressOutcome Signal(std::string workflow_id, std::string signal_name, Payload input,
                        std::string request_id) override {
    IngressMessage m;
    m.kind = IngressMessage::Kind::kSignal;
    m.workflow_id = std::move(workflow_id);
    m.signal_name = std::move(signal_name);
    m.input = std::move(input);
    m.dedupe_key = RequestDedupeKey("signal", m.workflow_id, request_id);
    m.request_id = std::move(request_id);
    return SubmitOne(std::move(m));
  }

  IngressOutcome Send(IngressMessage message) override { return SubmitOne(std::move(message)); }

  void Heartbeat(ActivityHeartbeat heartbeat, std::function<void(Status)> done) override {
    writer_->SubmitHeartbeat(std::move(heartbeat), std::move(done));
  }

  Result<Payload> Query(std::string_view workflow_id, std::string name, Payload args,
                        std::chrono::milliseconds timeout) override {
    if (Status s = ValidateWorkflowId(workflow_id); !s.ok()) return s;
    if (Status s = ValidateName("query name", name); !s.ok()) return s;
    auto rec = options_.store->GetWorkflow(workflow_id);
    if (!rec.ok()) return rec.status();
    // Shared: the answer may come after this call gave up waiting.
    auto answer = std::make_shared<std::promise<Result<Payload>>>();
    auto result = answer->get_future();
    runs_->Query(std::string(workflow_id), std::move(name), std::move(args),
                 [answer](Result<Payload> r) { answer->set_value(std::move(r)); });
    if (result.wait_for(timeout) != std::future_status::ready) {
      return Status{StatusCode::kQueryTimeout, "workflow '" + std::string(workflow_id) +
                                                   "' did not answer the query within " +
                                                   std::to_string(timeout.count()) + " ms"};
    }
    return result.get();
  }

  Result<Description> Describe(std::string_view workflow_id) override {
    auto rec = options_.store->GetWorkflow(workflow_id);
    if (!rec.ok()) return rec.status();
    Description d;
    d.record = std::move(*rec);
    d.parked_error = runs_->ParkedError(d.record.workflow_id());
    d.resident = runs_->IsResident(d.record.workflow_id());
    return d;
  }

  Result<ListPage> List(const ListRequest& request) override {
    if (request.limit == 0 || request.limit > 1000) {
      return InvalidArgument("list limit must be in [1, 1000]");
    }
    std::vector<WorkflowStatus> statuses = request.statuses;
    if (statuses.empty()) {
      for (int s = records::WorkflowStatus_MIN; s <= records::WorkflowStatus_MAX; ++s) {
        if (s != records::WORKFLOW_STATUS_UNSPECIFIED) {
          statuses.push_back(static_cast<WorkflowStatus>(s));
        }
      }
    }
    std::sort(statuses.begin(), statuses.end());
    // The token is "<status number>/<last workflow id>".
    std::size_t first = 0;
    std::string after;
    if (!request.page_token.empty()) {
      const auto slash = request.page_token.find('/');
      int status = -1;
      if (slash != std::string::npos) {
        try {
          status = std::stoi(request.page_token.substr(0, slash));
        } catch (const std::exception&) {
        }
      }
      auto at = std::find(statuses.begin(), statuses.end(), status);
      if (at == statuses.end()) return InvalidArgument("bad page token for this list request");
      first = at - statuses.begin();
      after = request.page_token.substr(slash + 1);
    }
    ListPage page;
    for (std::size_t i = first; i < statuses.size(); ++i, after.clear()) {
      while (true) {
        auto chunk = options_.store->ListByStatus(statuses[i], after, 1024);
        if (!chunk.ok()) return chunk.status();
        for (WorkflowRecord& rec : *chunk) {
          after = rec.workflow_id();
          if (!Matches(request, rec)) continue;
          page.workflows.push_back(std::move(rec));
          if (page.workflows.size() == request.limit) {
            page.next_page_token = std::to_string(statuses[i]) + "/" + after;
            return page;
          }
        }
        if (chunk->size() < 1024) break;
      }
    }
    return page;
  }

  Result<std::vector<HistoryEvent>> History(std::string_view workflow_id) override {
    auto rec = options_.store->GetWorkflow(workflow_id);
    if (!rec.ok()) return rec.status();
    return options_.store->ReadHistory(workflow_id, 1);
  }

  std::uint64_t OnClosed(std::string_view workflow_id,
                         std::function<void(Result<Outcome>)> cb) override {
    const std::uint64_t token = closes_.Add(workflow_id, std::move(cb));
    // Registered first, checked second: a close committed in between is
    // seen by one of the two paths, and Take makes sure only one calls back.
    auto now = CurrentOutcome(workflow_id);
    if (now.ok() && !now->has_value()) return token;  // still running
    if (auto waiting = closes_.Take(token)) {
      if (now.ok()) {
        waiting(std::move(**now));
      } else {
        waiting(now.status());
      }
    }
    return token;
  }

  void CancelOnClosed(std::uint64_t token) override { closes_.Take(token); }

  Result<Outcome> AwaitResult(std::string_view workflow_id,
                              std::chrono::milliseconds timeout) override {
    auto done = std::make_shared<std::promise<Result<Outcome>>>();
    auto result = done->get_future();
    const std::uint64_t token =
        OnClosed(workflow_id, [done](Result<Outcome> r) { done->set_value(std::move(r)); });
    if (result.wait_for(timeout) == std::future_status::ready) return result.get();
    if (closes_.Take(token) == nullptr) return result.get();  // closed just now
    return Status{StatusCode::kDeadlineExceeded, "workflow '" + std::string(workflow_id) +
                                                     "' did not close within " +
                                                     std::to_string(timeout.count()) + " ms"};
  }

  bool Idle() override {
    // Starts are counted before the work they hand on finishes, so equal
    // totals mean nothing was in flight when the finished counts were read;
    // unchanged starts afterwards mean it stayed so while the store was read.
    const std::uint64_t started = WorkStarted();
    if (WorkFinished() != started) return false;
    auto due = options_.store->DueTimers(options_.clock->Now(), 1);
    if (!due.ok() || !due->empty()) return false;
    auto outbox = options_.store->ReadOutbox("", 1);
    if (!outbox.ok() || !outbox->empty()) return false;
    return WorkStarted() == started;
  }

 private:
  IngressOutcome SubmitOne(IngressMessage m) {
    std::promise<IngressOutcome> done;
    auto result = done.get_future();
    std::vector<IngressMessage> batch;
    batch.push_back(std::move(m));
    Submit(std::move(batch), [&done](std::vector<IngressOutcome> outcomes) {
      done.set_value(std::move(outcomes[0]));
    });
    return result.get();
  }

  std::uint64_t WorkStarted() const {
    return writer_->work().started() + runs_->work().started() + activities_->work().started();
  }
  std::uint64_t WorkFinished() const {
    return writer_->work().finished() + runs_->work().finished() + activities_->work().finished();
  }

  // nullopt while the run is open.
  Result<std::optional<Outcome>> CurrentOutcome(std::string_view workflow_id) {
    auto rec = options_.store->GetWorkflow(workflow_id);
    if (!rec.ok()) return rec.status();
    if (rec->status() == records::WORKFLOW_STATUS_RUNNING) return std::optional<Outcome>();
    auto last = options_.store->ReadHistory(workflow_id, rec->head_seq(), 1);
    if (!last.ok()) return last.status();
    Outcome o;
    o.status = rec->status();
    o.run_id = rec->run_id();
    for (const HistoryEvent& e : *last) {
      if (e.has_workflow_completed()) o.output = e.workflow_completed().output();
      o.failure = TerminalMessage(e);
    }
    return std::optional<Outcome>(std::move(o));
  }

  static bool Matches(const ListRequest& r, const WorkflowRecord& rec) {
    if (!r.workflow_type.empty() && rec.workflow_type() != r.workflow_type) return false;
    if (r.started_after_us != 0 && rec.start_time_us() < r.started_after_us) return false;
    if (r.started_before_us != 0 && rec.start_time_us() >= r.started_before_us) return false;
    return r.partitions.empty() || std::find(r.partitions.begin(), r.partitions.end(),
                                             rec.partition()) != r.partitions.end();
  }

  // A local attempt the store says started but no pool runs (after a restart).
  void RestartLocalActivities(const WorkflowRecord& rec) {
    for (const auto& pa : rec.activities()) {
      if (!pa.options().task_queue().empty() ||
          pa.state() != records::PendingActivity::STATE_STARTED) {
        continue;
      }
      LocalActivity a;
      a.workflow_id = rec.workflow_id();
      a.task.set_run_id(rec.run_id());
      a.task.set_activity_id(pa.activity_id());
      a.task.set_attempt(pa.attempt());
      a.task.set_activity_type(pa.activity_type());
      *a.task.mutable_input() = pa.input();
      activities_->Run(std::move(a));
    }
  }

  void ReportLocalResult(IngressMessage result) {
    std::vector<IngressMessage> batch;
    batch.push_back(std::move(result));
    Submit(std::move(batch), [](std::vector<IngressOutcome> outcomes) {
      const Status& s = outcomes[0].status;
      // Not recorded (shutting down): the attempt is still STARTED in the
      // store and runs again after the restart.
      if (!s.ok()) spdlog::warn("local activity result not recorded: {}", s.ToString());
    });
  }

  Status HeartbeatAndWait(ActivityHeartbeat hb) {
    std::promise<Status> done;
    auto result = done.get_future();
    Heartbeat(std::move(hb), [&done](Status s) { done.set_value(std::move(s)); });
    return result.get();
  }

  // Runs on the writer thread after each commit.
  void Apply(const CommitEffects& e) {
    ready_.wait();  // every component exists
    for (const LocalActivity& a : e.local_tasks) activities_->Run(a);
    for (const LocalActivity& a : e.local_cancels) activities_->Cancel(a);
    for (const std::string& id : e.wake) runs_->Notify(id);
    for (const std::string& id : e.rebuild) runs_->Rebuild(id);
    for (const auto& [id, outcome] : e.closed) {
      for (auto& cb : closes_.TakeAll(id)) cb(outcome);
    }
    if (e.timers_added) timers_->Nudge();
    if (e.outbox_added) relay_->Nudge();
  }

  const EngineOptions options_;
  std::promise<void> constructed_;
  std::shared_future<void> ready_ = constructed_.get_future().share();
  std::atomic<bool> shut_down_{false};
  CloseWaiters closes_;
  std::unique_ptr<Writer> writer_;
  std::unique_ptr<RunHost> runs_;
  std::unique_ptr<TimerService> timers_;
  std::unique_ptr<OutboxRelay> relay_;
  std::unique_ptr<ActivityPool> activities_;
};

}  // namespace

std::string RequestDedupeKey(std::string_view kind, std::string_view workflow_id,
                             std::string_view request_id) {
  if (request_id.empty()) return "";
  return std::string(kind) + ":" + std::string(workflow_id) + ":" + std::string(request_id);
}

IngressMessage IngressOfWorkflowMessage(const records::WorkflowMessageRow& row) {
  using Row = records::WorkflowMessageRow;
  IngressMessage m;
  m.workflow_id = row.workflow_id();
  m.request_id = row.request_id();
  m.parent = row.parent();
  std::string_view kind;
  switch (row.kind()) {
    case Row::KIND_START:
      m.kind = IngressMessage::Kind::kStart;
      m.workflow_type = row.workflow_type();
      m.input = row.input();
      m.run_timeout_us = row.run_timeout_us();
      kind = "start";
      break;
    case Row::KIND_CANCEL:
      m.kind = IngressMessage::Kind::kCancel;
      m.reason = row.reason();
      kind = "cancel";
      break;
    case Row::KIND_TERMINATE:
      m.kind = IngressMessage::Kind::kTerminate;
      m.reason = row.reason();
      kind = "terminate";
      break;
    case Row::KIND_CHILD_RESULT:
    default:  // the writer writes no other kind
      m.kind = IngressMessage::Kind::kChildResult;
      m.child_result = row.result();
      kind = "child_result";
      break;
  }
  m.dedupe_key = RequestDedupeKey(kind, m.workflow_id, m.request_id);
  return m;
}

Result<std::unique_ptr<Engine>> Engine::Open(EngineOptions options) {
  if (options.store == nullptr) return InvalidArgument("EngineOptions.store is required");
  if (options.registry == nullptr) return InvalidArgument("EngineOptions.registry is required");
  if (options.clock == nullptr) return InvalidArgument("EngineOptions.clock is null");
  if (options.partition_count == 0) return InvalidArgument("partition_count must be positive");
  // Before anything commits: the writer numbers new outbox rows after these.
  auto first_outbox_position = OpenOutboxPositions(*options.store);
  if (!first_outbox_position.ok()) return first_outbox_position.status();
  auto engine = std::make_unique<EngineImpl>(std::move(options), *first_outbox_position);
  AION_RETURN_IF_ERROR(engine->Recover());
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace aion
