#include "run_host.h"

#include <spdlog/spdlog.h>

namespace aion {

RunHost::RunHost(const EngineOptions& options, CommandSink commands)
    : options_(options), commands_(std::move(commands)) {
  const int n = options_.executor_threads > 0 ? options_.executor_threads : 1;
  for (int i = 0; i < n; ++i) executors_.emplace_back([this] { ExecutorLoop(); });
  restarter_ = std::thread([this] { RestartLoop(); });
}

RunHost::~RunHost() { Stop(); }

void RunHost::Notify(const std::string& workflow_id) { Wake(workflow_id, nullptr); }

void RunHost::Query(const std::string& workflow_id, std::string name, Payload args,
                    QueryCallback done) {
  Run::PendingQuery query{std::move(name), std::move(args), std::move(done)};
  Wake(workflow_id, &query);
}

void RunHost::Wake(const std::string& workflow_id, Run::PendingQuery* query) {
  Run* run = nullptr;
  {
    std::unique_lock<std::mutex> lock(runs_mu_);
    if (auto parked = parked_.find(workflow_id); parked != parked_.end()) {
      // Parked runs wait for fixed code; a query gets the reason now.
      if (query == nullptr) return;
      const std::string why = parked->second;
      lock.unlock();
      query->done(
          Status{StatusCode::kUnavailable, "run of '" + workflow_id + "' is parked: " + why});
      return;
    }
    auto [entry, added] = runs_.try_emplace(workflow_id);
    run = &entry->second;
    if (added) run->id = &entry->first;
    if (run->in_lru) LruRemove(*run);
    if (query != nullptr) run->queries.push_front(std::move(*query));
    // The CAS happens under runs_mu_ so Retire cannot free the run meanwhile.
    int s = run->wake.load(std::memory_order_acquire);
    while (true) {
      if (s == kQueued || s == kRunningNotified) return;
      const int next = s == kIdle ? kQueued : kRunningNotified;
      if (run->wake.compare_exchange_weak(s, next, std::memory_order_acq_rel)) break;
    }
    if (s != kIdle) return;  // the executor holding it will run it again
    work_.Started();
  }
  std::lock_guard<std::mutex> g(queue_mu_);
  queue_.push_back(run);
  queue_cv_.notify_one();
}

void RunHost::Rebuild(const std::string& workflow_id) {
  {
    std::lock_guard<std::mutex> g(runs_mu_);
    auto it = runs_.find(workflow_id);
    if (it != runs_.end()) it->second.rebuild.store(true);
  }
  Notify(workflow_id);
}

std::string RunHost::ParkedError(const std::string& workflow_id) const {
  std::lock_guard<std::mutex> g(runs_mu_);
  auto it = parked_.find(workflow_id);
  return it == parked_.end() ? "" : it->second;
}

bool RunHost::IsResident(const std::string& workflow_id) const {
  std::lock_guard<std::mutex> g(runs_mu_);
  return runs_.count(workflow_id) != 0;
}

std::size_t RunHost::ResidentCount() const {
  std::lock_guard<std::mutex> g(runs_mu_);
  return runs_.size();
}

void RunHost::Stop() {
  {
    std::lock_guard<std::mutex> g(runs_mu_);
    restart_stopping_ = true;
    restart_cv_.notify_all();
  }
  if (restarter_.joinable()) restarter_.join();
  {
    std::lock_guard<std::mutex> g(queue_mu_);
    stopping_ = true;
    queue_cv_.notify_all();
  }
  for (auto& t : executors_) {
    if (t.joinable()) t.join();
  }
}

void RunHost::ExecutorLoop() {
  while (true) {
    Run* run = nullptr;
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;  // unexecuted runs are rebuilt by replay next time
      run = queue_.front();
      queue_.pop_front();
    }
    Execute(*run);
    work_.Finished();
  }
}

void RunHost::Execute(Run& run) {
  run.wake.store(kRunning, std::memory_order_release);
  while (true) {
    if (Status s = CatchUp(run); !s.ok()) {
      Supervise(run, s);
      return;
    }
    AnswerQueries(run);
    if (!run.machine || run.machine->terminal_recorded()) {
      if (TryRetire(run)) return;
      run.machine.reset();  // a marker came in: perhaps a new run of the id
      continue;
    }
    run.machine->ReleaseSpare();  // before it may sit idle for months
    if (TryIdle(run)) return;
    // A marker arrived while we ran: look at the store again.
    run.wake.store(kRunning, std::memory_order_release);
  }
}

bool RunHost::TryIdle(Run& run) {
  // Under runs_mu_ (as Notify's CAS), so an idle run can be evicted safely.
  std::lock_guard<std::mutex> g(runs_mu_);
  int expected = kRunning;
  if (!run.wake.compare_exchange_strong(expected, kIdle, std::memory_order_acq_rel)) return false;
  LruPushBack(run);
  // Beyond the cache size, the least recently used idle runs leave memory;
  // their next marker rebuilds them by replay.
  while (options_.max_resident_runs > 0 && runs_.size() > options_.max_resident_runs &&
         idle_oldest_ != nullptr) {
    Run* oldest = idle_oldest_;
    LruRemove(*oldest);
    if (oldest->wake.load(std::memory_order_acquire) == kIdle) Erase(*oldest);
  }
  return true;
}

void RunHost::LruPushBack(Run& run) {
  run.lru_prev = idle_newest_;
  run.lru_next = nullptr;
  (idle_newest_ != nullptr ? idle_newest_->lru_next : idle_oldest_) = &run;
  idle_newest_ = &run;
  run.in_lru = true;
}

void RunHost::Erase(Run& run) {
  if (run.in_lru) LruRemove(run);
  runs_.erase(runs_.find(run.workflow_id()));  // frees `run`
}

void RunHost::LruRemove(Run& run) {
  (run.lru_prev != nullptr ? run.lru_prev->lru_next : idle_oldest_) = run.lru_next;
  (run.lru_next != nullptr ? run.lru_next->lru_prev : idle_newest_) = run.lru_prev;
  run.lru_prev = run.lru_next = nullptr;
  run.in_lru = false;
}

Status RunHost::CatchUp(Run& run) {
  Store& store = *options_.store;
  if (run.rebuild.exchange(false)) run.machine.reset();
  const bool rebuilding = !run.machine;
  std::uint64_t from = 0;
  // An input is replayed (its code already ran once: no logging) up to where
  // the record says the code ran, and where history holds commands it issued.
  std::uint64_t replay_through = 0;
  if (rebuilding) {
    auto rec = store.GetWorkflow(run.workflow_id());
    if (rec.status().code() == StatusCode::kNotFound) return Status::Ok();  // nothing to run
    if (!rec.ok()) return rec.status();
    from = rec->run_start_seq();
    replay_through = rec->code_ran_through();
    run.machine.emplace(run.workflow_id(), options_.registry);
  } else {
    from = run.machine->applied_seq() + 1;
  }
  auto events = store.ReadHistory(run.workflow_id(), from);
  if (!events.ok()) return events.status();
  run.machine->Preload(*events);
  if (rebuilding) {
    for (const HistoryEvent& e : *events) replay_through = std::max(replay_through, e.caused_by());
  }
  std::uint64_t ran_through = 0;  // the last input the code ran on live
  for (const HistoryEvent& e : *events) {
    if (run.machine->terminal_recorded()) {
      // A new run of the id began after this one closed: start over from the
      // record, which points at the new run's first event.
      run.machine.reset();
      return CatchUp(run);
    }
    run.machine->set_replaying(e.seq() <= replay_through);
    AION_RETURN_IF_ERROR(run.machine->Apply(e));
    // (ActivityStarted resumes no code: no note for it.)
    if (e.seq() > replay_through && IsInputEvent(e) && !e.has_activity_started()) {
      ran_through = e.seq();
    }
  }
  run.machine->set_replaying(false);
  auto commands = run.machine->TakeNewCommands();
  if (!commands.empty() || ran_through > 0) {
    commands_(run.workflow_id(), run.machine->RunId(), std::move(commands), ran_through);
  }
  return Status::Ok();
}

void RunHost::AnswerQueries(Run& run) {
  std::forward_list<Run::PendingQuery> queries;
  {
    std::lock_guard<std::mutex> g(runs_mu_);
    queries = TakeQueries(run);
  }
  for (auto& q : queries) {
    if (!run.machine) {
      q.done(NotFound("no workflow '" + run.workflow_id() + "'"));
    } else {
      q.done(run.machine->Query(q.name, q.args));
    }
  }
}

void RunHost::Supervise(Run& run, const Status& why) {
  const StatusCode code = why.code();
  if (code == StatusCode::kNondeterminism || code == StatusCode::kUnknownWorkflowType) {
    Park(run, why);  // the code is at fault: wait for fixed code
    return;
  }
  const std::string id = run.workflow_id();  // Park frees `run`
  const auto& sup = options_.supervision;
  const Timestamp now = options_.clock->Now();
  std::size_t restarts = 0;
  {
    std::lock_guard<std::mutex> g(runs_mu_);
    auto& times = faults_[id];
    while (!times.empty() && times.front() <= now - sup.window.count() * 1000) times.pop_front();
    times.push_back(now);
    restarts = times.size();
  }
  if (static_cast<int>(restarts) > sup.max_restarts) {
    Park(run,
         Status{code, "gave up after " + std::to_string(sup.max_restarts) + " restarts within " +
                          std::to_string(sup.window.count()) + " ms: " + why.message()});
    return;
  }
  auto backoff = sup.initial_backoff;
  for (std::size_t i = 1; i < restarts && backoff < sup.max_backoff; ++i) backoff *= 2;
  backoff = std::min(backoff, sup.max_backoff);
  // Parked until the backoff passes (markers meanwhile are covered: the
  // rebuild reads everything durable).
  Park(run, Status{code, "restarting in " + std::to_string(backoff.count()) + " ms (restart " +
                             std::to_string(restarts) + " of " + std::to_string(sup.max_restarts) +
                             "): " + why.message()});
  std::lock_guard<std::mutex> g(runs_mu_);
  restarts_.emplace(now + backoff.count() * 1000, id);
  restart_cv_.notify_all();
}

void RunHost::RestartLoop() {
  std::unique_lock<std::mutex> lock(runs_mu_);
  while (!restart_stopping_) {
    const Timestamp now = options_.clock->Now();
    std::vector<std::string> due;
    while (!restarts_.empty() && restarts_.begin()->first <= now) {
      due.push_back(restarts_.begin()->second);
      parked_.erase(restarts_.begin()->second);
      restarts_.erase(restarts_.begin());
    }
    if (!due.empty()) {
      lock.unlock();
      for (const auto& id : due) Notify(id);
      lock.lock();
      continue;
    }
    const Timestamp next = restarts_.empty() ? now + 3'600'000'000LL : restarts_.begin()->first;
    options_.clock->WaitUntil(lock, restart_cv_, next);
  }
}

void RunHost::Park(Run& run, const Status& why) {
  spdlog::error("run of '{}' parked: {}", run.workflow_id(), why.ToString());
  const std::string id = run.workflow_id();  // `run` is freed below
  std::forward_list<Run::PendingQuery> queries;
  {
    std::lock_guard<std::mutex> g(runs_mu_);
    parked_[id] = why.ToString();
    queries = TakeQueries(run);
    Erase(run);  // later markers are refused while parked
  }
  for (auto& q : queries) {
    q.done(Status{StatusCode::kUnavailable, "run of '" + id + "' is parked: " + why.ToString()});
  }
}

std::forward_list<RunHost::Run::PendingQuery> RunHost::TakeQueries(Run& run) {
  std::forward_list<Run::PendingQuery> oldest_first;
  oldest_first.swap(run.queries);
  oldest_first.reverse();
  return oldest_first;
}

bool RunHost::TryRetire(Run& run) {
  // Notify changes wake states under runs_mu_, so this check and the erase
  // are atomic with respect to markers; none can be lost here.
  std::lock_guard<std::mutex> g(runs_mu_);
  if (run.wake.load(std::memory_order_acquire) == kRunningNotified) {
    run.wake.store(kRunning, std::memory_order_release);
    return false;
  }
  faults_.erase(run.workflow_id());
  Erase(run);
  return true;
}

}  // namespace aion
