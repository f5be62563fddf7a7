// Subjects: builds and parses the NATS subjects of the wire contract (DESIGN §5).
//
// An immutable value holding the prefix (default "aion", one or more tokens);
// safe to copy and to use from any thread. Build functions trust their
// arguments (callers validated them); Parse functions validate everything and
// return kInvalidArgument naming what is wrong.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "aion/engine/status.h"

namespace aion::bus {

// What an ingress message asks for: the last token of aion.wf/aion.in subjects.
// kChildResult ("child_result") is engine to engine: a child's end, sent to
// its parent.
enum class IngressKind {
  kStart,
  kSignal,
  kSignalWithStart,
  kCancel,
  kTerminate,
  kActivityResult,
  kChildResult,
};
// A request/reply operation: the last token of aion.req/aion.api subjects.
enum class ApiOp { kDescribe, kHistory, kQuery, kResult, kHeartbeat };

std::string_view IngressKindName(IngressKind kind);
Result<IngressKind> ParseIngressKind(std::string_view name);
std::string_view ApiOpName(ApiOp op);
Result<ApiOp> ParseApiOp(std::string_view name);

// Ok if `prefix` is one or more dot-separated tokens of [A-Za-z0-9_-].
Status ValidatePrefix(std::string_view prefix);

// aion.wf.<id>.<kind> (partition 0, unknown) or aion.in.<p>.<id>.<kind>.
struct IngressSubject {
  std::uint32_t partition = 0;
  std::string workflow_id;
  IngressKind kind = IngressKind::kStart;
};

// aion.req.<id>.<op> (partition 0, unknown) or aion.api.<p>.<id>.<op>.
struct ApiSubject {
  std::uint32_t partition = 0;
  std::string workflow_id;
  ApiOp op = ApiOp::kDescribe;
};

// aion.evt.<type>.<id>.<event>.
struct EventSubject {
  std::string workflow_type;
  std::string workflow_id;
  std::string event;
};

class Subjects {
 public:
  // `prefix` must pass ValidatePrefix.
  explicit Subjects(std::string prefix = "aion");

  const std::string& prefix() const { return prefix_; }

  std::string Workflow(std::string_view id, IngressKind kind) const;
  std::string Inbox(std::uint32_t partition, std::string_view id, IngressKind kind) const;
  // The inbox of `id` among `partitions` (PartitionOf): what the server's
  // aion.wf mapping would give, for publishers that know P.
  std::string InboxOf(std::string_view id, IngressKind kind, std::uint32_t partitions) const;
  std::string InboxAll() const;                            // <prefix>.in.>
  std::string InboxFilter(std::uint32_t partition) const;  // <prefix>.in.<p>.>
  std::string Event(std::string_view type, std::string_view id, std::string_view event) const;
  std::string EventsAll() const;  // <prefix>.evt.>
  std::string Request(std::string_view id, ApiOp op) const;
  std::string Api(std::uint32_t partition, std::string_view id, ApiOp op) const;
  std::string ApiFilter(std::uint32_t partition) const;  // <prefix>.api.<p>.*.*
  // Visibility, core NATS scatter/gather answered by every worker: <prefix>.api.list.
  std::string List() const;
  std::string Dlq(std::string_view kind) const;
  std::string DlqAll() const;  // <prefix>.dlq.>
  // Activity tasks of a queue: <prefix>.task.<queue> (stream AION_TASKS).
  std::string Task(std::string_view task_queue) const;
  std::string TasksAll() const;  // <prefix>.task.* (not the cancel notes)
  // Cancel notes of a queue, core NATS: <prefix>.task.<queue>.cancel.
  std::string TaskCancel(std::string_view task_queue) const;
  // Where activity workers send results: <prefix>.wf.<id>.activity_result.
  std::string ActivityResult(std::string_view id) const;
  // Where they send heartbeats (request/reply): <prefix>.req.<id>.heartbeat.
  std::string Heartbeat(std::string_view id) const;

  Result<IngressSubject> ParseWorkflow(std::string_view subject) const;
  Result<IngressSubject> ParseInbox(std::string_view subject) const;
  Result<ApiSubject> ParseRequest(std::string_view subject) const;
  Result<ApiSubject> ParseApi(std::string_view subject) const;
  Result<EventSubject> ParseEvent(std::string_view subject) const;
  // The queue of <prefix>.task.<queue>; kInvalidArgument for anything else.
  Result<std::string> ParseTask(std::string_view subject) const;

 private:
  std::string Join(std::string_view area, std::string_view rest) const;

  std::string prefix_;
};

}  // namespace aion::bus
