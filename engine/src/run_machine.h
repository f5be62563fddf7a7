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

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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
  // `workflow_id` must outlive the machine (RunHost passes the key of the
  // run's entry): a resident run keeps no second copy of its id.
  RunMachine(const std::string& workflow_id, const WorkflowRegistry* registry);
  RunMachine(std::string&& workflow_id, const WorkflowRegistry* registry) = delete;
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
  std::string_view RunId() const override;
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

  // Frees spare capacity of buffers that are empty between inputs; the
  // host calls it when the run goes idle, so a parked run keeps none.
  void ReleaseSpare();

 private:
  enum class TimerState : std::uint8_t { kPending, kFired, kCancelled };
  struct TimerEntry {
    std::string id;
    TimerState state;
  };
  // Signals of one name: all received so far, and how many the code took
  // (a taken payload is moved out: nothing reads it again).
  struct SignalBox {
    std::string name;
    std::vector<Payload> received;
    std::size_t taken = 0;
  };
  // A registered wait. The kinds are in the order DeliverCancel wakes them.
  enum class WaitKind : std::uint8_t { kTimer, kActivity, kChild, kSignal };
  struct WaitEntry {
    WaitKind kind;
    std::string key;  // timer id, activity id, child ref or signal name
    detail::Waiter* waiter;
  };
  struct ChildState {
    std::string workflow_id;
    std::optional<detail::ChildResolution> resolution;  // set once it ended or was cancelled
  };
  // What only some runs use (activities, children, side effects, patches,
  // queries), allocated on first use: a run parked on a timer or a signal
  // never pays for these maps (bench/README.md, memory per run).
  struct Rare {
    // Scheduled activities; a resolution once they ended (or were cancelled).
    std::map<std::string, std::optional<detail::ActivityResolution>> activities;
    std::map<std::string, ChildState> children;  // by child_ref
    std::map<std::string, Payload> recorded_side_effects;
    std::map<std::string, std::uint64_t, std::less<>> recorded_patches;  // id -> caused_by
    std::map<std::string, bool, std::less<>> patches;                    // answers given
    std::map<std::string, std::function<Json(const Json&)>> query_handlers;
    std::string long_run_id;  // see run_id_chars_
    std::uint64_t activity_counter = 0;
    std::uint64_t child_counter = 0;
    std::uint64_t side_effect_counter = 0;
  };
  struct PendingCommand {
    IssuedCommand command;
    bool handed_out = false;
  };

  Status ApplyInput(const HistoryEvent& event);
  Status ApplyTimerFired(const HistoryEvent& event);
  Status ResolveActivity(const HistoryEvent& event, const std::string& id,
                         detail::ActivityResolution resolution);
  Status ResolveChild(const HistoryEvent& event);
  void DeliverCancel();
  // Drops the not-yet-recorded command matching `is_it`: the writer found it
  // moot (its timer fired / activity ended first) and recorded nothing.
  template <typename Pred>
  void DropMootCommand(Pred is_it);
  Status StartRun(const HistoryEvent& event);
  Status MatchCommand(const HistoryEvent& event);
  void Issue(HistoryEvent command);
  void Wake(detail::Waiter* w, detail::Waiter::Woken how);
  // Wakes every waiter of (kind, key), in the order they registered.
  void WakeWaiters(WaitKind kind, const std::string& key, detail::Waiter::Woken how);
  void WakeSignalWaiters(const std::string& name);
  void RunUntilBlocked();
  void FinishIfDone();
  TimerEntry* FindTimer(std::string_view id);
  const TimerEntry* FindTimer(std::string_view id) const;
  SignalBox* FindSignals(std::string_view name);
  const SignalBox* FindSignals(std::string_view name) const;
  Rare& rare();  // allocates it on first use
  void SetRunId(std::string_view id);

  const std::string& workflow_id_;
  const WorkflowRegistry* registry_;
  // The run id, inline when it fits (the writer's have 32 characters; a
  // 32-character std::string would cost a heap block per run), otherwise in
  // rare_ (only hand-written histories have longer ones).
  static constexpr std::uint8_t kRunIdInRare = 0xff;
  std::array<char, 32> run_id_chars_{};
  std::uint64_t applied_seq_ = 0;
  std::uint64_t current_input_ = 0;  // seq of the input being applied
  Timestamp now_ = 0;
  std::uint64_t random_state_ = 0;
  std::uint64_t timer_counter_ = 0;
  std::uint64_t next_ordinal_ = 0;
  bool replaying_ = false;
  bool finished_ = false;           // terminal command issued
  bool terminal_recorded_ = false;  // terminal event applied
  bool cancel_requested_ = false;
  std::uint8_t run_id_size_ = 0;  // or kRunIdInRare

  // Flat vectors, not maps: a resident run usually has a timer or two and
  // one wait, and an empty std::map alone is 48 bytes. Lookups are linear
  // from the newest entry, which is what the code asks about most.
  std::vector<TimerEntry> timers_;
  std::vector<SignalBox> signals_;
  std::vector<WaitEntry> waiters_;  // in the order they registered
  std::unique_ptr<Rare> rare_;

  std::vector<PendingCommand> unmatched_;  // issued, not yet seen in history
  std::vector<std::coroutine_handle<>> ready_;

  Context context_{this};
  RootTask root_;  // after context_: its frame refers to it
};

}  // namespace aion
