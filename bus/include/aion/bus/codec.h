// Codec: turns wire bytes into engine values and engine values into wire bytes
// (DESIGN §5). Protobuf binary by default; the protobuf JSON mapping when the
// message carries `Content-Type: application/json`.
//
// Codec is immutable after construction and may be used from any thread. It
// never throws on bad input: every malformed message is a kInvalidArgument
// Status whose message says what is wrong.
#pragma once

#include <google/protobuf/message.h>
#include <google/protobuf/struct.pb.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "aion/bus/subjects.h"
#include "aion/engine/engine.h"
#include "aion/engine/payload.h"
#include "aion/engine/status.h"
#include "aion/engine/store.h"
#include "aion/wire.pb.h"

namespace aion::bus {

using Headers = std::map<std::string, std::string, std::less<>>;

inline constexpr std::string_view kContentTypeHeader = "Content-Type";
inline constexpr std::string_view kJsonContentType = "application/json";
inline constexpr std::string_view kReplyToHeader = "Aion-Reply-To";
inline constexpr std::string_view kMsgIdHeader = "Nats-Msg-Id";
inline constexpr std::size_t kMaxMsgIdBytes = 256;
// Longest reason of a cancel or terminate request.
inline constexpr std::size_t kMaxReasonBytes = 4096;
// Longest run_id / activity_id in an activity result or heartbeat.
inline constexpr std::size_t kMaxActivityIdBytes = 256;
// Longest run_id / child_ref of a parent reference (ParentRef), and run_id
// of a child's result.
inline constexpr std::size_t kMaxParentRefBytes = 256;
// Longest failure message / type in an activity result (and failure of a
// child's result).
inline constexpr std::size_t kMaxFailureMessageBytes = 32 * 1024;
inline constexpr std::size_t kMaxFailureTypeBytes = 256;
// Longest run timeout a start may ask for (100 years).
inline constexpr std::int64_t kMaxRunTimeoutMs = std::int64_t{100} * 365 * 24 * 3600 * 1000;
// Longest page token a list request may carry.
inline constexpr std::size_t kMaxPageTokenBytes = 1024;
// Most workflows one worker lists per reply (Engine::List's cap).
inline constexpr std::uint32_t kMaxListLimit = 1000;
inline constexpr std::uint32_t kDefaultListLimit = 100;

// A message as it came off the wire, free of NATS types so it can be tested
// and logged on its own.
struct WireMessage {
  std::string subject;
  Headers headers;
  std::string data;
};

// The value of header `name` (matched case-insensitively), or "" if absent.
std::string_view HeaderValue(const Headers& headers, std::string_view name);
// True for `Content-Type: application/json` (parameters such as charset ignored).
bool IsJson(const Headers& headers);

// A decoded query request (aion.req.<id>.query).
struct QueryCall {
  std::string workflow_id;
  std::string name;
  Payload args;                  // JSON null when absent
  std::uint32_t timeout_ms = 0;  // as sent; 0 = the server's default
};

struct CodecOptions {
  std::size_t max_payload_bytes = std::size_t{1} << 20;  // message body and decoded input
  // Nesting of objects/arrays in a JSON body. protobuf's binary form of a
  // google.protobuf.Value allows about 48 levels anyway (recursion limit 100).
  std::size_t max_json_depth = 40;
  std::uint32_t partitions = 16;  // P: checks aion.in.<p> subjects
};

class Codec {
 public:
  explicit Codec(Subjects subjects = Subjects(), CodecOptions options = {});

  // Decodes a message received on <prefix>.in.<p>.<id>.<kind> into a validated
  // IngressMessage with its dedupe key (see DedupeKey). `stream_seq` and
  // `stream_epoch` identify the JetStream message for the fallback key.
  Result<IngressMessage> DecodeIngress(const WireMessage& msg, std::uint64_t stream_seq = 0,
                                       std::string_view stream_epoch = "") const;

  // Decodes a request body (DescribeRequest, HistoryRequest, ResultRequest)
  // into `out`; an empty body leaves `out` at its defaults.
  Status DecodeRequest(const WireMessage& msg, google::protobuf::Message* out) const;

  // Decodes and validates a HeartbeatRequest body for `workflow_id` (the id
  // token of the aion.api subject it came on).
  Result<ActivityHeartbeat> DecodeHeartbeat(const WireMessage& msg,
                                            std::string_view workflow_id) const;

  // Decodes and validates a QueryRequest body for `workflow_id`. The timeout
  // is left as sent (0 = the server's default); the server caps it.
  Result<QueryCall> DecodeQuery(const WireMessage& msg, std::string_view workflow_id) const;

  // Decodes and validates a ListRequest body (status names as describe
  // shows them, case-insensitive; limit 0 = 100, at most 1000) into the
  // engine's request. `partitions` is left empty for the server to fill.
  Result<ListRequest> DecodeList(const WireMessage& msg) const;

  // The <kind> of aion.dlq.<kind> for a rejected message: the kind token of its
  // subject if that is a known ingress kind, else "unknown".
  std::string DlqKind(std::string_view subject) const;

  const Subjects& subjects() const { return subjects_; }
  const CodecOptions& options() const { return options_; }

 private:
  Status ParseBody(const WireMessage& msg, google::protobuf::Message* out) const;
  Result<IngressMessage> DecodeStart(const WireMessage& msg) const;
  Result<IngressMessage> DecodeSignal(const WireMessage& msg) const;
  Result<IngressMessage> DecodeSignalWithStart(const WireMessage& msg) const;
  Result<IngressMessage> DecodeCancel(const WireMessage& msg, IngressKind kind) const;
  Result<IngressMessage> DecodeActivityResult(const WireMessage& msg) const;
  Result<IngressMessage> DecodeChildResult(const WireMessage& msg,
                                           std::string_view workflow_id) const;
  Result<Payload> InputPayload(const google::protobuf::Value& input) const;

  Subjects subjects_;
  CodecOptions options_;
};

// "<kind>:<id>:<request_id>" when request_id is set, else "msgid:<Nats-Msg-Id>"
// when that header is set, else "seq:<epoch>:<stream_seq>" ("seq:<stream_seq>"
// without an epoch), so a redelivery of the same stream message is recognised.
std::string DedupeKey(IngressKind kind, std::string_view workflow_id, std::string_view request_id,
                      const Headers& headers, std::uint64_t stream_seq,
                      std::string_view stream_epoch);

// Binary protobuf, or the JSON mapping (snake_case field names) if `json`.
// `all_fields`: print fields at their default values too (JSON only).
std::string EncodeMessage(const google::protobuf::Message& message, bool json,
                          bool all_fields = false);

// `text` with every byte that is not part of valid UTF-8 replaced by U+FFFD:
// protobuf string fields must be UTF-8, and error text may quote bad input.
std::string SanitizeUtf8(std::string_view text);

// The error for the wire; its message is sanitized (SanitizeUtf8).
wire::Error ErrorFromStatus(const Status& status);
wire::IngressReply MakeIngressReply(std::string_view workflow_id, const IngressOutcome& outcome);
wire::DescribeReply MakeDescribeReply(const Description& description);
// The result of a closed run, or the error of the wait.
wire::ResultReply MakeResultReply(const Result<Outcome>& outcome);
// The answer of a query, or its error.
wire::QueryReply MakeQueryReply(const Result<Payload>& result);
// One row of `list`.
wire::WorkflowSummary MakeWorkflowSummary(const WorkflowRecord& record);
// One worker's page of `list`, naming the partitions it answered for and
// this build's aion::Version().
wire::ListReply MakeListReply(const ListPage& page, const std::vector<std::uint32_t>& partitions);
// The record status for a wire name ("running", "timed_out", ...; any case);
// kInvalidArgument naming the valid ones otherwise.
Result<WorkflowStatus> ParseWorkflowStatus(std::string_view name);
// The answer to a heartbeat from what Engine::Heartbeat reported: Ok ->
// keep going; kNotFound -> cancel_requested (the attempt is no longer
// running); anything else -> that error.
wire::HeartbeatReply MakeHeartbeatReply(const Status& engine_status);

// A lifecycle event and the subject it is published on.
struct LifecycleMessage {
  std::string subject;
  wire::LifecycleEvent event;
};
// kInvalidArgument if `row` is not a KIND_LIFECYCLE row about a start or an end.
Result<LifecycleMessage> LifecycleFromRow(const OutboxRow& row, const Subjects& subjects);

// An activity task and where it goes: subject <prefix>.task.<queue>,
// Nats-Msg-Id <workflow_id>:<run_id>:<activity_id>:<attempt>.
struct TaskMessage {
  std::string subject;
  std::string msg_id;
  wire::ActivityTask task;
};
// kInvalidArgument if `row` is not a KIND_ACTIVITY_TASK row with a valid
// task queue, activity id and attempt.
Result<TaskMessage> ActivityTaskFromRow(const OutboxRow& row, const Subjects& subjects);

// A cancel note and its subject <prefix>.task.<queue>.cancel.
struct TaskCancelMessage {
  std::string subject;
  wire::ActivityCancel cancel;
};
// kInvalidArgument if `row` is not a valid KIND_ACTIVITY_CANCEL row.
Result<TaskCancelMessage> ActivityCancelFromRow(const OutboxRow& row, const Subjects& subjects);

// A message from one workflow to another (a KIND_WORKFLOW_MESSAGE outbox
// row) as it goes on the wire: binary protobuf `data` (StartWorkflow,
// CancelWorkflow, TerminateWorkflow or ChildWorkflowResult) for the inbox of
// `workflow_id` (the addressee) with ingress kind `kind`, published with
// Nats-Msg-Id `msg_id` (the row's key).
struct WorkflowMessage {
  IngressKind kind = IngressKind::kStart;
  std::string workflow_id;
  std::string msg_id;
  std::string data;
};
// kInvalidArgument (naming the row's key) if `row` is not a
// KIND_WORKFLOW_MESSAGE row the addressee's codec would accept: a known
// message kind, a valid addressee, request_id and parent, a key usable as
// Nats-Msg-Id; a start's workflow type; a child result that matches its
// parent. A start's input goes as a google.protobuf.Value (ValueFromPayload)
// and its run timeout in whole milliseconds, rounded up; reasons and failure
// messages are cut to the limits the decoder enforces, at a UTF-8 boundary.
Result<WorkflowMessage> WorkflowMessageFromRow(const OutboxRow& row);

// "<workflow_id>:<run_id>:<activity_id>:<attempt>" (DESIGN §5).
std::string ActivityTaskMsgId(std::string_view workflow_id, std::string_view run_id,
                              std::string_view activity_id, std::uint32_t attempt);

// google.protobuf.Value <-> JSON. Whole numbers within ±2^53 come back as
// integers; other numbers are doubles (the Value type holds only doubles).
Json JsonFromValue(const google::protobuf::Value& value);
void ValueFromJson(const Json& json, google::protobuf::Value* out);
// The payload as a Value: its JSON if it is JSON, else {"base64": "..."}.
google::protobuf::Value ValueFromPayload(const Payload& payload);

}  // namespace aion::bus
