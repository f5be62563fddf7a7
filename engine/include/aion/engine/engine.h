// Engine: the transport-agnostic runtime of one worker (DESIGN §3).
//
// Owns the single writer thread (group commit), the executor threads that run
// workflow coroutines, the timer service and the outbox publisher. Ingress is
// handed over as decoded IngressMessages; their outcome is reported after the
// commit that recorded them (record before ack). Store, clock, registry and
// sink are borrowed and must outlive the Engine. All methods are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "aion/engine/activity.h"
#include "aion/engine/clock.h"
#include "aion/engine/outbox_sink.h"
#include "aion/engine/payload.h"
#include "aion/engine/registry.h"
#include "aion/engine/status.h"
#include "aion/engine/store.h"

namespace aion {

// One decoded, validated ingress message.
struct IngressMessage {
  enum class Kind {
    kStart,
    kSignal,
    kSignalWithStart,
    kActivityResult,
    kCancel,
    kTerminate,
    kChildResult,  // a child of this workflow closed (or its start was refused)
  };
  // What a start may do with an id whose last run is closed.
  enum class IdReusePolicy {
    kAllowDuplicate,            // start a new run (default)
    kAllowDuplicateFailedOnly,  // only if it did not complete (failed, cancelled, terminated, timed
                                // out)
    kRejectDuplicate,           // never: kAlreadyStarted
  };
  Kind kind = Kind::kStart;
  std::string workflow_id;
  // Identifies the message for deduplication across redeliveries and retries
  // ("" = none). The bus derives it from request_id or the JetStream message.
  std::string dedupe_key;
  std::string workflow_type;  // kStart, kSignalWithStart
  std::string signal_name;    // kSignal, kSignalWithStart
  Payload input;  // kStart, kSignal; kActivityResult: the result; kSignalWithStart: the start's
  Payload signal_input;                                            // kSignalWithStart
  IdReusePolicy id_reuse_policy = IdReusePolicy::kAllowDuplicate;  // kStart, kSignalWithStart
  std::string request_id;
  std::int64_t run_timeout_us = 0;  // kStart: 0 = none
  std::string reason;               // kCancel, kTerminate
  // kActivityResult: which attempt it answers, and its failure if it failed.
  std::string run_id;
  std::string activity_id;
  std::uint32_t attempt = 0;
  bool activity_failed = false;
  ActivityFailure failure;
  // kStart: the parent starting this run as its child. kCancel, kTerminate:
  // sent by this parent, so they apply only to a run it started (else
  // dropped). kChildResult: the addressee's run and the child's reference.
  history::ParentRef parent;
  history::ChildWorkflowClosed child_result;  // kChildResult
  // kStart: also answer here when the run closes (header Aion-Reply-When:
  // closed): the subject of the start's Aion-Reply-To, "" = no close reply.
  std::string close_reply_to;
  bool close_reply_json = false;  // that answer in JSON
};

// The ingress message a WorkflowMessageRow (an outbox row addressed to
// another workflow) delivers, with the dedupe key its request id gives.
IngressMessage IngressOfWorkflowMessage(const records::WorkflowMessageRow& row);

// The dedupe key of a message that carries a request id: "<kind>:<id>:<request_id>"
// (kind "start", "signal", ...), or "" when request_id is empty. Every ingress
// path builds it here so a retry is recognised whichever path it took.
std::string RequestDedupeKey(std::string_view kind, std::string_view workflow_id,
                             std::string_view request_id);

// What became of one IngressMessage. status is Ok, or the reason it was
// refused: kAlreadyStarted, kNotFound (signal to an unknown id), kNotRunning,
// kUnknownWorkflowType, kInvalidArgument; kUnavailable/kResourceExhausted mean
// nothing was committed and the message must not be acked.
struct IngressOutcome {
  Status status;
  bool duplicate = false;  // its dedupe key was already recorded; nothing new written
  std::string run_id;
  std::uint64_t seq = 0;  // the event it produced (0 if none)
  // Ok but nothing recorded: an activity result for an attempt that is no
  // longer running (timed out, superseded, cancelled, run closed), a cancel
  // request for a run already asked to cancel, a parent's cancel or
  // terminate for a run it did not start, a child result its parent no
  // longer waits for, or a child start refused (its parent is told).
  bool dropped = false;
};

using IngressCallback = std::function<void(std::vector<IngressOutcome>)>;

// How the engine restarts a run after a fault of its own (a store read or
// decode error while it runs the workflow): rebuild from replay after a
// backoff that doubles from `initial_backoff` up to `max_backoff`; more than
// `max_restarts` within `window` parks the run with the error visible until
// the worker restarts. Nondeterminism and missing code versions park at once.
struct SupervisionOptions {
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{10000};
  int max_restarts = 5;
  std::chrono::milliseconds window{60000};
};

struct EngineOptions {
  Store* store = nullptr;                      // required
  const WorkflowRegistry* registry = nullptr;  // required
  Clock* clock = &SystemClock::Get();
  // Where committed outbox rows go. Null (embedded use, tests): messages to
  // other workflows (child starts and results) are delivered to this engine
  // itself; other rows are deleted unpublished.
  OutboxSink* outbox = nullptr;
  std::uint32_t partition_count = 16;            // P of DESIGN §1, recorded per workflow
  int executor_threads = 2;                      // threads that run workflow code
  std::size_t max_batch_items = 4096;            // writer work items per group commit
  const ActivityRegistry* activities = nullptr;  // local activities; null = none
  int activity_threads = 4;                      // the bounded local activity pool
  // Idle runs kept in memory; beyond it the least recently used are evicted
  // and rebuilt by replay on their next input. 0 = no limit.
  std::size_t max_resident_runs = 100000;
  // Workflow records the writer keeps in memory (~600 B each); the others are
  // read from the store when an input arrives for them. 0 = no limit.
  std::size_t max_cached_records = 8192;
  SupervisionOptions supervision;
};

// A progress report of a running activity attempt (remote or local).
struct ActivityHeartbeat {
  std::string workflow_id;
  std::string run_id;
  std::string activity_id;
  std::uint32_t attempt = 0;
  Payload details;
};

// What `describe` shows.
struct Description {
  WorkflowRecord record;
  std::string parked_error;  // non-empty while the run is parked (e.g. nondeterminism)
  bool resident = false;     // held in memory as a live coroutine
};

// A visibility query: workflows by status, type and start-time range, read
// from the records (an index by status), never from histories.
struct ListRequest {
  // Statuses to list; empty = every status. A workflow's status is that of
  // its current run.
  std::vector<WorkflowStatus> statuses;
  std::string workflow_type;              // "" = any
  Timestamp started_after_us = 0;         // start_time_us >= this (0 = any)
  Timestamp started_before_us = 0;        // start_time_us < this (0 = any)
  std::vector<std::uint32_t> partitions;  // only these partitions; empty = all
  std::size_t limit = 100;                // at most this many per page (max 1000)
  std::string page_token;                 // "" = first page; else next_page_token
};

struct ListPage {
  std::vector<WorkflowRecord> workflows;
  std::string next_page_token;  // "" = no more
};

// The end of a run.
struct Outcome {
  WorkflowStatus status = WorkflowStatus::WORKFLOW_STATUS_UNSPECIFIED;
  std::string run_id;
  Payload output;       // completed
  std::string failure;  // failed: the message
};

class Engine {
 public:
  // Opens the engine and recovers: republishes the outbox, rebuilds open runs
  // by replay and fires timers that fell due while it was down.
  static Result<std::unique_ptr<Engine>> Open(EngineOptions options);
  virtual ~Engine() = default;

  // Stops taking work, finishes the commit in flight (its callbacks run) and
  // joins all threads. Idempotent; the destructor calls it.
  virtual void Shutdown() = 0;

  // Records a batch; `done` runs once, after the commit, on the writer thread,
  // with one outcome per message in order. Must not block for long.
  virtual void Submit(std::vector<IngressMessage> batch, IngressCallback done) = 0;

  // Blocking conveniences for embedded use.
  virtual IngressOutcome Start(std::string workflow_id, std::string workflow_type, Payload input,
                               std::string request_id = "") = 0;
  virtual IngressOutcome Signal(std::string workflow_id, std::string signal_name, Payload input,
                                std::string request_id = "") = 0;
  // Records one message of any kind and waits for its outcome.
  virtual IngressOutcome Send(IngressMessage message) = 0;

  // Records the heartbeat (details, and a new heartbeat deadline) and calls
  // `done` after the commit: Ok, or kNotFound when the attempt is no longer
  // running (cancelled, timed out, superseded, run closed): its worker
  // should stop. `done` runs on the writer thread.
  virtual void Heartbeat(ActivityHeartbeat heartbeat, std::function<void(Status)> done) = 0;

  // Asks the current run of `workflow_id` (made resident by replay if it is
  // not) the query `name`. Errors: kNotFound (no such workflow), kNotRunning
  // (the run has ended),
  // kUnknownQuery, kQueryTimeout (no answer within `timeout`), kUnavailable
  // (the run is parked; the message says why), kInvalidArgument (the handler
  // threw).
  virtual Result<Payload> Query(std::string_view workflow_id, std::string name, Payload args,
                                std::chrono::milliseconds timeout) = 0;

  virtual Result<Description> Describe(std::string_view workflow_id) = 0;
  // kInvalidArgument for a bad page token or limit.
  virtual Result<ListPage> List(const ListRequest& request) = 0;
  virtual Result<std::vector<HistoryEvent>> History(std::string_view workflow_id) = 0;

  // Calls `cb` once when the current run of `workflow_id` is terminal
  // (immediately if it already is; kNotFound if the id is unknown). Returns a
  // token for CancelOnClosed. `cb` may run on any engine thread.
  virtual std::uint64_t OnClosed(std::string_view workflow_id,
                                 std::function<void(Result<Outcome>)> cb) = 0;
  // After it returns, the callback of `token` will not run (if not already).
  virtual void CancelOnClosed(std::uint64_t token) = 0;
  // Blocks until the run is terminal or `timeout` (kDeadlineExceeded) passes.
  virtual Result<Outcome> AwaitResult(std::string_view workflow_id,
                                      std::chrono::milliseconds timeout) = 0;

  // For test kits that skip time (aion::testing): true when, at one moment
  // during the call, nothing ran or waited to run: no ingress, command,
  // timer fire or heartbeat queued or being committed, no run queued or
  // executing, no local activity attempt queued or running, no timer row due
  // at the clock's Now() and no outbox row left. While nobody submits and the
  // clock stands still, it then stays true. An Engine that cannot tell (a
  // test double) never claims to be idle.
  virtual bool Idle() { return false; }
};

}  // namespace aion
