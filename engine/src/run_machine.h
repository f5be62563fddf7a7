// RunMachine: one run's workflow code, driven by its history.
//
// The same code path serves live execution and replay: every input event
// (WorkflowStarted, SignalReceived, TimerFired, ...) is applied in seq order and the
// coroutine runs until it is blocked again; the commands it issues are
// numbered (ordinal) and tagged with the seq of the input they answer
// (caused_by). Command events found in history are matched against issued
// commands in order; a difference is a kNondeterminism error naming the seq.
// Not thread-safe: one executor drives a machine at a time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aion/engine/context.h"
#include "aion/engine/history.h"
#include "aion/engine/registry.h"
#include "aion/engine/store.h"

namespace aion {

// A command issued by workflow code: the event to record (attributes and
// caused_by set; seq, time and run id are the writer's) and its ordinal.
struct IssuedCommand {
  std::uint64_t ordinal = 0;
  HistoryEvent event;
};

class RunMachine final : public detail::RunCore {
 public:
  RunMachine(std::string workflow_id, const WorkflowRegistry* registry);
  ~RunMachine() override;
  RunMachine(const RunMachine&) = delete;
  RunMachine& operator=(const RunMachine&) = delete;

  // Applies the next event of the run (the first must be WorkflowStarted).
  // Errors: kNondeterminism (history and code diverge), kUnknownWorkflowType
  // (type or code version not registered here), kInternal (gap in seqs).
  // After an error the machine must be discarded.
  Status Apply(const HistoryEvent& event);

  // Issued commands not handed out before, in order. Marks them handed out.
  std::vector<IssuedCommand> TakeNewCommands();

  std::uint64_t applied_seq() const { return applied_seq_; }
  // The run's terminal event has been applied from history.
  bool terminal_recorded() const { return terminal_recorded_; }
  void set_replaying(bool replaying) { replaying_ = replaying; }

  // detail::RunCore
  const std::string& WorkflowId() const override { return workflow_id_; }
  const std::string& RunId() const override { return run_id_; }
  Timestamp Now() const override { return now_; }
  std::uint64_t NextRandom() override;
  bool Replaying() const override { return replaying_; }
  std::string StartTimer(std::string_view id, Timestamp fire_at) override;
  void CancelTimer(const std::string& id) override;
  bool TimerFired(const std::string& id) const override;
  bool TimerPending(const std::string& id) const override;
  std::optional<Payload> TakeSignal(const std::string& name) override;
  bool SignalAvailable(const std::string& name) const override;
  void WaitTimer(const std::string& id, detail::Waiter* w) override;
  void WaitSignal(const std::string& name, detail::Waiter* w) override;
  void Forget(detail::Waiter* w) override;
  std::string ScheduleActivity(std::string_view type, Payload input,
                               const ActivityOptions& options) override;
  void CancelActivity(const std::string& id) override;
  const detail::ActivityResolution* ActivityResult(const std::string& id) const override;
  void WaitActivity(const std::string& id, detail::Waiter* w) override;
  bool CancelRequested() const override { return cancel_requested_; }
  std::string StartChild(std::string_view type, Payload input,
                         const ChildOptions& options) override;
  const std::string& ChildWorkflowId(const std::string& ref) const override;
  void CancelChild(const std::string& ref) override;
  const detail::ChildResolution* ChildResult(const std::string& ref) const override;
  void WaitChild(const std::string& ref, detail::Waiter* w) override;
  Payload SideEffect(const std::function<Payload()>& fn) override;
  bool Patched(std::string_view patch_id) override;
  void SetQueryHandler(std::string name, std::function<Json(const Json&)> handler) override;
  // Runs the handler of `name`; never changes the run.
  Result<Payload> Query(const std::string& name, const Payload& args) const;

  // Tells the machine what `events` (of this run, read ahead of applying
  // them) recorded for side effects and patches, so replay can answer them.
  void Preload(const std::vector<HistoryEvent>& events);

 private:
  enum class TimerState { kPending, kFired, kCancelled };
  struct PendingCommand {
    IssuedCommand command;
    bool handed_out = false;
  };

  Status ApplyInput(const HistoryEvent& event);
  Status ApplyTimerFired(const HistoryEvent& event);
  Status ResolveActivity(const HistoryEvent& event, const std::string& id,
                         detail::ActivityResolution resolution);
  Status ResolveChild(const HistoryEvent& event);
  void WakeChildWaiters(const std::string& ref);
  void DeliverCancel();
  // Drops the not-yet-recorded command matching `is_it`: the writer found it
  // moot (its timer fired / activity ended first) and recorded nothing.
  template <typename Pred>
  void DropMootCommand(Pred is_it);
  Status StartRun(const HistoryEvent& event);
  Status MatchCommand(const HistoryEvent& event);
  void Issue(HistoryEvent command);
  void Wake(detail::Waiter* w, detail::Waiter::Woken how);
  void WakeTimerWaiters(const std::string& id);
  void WakeSignalWaiters(const std::string& name);
  void RunUntilBlocked();
  void FinishIfDone();

  const std::string workflow_id_;
  const WorkflowRegistry* registry_;
  std::string run_id_;
  std::uint64_t applied_seq_ = 0;
  std::uint64_t current_input_ = 0;  // seq of the input being applied
  Timestamp now_ = 0;
  std::uint64_t random_state_ = 0;
  bool replaying_ = false;
  bool finished_ = false;           // terminal command issued
  bool terminal_recorded_ = false;  // terminal event applied
  bool cancel_requested_ = false;

  std::map<std::string, TimerState> timers_;
  std::uint64_t timer_counter_ = 0;
  std::multimap<std::string, detail::Waiter*> timer_waiters_;
  std::map<std::string, std::vector<Payload>> signals_;  // received, by name
  std::map<std::string, std::size_t> signals_taken_;
  // Vectors, not deques: an empty std::deque allocates ~600 bytes, and
  // every resident run holds these (see bench/README.md, memory per run).
  std::map<std::string, std::vector<detail::Waiter*>> signal_waiters_;
  // Scheduled activities; a resolution once they ended (or were cancelled).
  std::map<std::string, std::optional<detail::ActivityResolution>> activities_;
  std::uint64_t activity_counter_ = 0;
  std::multimap<std::string, detail::Waiter*> activity_waiters_;
  struct ChildState {
    std::string workflow_id;
    std::optional<detail::ChildResolution> resolution;  // set once it ended or was cancelled
  };
  std::map<std::string, ChildState> children_;  // by child_ref
  std::uint64_t child_counter_ = 0;
  std::multimap<std::string, detail::Waiter*> child_waiters_;
  std::uint64_t side_effect_counter_ = 0;
  std::map<std::string, Payload> recorded_side_effects_;
  std::map<std::string, std::uint64_t, std::less<>> recorded_patches_;  // id -> caused_by
  std::map<std::string, bool, std::less<>> patches_;                    // answers given
  std::map<std::string, std::function<Json(const Json&)>> query_handlers_;

  std::vector<PendingCommand> unmatched_;  // issued, not yet seen in history
  std::uint64_t next_ordinal_ = 0;
  std::vector<std::coroutine_handle<>> ready_;

  std::unique_ptr<Context> context_;
  Task<Payload> root_;
};

}  // namespace aion
