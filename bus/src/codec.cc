#include "aion/bus/codec.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <utility>

#include "aion/bus/reply_when.h"
#include "aion/engine/history.h"
#include "aion/engine/ids.h"
#include "aion/engine/outbox_sink.h"
#include "aion/engine/version.h"

namespace aion::bus {
namespace {

namespace pb = google::protobuf;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

Status TooLarge(std::string_view what, std::size_t size, std::size_t limit) {
  return InvalidArgument(std::string(what) + " of " + std::to_string(size) +
                         " bytes exceeds the limit of " + std::to_string(limit) + " bytes");
}

// Longest parser message quoted in an error: it may echo the whole input.
constexpr std::size_t kMaxParserMessage = 300;

// The length of the valid UTF-8 sequence starting at s[i], or 0.
std::size_t Utf8Length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const auto cont = [&](std::size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if ((c == 0xE0 && b(1) < 0xA0) || (c == 0xED && b(1) > 0x9F)) return 0;  // overlong, surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if ((c == 0xF0 && b(1) < 0x90) || (c == 0xF4 && b(1) > 0x8F)) return 0;  // overlong, > U+10FFFF
    return 4;
  }
  return 0;
}

constexpr double kMaxSafeInteger = 9007199254740992.0;  // 2^53

// Ids an activity worker echoes back (run_id, activity_id): 1..max bytes of
// printable ASCII without spaces.
Status CheckToken(std::string_view what, std::string_view value, std::size_t max) {
  if (value.empty()) return InvalidArgument(std::string(what) + " is empty");
  if (value.size() > max) {
    return InvalidArgument(std::string(what) + " is " + std::to_string(value.size()) +
                           " bytes; at most " + std::to_string(max) + " are allowed");
  }
  for (char c : value) {
    if (c <= 0x20 || c >= 0x7f) {
      return InvalidArgument(
          std::string(what) +
          " contains an invalid character (printable ASCII without spaces only)");
    }
  }
  return Status::Ok();
}

Status CheckLength(std::string_view what, std::string_view value, std::size_t max) {
  if (value.size() > max) {
    return InvalidArgument(std::string(what) + " is " + std::to_string(value.size()) +
                           " bytes; at most " + std::to_string(max) + " are allowed");
  }
  return Status::Ok();
}

Status CheckAttempt(std::uint32_t attempt) {
  if (attempt == 0) return InvalidArgument("attempt must be at least 1 (attempts count from 1)");
  return Status::Ok();
}

Status CheckUtf8(std::string_view what, std::string_view value) {
  if (SanitizeUtf8(value) == value) return Status::Ok();
  return InvalidArgument(std::string(what) + " is not valid UTF-8");
}

// Bounded text that protobuf can carry (valid UTF-8).
Status CheckText(std::string_view what, std::string_view value, std::size_t max) {
  AION_RETURN_IF_ERROR(CheckLength(what, value, max));
  return CheckUtf8(what, value);
}

Status CheckRequiredText(std::string_view what, std::string_view value, std::size_t max) {
  if (value.empty()) return InvalidArgument(std::string(what) + " is empty");
  return CheckText(what, value, max);
}

// `text` as valid UTF-8, cut to at most `max` bytes at a character boundary,
// so the decoder's limit holds after the cut.
std::string Utf8Prefix(std::string_view text, std::size_t max) {
  std::string clean = SanitizeUtf8(text);
  if (clean.size() <= max) return clean;
  std::size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(clean[end]) & 0xC0) == 0x80) --end;
  clean.resize(end);
  return clean;
}

// A parent's start, cancel or terminate, and a child's result, name the
// parent's run and the child's reference in it: all three are required.
Status CheckParentRef(const history::ParentRef& parent) {
  AION_RETURN_IF_ERROR(ValidateName("parent.workflow_id", parent.workflow_id()));
  AION_RETURN_IF_ERROR(CheckRequiredText("parent.run_id", parent.run_id(), kMaxParentRefBytes));
  return CheckRequiredText("parent.child_ref", parent.child_ref(), kMaxParentRefBytes);
}

// Binary protobuf keeps enum numbers it does not know: refuse them.
Status CheckChildStatus(int status) {
  if (status != history::CHILD_STATUS_UNSPECIFIED && history::ChildStatus_IsValid(status)) {
    return Status::Ok();
  }
  return InvalidArgument("result.status " + std::to_string(status) +
                         " is unknown (CHILD_STATUS_COMPLETED = 1 ... "
                         "CHILD_STATUS_START_FAILED = 6)");
}

// A child's result for the workflow `addressee`: it must report to that
// workflow's run, about the child the parent reference names.
Status CheckChildResult(std::string_view addressee, const wire::ChildWorkflowResult& m) {
  if (!m.has_parent()) {
    return InvalidArgument("child_result has no parent (the run and child_ref it reports to)");
  }
  AION_RETURN_IF_ERROR(CheckParentRef(m.parent()));
  if (m.parent().workflow_id() != addressee) {
    return InvalidArgument("child_result for '" + std::string(addressee) +
                           "' names parent.workflow_id '" + m.parent().workflow_id() + "'");
  }
  if (!m.has_result()) return InvalidArgument("child_result has no result");
  const history::ChildWorkflowClosed& r = m.result();
  if (r.child_ref() != m.parent().child_ref()) {
    return InvalidArgument("result.child_ref '" + Utf8Prefix(r.child_ref(), 64) +
                           "' differs from parent.child_ref '" +
                           Utf8Prefix(m.parent().child_ref(), 64) + "'");
  }
  AION_RETURN_IF_ERROR(ValidateName("result.workflow_id", r.workflow_id()));
  AION_RETURN_IF_ERROR(CheckText("result.run_id", r.run_id(), kMaxParentRefBytes));
  AION_RETURN_IF_ERROR(CheckChildStatus(r.status()));
  return CheckText("result.failure", r.failure(), kMaxFailureMessageBytes);
}

// Optional in a start, cancel or terminate; checked in full when present.
Status TakeParent(bool has_parent, const history::ParentRef& parent, IngressMessage* out) {
  if (!has_parent) return Status::Ok();
  AION_RETURN_IF_ERROR(CheckParentRef(parent));
  out->parent = parent;
  return Status::Ok();
}

// Microseconds to whole milliseconds, rounded up so a set timeout stays set.
std::int64_t CeilMs(std::int64_t us) { return us <= 0 ? 0 : us / 1000 + (us % 1000 != 0); }

Json JsonFromNumber(double d) {
  if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) <= kMaxSafeInteger) {
    return Json(static_cast<std::int64_t>(d));
  }
  return Json(d);  // NaN and infinities dump as null
}

// Binary protobuf keeps enum numbers it does not know: refuse them.
Result<IngressMessage::IdReusePolicy> ReusePolicyFromWire(int policy) {
  switch (policy) {
    case wire::ID_REUSE_POLICY_ALLOW_DUPLICATE:
      return IngressMessage::IdReusePolicy::kAllowDuplicate;
    case wire::ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY:
      return IngressMessage::IdReusePolicy::kAllowDuplicateFailedOnly;
    case wire::ID_REUSE_POLICY_REJECT_DUPLICATE:
      return IngressMessage::IdReusePolicy::kRejectDuplicate;
    default:
      return InvalidArgument("id_reuse_policy " + std::to_string(policy) +
                             " is unknown (ID_REUSE_POLICY_ALLOW_DUPLICATE = 0, "
                             "ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY = 1, "
                             "ID_REUSE_POLICY_REJECT_DUPLICATE = 2)");
  }
}

Result<std::int64_t> RunTimeoutUs(std::int64_t run_timeout_ms) {
  if (run_timeout_ms < 0 || run_timeout_ms > kMaxRunTimeoutMs) {
    return InvalidArgument("run_timeout_ms " + std::to_string(run_timeout_ms) +
                           " is out of range (0 = none, at most " +
                           std::to_string(kMaxRunTimeoutMs) + ", 100 years)");
  }
  return run_timeout_ms * 1000;
}

}  // namespace

std::string_view HeaderValue(const Headers& headers, std::string_view name) {
  auto exact = headers.find(name);
  if (exact != headers.end()) return exact->second;
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return {};
}

bool IsJson(const Headers& headers) {
  std::string_view type = HeaderValue(headers, kContentTypeHeader);
  type = Trim(type.substr(0, type.find(';')));
  return EqualsIgnoreCase(type, kJsonContentType);
}

namespace {
// The deepest nesting of objects and arrays in JSON text, not counting
// brackets inside strings. Linear; needs no valid JSON.
std::size_t JsonNestingDepth(std::string_view text) {
  std::size_t depth = 0;
  std::size_t deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // skip the escaped character
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}
}  // namespace

Codec::Codec(Subjects subjects, CodecOptions options)
    : subjects_(std::move(subjects)), options_(options) {}

Status Codec::ParseBody(const WireMessage& msg, pb::Message* out) const {
  const std::string type = out->GetDescriptor()->name();
  if (msg.data.size() > options_.max_payload_bytes) {
    return TooLarge("message body", msg.data.size(), options_.max_payload_bytes);
  }
  if (IsJson(msg.headers)) {
    // protobuf's JSON parser is quadratic in nesting depth: refuse deep bodies
    // before parsing so one message cannot stall its partition.
    if (const std::size_t depth = JsonNestingDepth(msg.data); depth > options_.max_json_depth) {
      return InvalidArgument("body nests JSON " + std::to_string(depth) + " levels deep; at most " +
                             std::to_string(options_.max_json_depth) + " are allowed");
    }
    pb::util::JsonParseOptions opts;
    opts.ignore_unknown_fields = false;
    auto status = pb::util::JsonStringToMessage(msg.data, out, opts);
    if (!status.ok()) {
      std::string why = status.ToString();
      if (why.size() > kMaxParserMessage) why = why.substr(0, kMaxParserMessage) + "...";
      return InvalidArgument("body is not valid " + type + " JSON: " + SanitizeUtf8(why));
    }
    return Status::Ok();
  }
  if (!out->ParseFromString(msg.data)) {
    return InvalidArgument("body is not a valid " + type +
                           " protobuf (set header Content-Type: application/json for JSON)");
  }
  return Status::Ok();
}

Status Codec::DecodeRequest(const WireMessage& msg, pb::Message* out) const {
  out->Clear();
  if (msg.data.empty()) return Status::Ok();
  return ParseBody(msg, out);
}

Result<Payload> Codec::InputPayload(const pb::Value& input) const {
  Payload payload = JsonPayload(JsonFromValue(input));
  if (payload.data().size() > options_.max_payload_bytes) {
    return TooLarge("input", payload.data().size(), options_.max_payload_bytes);
  }
  return payload;
}

Result<IngressMessage> Codec::DecodeStart(const WireMessage& msg) const {
  wire::StartWorkflow start;
  AION_RETURN_IF_ERROR(ParseBody(msg, &start));
  AION_RETURN_IF_ERROR(ValidateName("workflow_type", start.workflow_type()));
  IngressMessage out;
  out.kind = IngressMessage::Kind::kStart;
  out.workflow_type = start.workflow_type();
  out.request_id = start.request_id();
  auto run_timeout = RunTimeoutUs(start.run_timeout_ms());
  if (!run_timeout.ok()) return run_timeout.status();
  out.run_timeout_us = *run_timeout;
  auto policy = ReusePolicyFromWire(start.id_reuse_policy());
  if (!policy.ok()) return policy.status();
  out.id_reuse_policy = *policy;
  auto input = InputPayload(start.input());
  if (!input.ok()) return input.status();
  out.input = std::move(*input);
  AION_RETURN_IF_ERROR(TakeParent(start.has_parent(), start.parent(), &out));
  return out;
}

Result<IngressMessage> Codec::DecodeSignalWithStart(const WireMessage& msg) const {
  wire::SignalWithStartWorkflow sws;
  AION_RETURN_IF_ERROR(ParseBody(msg, &sws));
  AION_RETURN_IF_ERROR(ValidateName("workflow_type", sws.workflow_type()));
  AION_RETURN_IF_ERROR(ValidateName("signal_name", sws.signal_name()));
  IngressMessage out;
  out.kind = IngressMessage::Kind::kSignalWithStart;
  out.workflow_type = sws.workflow_type();
  out.signal_name = sws.signal_name();
  out.request_id = sws.request_id();
  auto run_timeout = RunTimeoutUs(sws.run_timeout_ms());
  if (!run_timeout.ok()) return run_timeout.status();
  out.run_timeout_us = *run_timeout;
  auto policy = ReusePolicyFromWire(sws.id_reuse_policy());
  if (!policy.ok()) return policy.status();
  out.id_reuse_policy = *policy;
  auto input = InputPayload(sws.input());
  if (!input.ok()) return input.status();
  out.input = std::move(*input);
  auto signal_input = InputPayload(sws.signal_input());
  if (!signal_input.ok()) return signal_input.status();
  // Start input and signal input share the body's limit.
  if (out.input.data().size() + signal_input->data().size() > options_.max_payload_bytes) {
    return TooLarge("input and signal_input", out.input.data().size() + signal_input->data().size(),
                    options_.max_payload_bytes);
  }
  out.signal_input = std::move(*signal_input);
  return out;
}

Result<IngressMessage> Codec::DecodeSignal(const WireMessage& msg) const {
  wire::SignalWorkflow signal;
  AION_RETURN_IF_ERROR(ParseBody(msg, &signal));
  AION_RETURN_IF_ERROR(ValidateName("signal name", signal.name()));
  IngressMessage out;
  out.kind = IngressMessage::Kind::kSignal;
  out.signal_name = signal.name();
  out.request_id = signal.request_id();
  auto input = InputPayload(signal.input());
  if (!input.ok()) return input.status();
  out.input = std::move(*input);
  return out;
}

Result<IngressMessage> Codec::DecodeCancel(const WireMessage& msg, IngressKind kind) const {
  IngressMessage out;
  if (kind == IngressKind::kCancel) {
    wire::CancelWorkflow cancel;
    AION_RETURN_IF_ERROR(ParseBody(msg, &cancel));
    out.kind = IngressMessage::Kind::kCancel;
    out.reason = cancel.reason();
    out.request_id = cancel.request_id();
    AION_RETURN_IF_ERROR(TakeParent(cancel.has_parent(), cancel.parent(), &out));
  } else {
    wire::TerminateWorkflow terminate;
    AION_RETURN_IF_ERROR(ParseBody(msg, &terminate));
    out.kind = IngressMessage::Kind::kTerminate;
    out.reason = terminate.reason();
    out.request_id = terminate.request_id();
    AION_RETURN_IF_ERROR(TakeParent(terminate.has_parent(), terminate.parent(), &out));
  }
  AION_RETURN_IF_ERROR(CheckLength("reason", out.reason, kMaxReasonBytes));
  return out;
}

Result<IngressMessage> Codec::DecodeChildResult(const WireMessage& msg,
                                                std::string_view workflow_id) const {
  wire::ChildWorkflowResult result;
  AION_RETURN_IF_ERROR(ParseBody(msg, &result));
  AION_RETURN_IF_ERROR(CheckChildResult(workflow_id, result));
  IngressMessage out;
  out.kind = IngressMessage::Kind::kChildResult;
  out.request_id = result.request_id();
  out.parent = result.parent();
  out.child_result = result.result();
  return out;
}

Result<IngressMessage> Codec::DecodeActivityResult(const WireMessage& msg) const {
  wire::ActivityResult result;
  AION_RETURN_IF_ERROR(ParseBody(msg, &result));
  AION_RETURN_IF_ERROR(CheckToken("run_id", result.run_id(), kMaxActivityIdBytes));
  AION_RETURN_IF_ERROR(CheckToken("activity_id", result.activity_id(), kMaxActivityIdBytes));
  AION_RETURN_IF_ERROR(CheckAttempt(result.attempt()));
  IngressMessage out;
  out.kind = IngressMessage::Kind::kActivityResult;
  out.run_id = result.run_id();
  out.activity_id = result.activity_id();
  out.attempt = result.attempt();
  out.request_id = result.request_id();
  if (result.has_failure()) {
    if (result.has_output()) {
      return InvalidArgument("an activity result carries either output or failure, not both");
    }
    const wire::ActivityError& f = result.failure();
    AION_RETURN_IF_ERROR(CheckLength("failure.message", f.message(), kMaxFailureMessageBytes));
    AION_RETURN_IF_ERROR(CheckLength("failure.type", f.type(), kMaxFailureTypeBytes));
    out.activity_failed = true;
    out.failure.set_message(f.message());
    out.failure.set_error_type(f.type());
    out.failure.set_non_retryable(f.non_retryable());
    return out;
  }
  auto output = InputPayload(result.output());
  if (!output.ok()) return output.status();
  out.input = std::move(*output);
  return out;
}

Result<ActivityHeartbeat> Codec::DecodeHeartbeat(const WireMessage& msg,
                                                 std::string_view workflow_id) const {
  AION_RETURN_IF_ERROR(ValidateWorkflowId(workflow_id));
  wire::HeartbeatRequest request;
  AION_RETURN_IF_ERROR(DecodeRequest(msg, &request));
  AION_RETURN_IF_ERROR(CheckToken("run_id", request.run_id(), kMaxActivityIdBytes));
  AION_RETURN_IF_ERROR(CheckToken("activity_id", request.activity_id(), kMaxActivityIdBytes));
  AION_RETURN_IF_ERROR(CheckAttempt(request.attempt()));
  ActivityHeartbeat out;
  out.workflow_id = std::string(workflow_id);
  out.run_id = request.run_id();
  out.activity_id = request.activity_id();
  out.attempt = request.attempt();
  if (request.has_details()) {
    auto details = InputPayload(request.details());
    if (!details.ok()) return details.status();
    out.details = std::move(*details);
  }
  return out;
}

Result<QueryCall> Codec::DecodeQuery(const WireMessage& msg, std::string_view workflow_id) const {
  AION_RETURN_IF_ERROR(ValidateWorkflowId(workflow_id));
  wire::QueryRequest request;
  AION_RETURN_IF_ERROR(DecodeRequest(msg, &request));
  AION_RETURN_IF_ERROR(ValidateName("query name", request.name()));
  QueryCall out;
  out.workflow_id = std::string(workflow_id);
  out.name = request.name();
  out.timeout_ms = request.timeout_ms();
  auto args = InputPayload(request.args());
  if (!args.ok()) return args.status();
  out.args = std::move(*args);
  return out;
}

Result<ListRequest> Codec::DecodeList(const WireMessage& msg) const {
  wire::ListRequest request;
  AION_RETURN_IF_ERROR(DecodeRequest(msg, &request));
  ListRequest out;
  for (const std::string& name : request.statuses()) {
    auto status = ParseWorkflowStatus(name);
    if (!status.ok()) return status.status();
    if (std::find(out.statuses.begin(), out.statuses.end(), *status) == out.statuses.end()) {
      out.statuses.push_back(*status);
    }
  }
  if (!request.workflow_type().empty()) {
    AION_RETURN_IF_ERROR(ValidateName("workflow_type", request.workflow_type()));
  }
  out.workflow_type = request.workflow_type();
  if (request.started_after_us() < 0 || request.started_before_us() < 0) {
    return InvalidArgument("started_after_us and started_before_us must not be negative");
  }
  if (request.started_before_us() != 0 &&
      request.started_before_us() <= request.started_after_us()) {
    return InvalidArgument("started_before_us " + std::to_string(request.started_before_us()) +
                           " is not after started_after_us " +
                           std::to_string(request.started_after_us()));
  }
  out.started_after_us = request.started_after_us();
  out.started_before_us = request.started_before_us();
  if (request.limit() > kMaxListLimit) {
    return InvalidArgument("limit " + std::to_string(request.limit()) +
                           " is above the maximum of " + std::to_string(kMaxListLimit));
  }
  out.limit = request.limit() == 0 ? kDefaultListLimit : request.limit();
  AION_RETURN_IF_ERROR(CheckLength("page_token", request.page_token(), kMaxPageTokenBytes));
  out.page_token = request.page_token();
  return out;
}

Result<IngressMessage> Codec::DecodeIngress(const WireMessage& msg, std::uint64_t stream_seq,
                                            std::string_view stream_epoch) const {
  auto subject = subjects_.ParseInbox(msg.subject);
  if (!subject.ok()) return subject.status();
  const std::uint32_t owner = PartitionOf(subject->workflow_id, options_.partitions);
  if (subject->partition != owner) {
    return InvalidArgument("workflow id '" + subject->workflow_id + "' belongs to partition " +
                           std::to_string(owner) + ", not " + std::to_string(subject->partition));
  }
  Result<IngressMessage> decoded = Status::Ok();
  switch (subject->kind) {
    case IngressKind::kStart:
      decoded = DecodeStart(msg);
      break;
    case IngressKind::kSignal:
      decoded = DecodeSignal(msg);
      break;
    case IngressKind::kSignalWithStart:
      decoded = DecodeSignalWithStart(msg);
      break;
    case IngressKind::kCancel:
    case IngressKind::kTerminate:
      decoded = DecodeCancel(msg, subject->kind);
      break;
    case IngressKind::kActivityResult:
      decoded = DecodeActivityResult(msg);
      break;
    case IngressKind::kChildResult:
      decoded = DecodeChildResult(msg, subject->workflow_id);
      break;
    default:
      return InvalidArgument("ingress kind '" + std::string(IngressKindName(subject->kind)) +
                             "' is not supported yet");
  }
  if (!decoded.ok()) return decoded.status();
  if (!decoded->request_id.empty()) {
    AION_RETURN_IF_ERROR(ValidateName("request_id", decoded->request_id));
  }
  // Dedupe keys must fit the store's keys (LMDB: 511 bytes).
  if (const auto msg_id = HeaderValue(msg.headers, kMsgIdHeader); msg_id.size() > kMaxMsgIdBytes) {
    return InvalidArgument("header Nats-Msg-Id is " + std::to_string(msg_id.size()) +
                           " bytes; at most " + std::to_string(kMaxMsgIdBytes) + " are allowed");
  }
  auto when = ParseReplyWhen(msg.headers, subject->kind, subjects_.prefix());
  if (!when.ok()) return when.status();
  if (*when == ReplyWhen::kClosed) {
    decoded->close_reply_to = std::string(HeaderValue(msg.headers, kReplyToHeader));
    decoded->close_reply_json = IsJson(msg.headers);
  }
  decoded->workflow_id = subject->workflow_id;
  decoded->dedupe_key = DedupeKey(subject->kind, subject->workflow_id, decoded->request_id,
                                  msg.headers, stream_seq, stream_epoch);
  return decoded;
}

std::string Codec::DlqKind(std::string_view subject) const {
  std::string_view last = subject.substr(subject.rfind('.') + 1);
  return ParseIngressKind(last).ok() ? std::string(last) : "unknown";
}

std::string DedupeKey(IngressKind kind, std::string_view workflow_id, std::string_view request_id,
                      const Headers& headers, std::uint64_t stream_seq,
                      std::string_view stream_epoch) {
  if (!request_id.empty()) return RequestDedupeKey(IngressKindName(kind), workflow_id, request_id);
  std::string_view msg_id = HeaderValue(headers, kMsgIdHeader);
  if (!msg_id.empty()) {
    // Scoped to the kind and workflow: one client's id cannot shadow another's.
    return "msgid:" + std::string(IngressKindName(kind)) + ":" + std::string(workflow_id) + ":" +
           std::string(msg_id);
  }
  if (stream_epoch.empty()) return "seq:" + std::to_string(stream_seq);
  return "seq:" + std::string(stream_epoch) + ":" + std::to_string(stream_seq);
}

std::string EncodeMessage(const pb::Message& message, bool json, bool all_fields) {
  if (!json) return message.SerializeAsString();
  pb::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = all_fields;
  std::string out;
  auto status = pb::util::MessageToJsonString(message, &out, opts);
  if (status.ok()) return out;
  // Only reachable with values JSON cannot express; say so rather than send nothing.
  Json error = {
      {"error",
       {{"code", "internal"}, {"message", "cannot encode reply as JSON: " + status.ToString()}}}};
  return error.dump();
}

std::string SanitizeUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = Utf8Length(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

wire::Error ErrorFromStatus(const Status& status) {
  wire::Error error;
  error.set_code(std::string(StatusCodeName(status.code())));
  error.set_message(SanitizeUtf8(status.message()));
  return error;
}

wire::IngressReply MakeIngressReply(std::string_view workflow_id, const IngressOutcome& outcome) {
  wire::IngressReply reply;
  reply.set_workflow_id(std::string(workflow_id));
  reply.set_run_id(outcome.run_id);
  reply.set_duplicate(outcome.duplicate);
  reply.set_dropped(outcome.dropped);
  if (!outcome.status.ok()) *reply.mutable_error() = ErrorFromStatus(outcome.status);
  return reply;
}

namespace {
std::string ActivityStateName(records::PendingActivity::State state) {
  switch (state) {
    case records::PendingActivity::STATE_STARTED:
      return "started";
    case records::PendingActivity::STATE_BACKING_OFF:
      return "backing_off";
    default:
      return "scheduled";
  }
}

std::string ParentClosePolicyName(history::ParentClosePolicy policy) {
  switch (policy) {
    case history::PARENT_CLOSE_POLICY_REQUEST_CANCEL:
      return "request_cancel";
    case history::PARENT_CLOSE_POLICY_ABANDON:
      return "abandon";
    default:
      return "terminate";
  }
}
}  // namespace

wire::DescribeReply MakeDescribeReply(const Description& d) {
  const WorkflowRecord& r = d.record;
  wire::DescribeReply reply;
  reply.set_workflow_id(r.workflow_id());
  reply.set_workflow_type(r.workflow_type());
  reply.set_run_id(r.run_id());
  reply.set_status(WorkflowStatusName(r.status()));
  reply.set_history_length(r.head_seq());
  reply.set_code_version(r.code_version());
  reply.set_start_time_us(r.start_time_us());
  reply.set_close_time_us(r.close_time_us());
  reply.set_partition(r.partition());
  for (const auto& t : r.timers()) {
    auto* pt = reply.add_pending_timers();
    pt->set_timer_id(t.timer_id());
    pt->set_fire_at_us(t.fire_at_us());
  }
  for (const auto& a : r.activities()) {
    auto* pa = reply.add_pending_activities();
    pa->set_activity_id(a.activity_id());
    pa->set_activity_type(a.activity_type());
    pa->set_task_queue(a.options().task_queue());
    pa->set_attempt(a.attempt());
    pa->set_state(ActivityStateName(a.state()));
    if (!a.heartbeat_details().data().empty()) {
      *pa->mutable_heartbeat_details() = ValueFromPayload(a.heartbeat_details());
    }
    pa->set_last_heartbeat_us(a.last_heartbeat_us());
    pa->set_last_failure(SanitizeUtf8(a.last_failure()));
    pa->set_scheduled_at_us(a.scheduled_at_us());
    pa->set_deadline_us(a.deadline_us());
  }
  for (const auto& c : r.children()) {
    auto* pc = reply.add_pending_children();
    pc->set_child_ref(SanitizeUtf8(c.child_ref()));
    pc->set_workflow_id(c.workflow_id());
    pc->set_workflow_type(c.workflow_type());
    pc->set_parent_close_policy(ParentClosePolicyName(c.parent_close_policy()));
    pc->set_scheduled_at_us(c.scheduled_at_us());
  }
  if (r.has_parent()) {
    *reply.mutable_parent() = r.parent();
    reply.mutable_parent()->set_run_id(SanitizeUtf8(r.parent().run_id()));
    reply.mutable_parent()->set_child_ref(SanitizeUtf8(r.parent().child_ref()));
  }
  reply.set_parked_error(d.parked_error);
  reply.set_resident(d.resident);
  reply.set_cancel_requested(r.cancel_requested());
  reply.set_cancel_reason(SanitizeUtf8(r.cancel_reason()));
  reply.set_run_deadline_us(r.run_deadline_us());
  return reply;
}

wire::ResultReply MakeResultReply(const Result<Outcome>& outcome) {
  wire::ResultReply reply;
  if (!outcome.ok()) {
    *reply.mutable_error() = ErrorFromStatus(outcome.status());
    return reply;
  }
  reply.set_status(WorkflowStatusName(outcome->status));
  reply.set_run_id(outcome->run_id);
  if (outcome->status == WorkflowStatus::WORKFLOW_STATUS_COMPLETED) {
    *reply.mutable_output() = ValueFromPayload(outcome->output);
  }
  reply.set_failure(SanitizeUtf8(outcome->failure));
  return reply;
}

wire::QueryReply MakeQueryReply(const Result<Payload>& result) {
  wire::QueryReply reply;
  if (!result.ok()) {
    *reply.mutable_error() = ErrorFromStatus(result.status());
    return reply;
  }
  *reply.mutable_result() = ValueFromPayload(*result);
  return reply;
}

wire::WorkflowSummary MakeWorkflowSummary(const WorkflowRecord& r) {
  wire::WorkflowSummary s;
  s.set_workflow_id(r.workflow_id());
  s.set_workflow_type(r.workflow_type());
  s.set_run_id(r.run_id());
  s.set_status(WorkflowStatusName(r.status()));
  s.set_start_time_us(r.start_time_us());
  s.set_close_time_us(r.close_time_us());
  s.set_partition(r.partition());
  s.set_history_length(r.head_seq());
  return s;
}

wire::ListReply MakeListReply(const ListPage& page, const std::vector<std::uint32_t>& partitions) {
  wire::ListReply reply;
  for (const WorkflowRecord& r : page.workflows) *reply.add_workflows() = MakeWorkflowSummary(r);
  reply.set_next_page_token(page.next_page_token);
  for (std::uint32_t p : partitions) reply.add_partitions(p);
  reply.set_aion_version(std::string(Version()));
  return reply;
}

Result<WorkflowStatus> ParseWorkflowStatus(std::string_view name) {
  std::string lower(Trim(name));
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (int v = records::WorkflowStatus_MIN; v <= records::WorkflowStatus_MAX; ++v) {
    if (!records::WorkflowStatus_IsValid(v) || v == records::WORKFLOW_STATUS_UNSPECIFIED) continue;
    const auto status = static_cast<WorkflowStatus>(v);
    if (WorkflowStatusName(status) == lower) return status;
  }
  std::string known;
  for (int v = records::WorkflowStatus_MIN; v <= records::WorkflowStatus_MAX; ++v) {
    if (!records::WorkflowStatus_IsValid(v) || v == records::WORKFLOW_STATUS_UNSPECIFIED) continue;
    known += (known.empty() ? "" : ", ") + WorkflowStatusName(static_cast<WorkflowStatus>(v));
  }
  std::string shown = SanitizeUtf8(name.substr(0, 64));
  return InvalidArgument("unknown workflow status '" + shown + "' (expected one of " + known + ")");
}

wire::HeartbeatReply MakeHeartbeatReply(const Status& engine_status) {
  wire::HeartbeatReply reply;
  if (engine_status.code() == StatusCode::kNotFound) {
    reply.set_cancel_requested(true);
  } else if (!engine_status.ok()) {
    *reply.mutable_error() = ErrorFromStatus(engine_status);
  }
  return reply;
}

std::string ActivityTaskMsgId(std::string_view workflow_id, std::string_view run_id,
                              std::string_view activity_id, std::uint32_t attempt) {
  std::string id;
  id.reserve(workflow_id.size() + run_id.size() + activity_id.size() + 16);
  id.append(workflow_id).append(":").append(run_id).append(":").append(activity_id);
  id.append(":").append(std::to_string(attempt));
  return id;
}

namespace {
// What a task and a cancel note need from their row, checked: the queue
// becomes a subject token, the ids a Nats-Msg-Id.
Status CheckTaskRow(const OutboxRow& row, OutboxRow::Kind kind, std::string_view what) {
  if (row.kind() != kind) {
    return InvalidArgument("outbox row '" + OutboxMsgId(row) + "' is not " + std::string(what) +
                           " row");
  }
  const records::ActivityTaskRow& t = row.task();
  Status s = ValidateWorkflowId(row.workflow_id());
  if (s.ok()) s = ValidateName("task queue", t.task_queue());
  if (s.ok()) s = CheckToken("activity_id", t.activity_id(), kMaxActivityIdBytes);
  if (s.ok()) s = CheckToken("run_id", t.run_id(), kMaxActivityIdBytes);
  if (s.ok()) s = CheckAttempt(t.attempt());
  if (!s.ok()) return InvalidArgument("outbox row '" + OutboxMsgId(row) + "': " + s.message());
  return Status::Ok();
}
}  // namespace

Result<TaskMessage> ActivityTaskFromRow(const OutboxRow& row, const Subjects& subjects) {
  AION_RETURN_IF_ERROR(CheckTaskRow(row, OutboxRow::KIND_ACTIVITY_TASK, "an activity task"));
  const records::ActivityTaskRow& t = row.task();
  TaskMessage m;
  m.subject = subjects.Task(t.task_queue());
  m.msg_id = ActivityTaskMsgId(row.workflow_id(), t.run_id(), t.activity_id(), t.attempt());
  wire::ActivityTask& task = m.task;
  task.set_workflow_id(row.workflow_id());
  task.set_run_id(t.run_id());
  task.set_activity_id(t.activity_id());
  task.set_attempt(t.attempt());
  task.set_activity_type(t.activity_type());
  task.set_task_queue(t.task_queue());
  *task.mutable_input() = ValueFromPayload(t.input());
  task.set_start_to_close_ms(CeilMs(t.start_to_close_us()));
  task.set_heartbeat_timeout_ms(CeilMs(t.heartbeat_timeout_us()));
  task.set_scheduled_at_us(t.scheduled_at_us());
  task.set_started_at_us(t.started_at_us());
  task.set_result_subject(subjects.ActivityResult(row.workflow_id()));
  task.set_heartbeat_subject(subjects.Heartbeat(row.workflow_id()));
  return m;
}

Result<TaskCancelMessage> ActivityCancelFromRow(const OutboxRow& row, const Subjects& subjects) {
  AION_RETURN_IF_ERROR(CheckTaskRow(row, OutboxRow::KIND_ACTIVITY_CANCEL, "an activity cancel"));
  const records::ActivityTaskRow& t = row.task();
  TaskCancelMessage m;
  m.subject = subjects.TaskCancel(t.task_queue());
  m.cancel.set_workflow_id(row.workflow_id());
  m.cancel.set_run_id(t.run_id());
  m.cancel.set_activity_id(t.activity_id());
  m.cancel.set_attempt(t.attempt());
  m.cancel.set_reason(Utf8Prefix(t.reason(), kMaxReasonBytes));
  return m;
}

namespace {
// Messages from the outbox always carry their parent: a cancel or terminate
// without one would apply to whatever run the addressee has.
Status CheckRowParent(const records::WorkflowMessageRow& m) {
  if (!m.has_parent()) return InvalidArgument("parent is missing");
  return CheckParentRef(m.parent());
}

template <typename Request>  // wire::CancelWorkflow or wire::TerminateWorkflow
std::string StopBody(const records::WorkflowMessageRow& m) {
  Request request;
  request.set_reason(Utf8Prefix(m.reason(), kMaxReasonBytes));
  request.set_request_id(m.request_id());
  *request.mutable_parent() = m.parent();
  return request.SerializeAsString();
}

wire::StartWorkflow StartOfRow(const records::WorkflowMessageRow& m) {
  wire::StartWorkflow start;
  start.set_workflow_type(m.workflow_type());
  *start.mutable_input() = ValueFromPayload(m.input());
  // Beyond the decoder's 100-year cap a timeout means "never" anyway.
  start.set_run_timeout_ms(std::min(CeilMs(m.run_timeout_us()), kMaxRunTimeoutMs));
  start.set_request_id(m.request_id());
  *start.mutable_parent() = m.parent();
  return start;
}

wire::ChildWorkflowResult ChildResultOfRow(const records::WorkflowMessageRow& m) {
  wire::ChildWorkflowResult result;
  if (m.has_parent()) *result.mutable_parent() = m.parent();
  if (m.has_result()) {
    *result.mutable_result() = m.result();
    result.mutable_result()->set_failure(Utf8Prefix(m.result().failure(), kMaxFailureMessageBytes));
  }
  result.set_request_id(m.request_id());
  return result;
}

// The wire form of a workflow message, checked as its addressee will check it.
Result<WorkflowMessage> EncodeWorkflowMessage(const records::WorkflowMessageRow& m) {
  using Row = records::WorkflowMessageRow;
  AION_RETURN_IF_ERROR(ValidateName("addressee workflow_id", m.workflow_id()));
  AION_RETURN_IF_ERROR(ValidateName("request_id", m.request_id()));
  WorkflowMessage out;
  out.workflow_id = m.workflow_id();
  switch (m.kind()) {
    case Row::KIND_START:
      AION_RETURN_IF_ERROR(ValidateName("workflow_type", m.workflow_type()));
      AION_RETURN_IF_ERROR(CheckRowParent(m));
      out.kind = IngressKind::kStart;
      out.data = StartOfRow(m).SerializeAsString();
      return out;
    case Row::KIND_CANCEL:
      AION_RETURN_IF_ERROR(CheckRowParent(m));
      out.kind = IngressKind::kCancel;
      out.data = StopBody<wire::CancelWorkflow>(m);
      return out;
    case Row::KIND_TERMINATE:
      AION_RETURN_IF_ERROR(CheckRowParent(m));
      out.kind = IngressKind::kTerminate;
      out.data = StopBody<wire::TerminateWorkflow>(m);
      return out;
    case Row::KIND_CHILD_RESULT: {
      const wire::ChildWorkflowResult result = ChildResultOfRow(m);
      AION_RETURN_IF_ERROR(CheckChildResult(m.workflow_id(), result));
      out.kind = IngressKind::kChildResult;
      out.data = result.SerializeAsString();
      return out;
    }
    default:
      return InvalidArgument("message kind " + std::to_string(static_cast<int>(m.kind())) +
                             " is unknown");
  }
}
}  // namespace

Result<WorkflowMessage> WorkflowMessageFromRow(const OutboxRow& row) {
  if (row.kind() != OutboxRow::KIND_WORKFLOW_MESSAGE) {
    return InvalidArgument("outbox row '" + OutboxMsgId(row) + "' is not a workflow message row");
  }
  // The msg id is the Nats-Msg-Id; the addressee's codec refuses longer ones.
  const Status key = CheckRequiredText("msg id", OutboxMsgId(row), kMaxMsgIdBytes);
  auto message = key.ok() ? EncodeWorkflowMessage(row.message()) : Result<WorkflowMessage>(key);
  if (!message.ok()) {
    return InvalidArgument("outbox row '" +
                           SanitizeUtf8(OutboxMsgId(row).substr(0, kMaxMsgIdBytes)) +
                           "': " + message.status().message());
  }
  message->msg_id = OutboxMsgId(row);
  return message;
}

Result<LifecycleMessage> LifecycleFromRow(const OutboxRow& row, const Subjects& subjects) {
  if (row.kind() != OutboxRow::KIND_LIFECYCLE) {
    return InvalidArgument("outbox row '" + OutboxMsgId(row) + "' is not a lifecycle row");
  }
  const HistoryEvent& e = row.event();
  wire::LifecycleEvent event;
  event.set_workflow_id(row.workflow_id());
  event.set_workflow_type(row.workflow_type());
  event.set_run_id(e.run_id());
  event.set_seq(e.seq());
  event.set_time_us(e.recorded_at_us());
  switch (e.attributes_case()) {
    case HistoryEvent::kWorkflowStarted:
      event.set_event("started");
      *event.mutable_input() = ValueFromPayload(e.workflow_started().input());
      break;
    case HistoryEvent::kWorkflowCompleted:
      event.set_event("completed");
      *event.mutable_output() = ValueFromPayload(e.workflow_completed().output());
      break;
    case HistoryEvent::kWorkflowFailed:
      event.set_event("failed");
      event.set_failure(e.workflow_failed().message());
      break;
    case HistoryEvent::kWorkflowCancelled:
      event.set_event("cancelled");
      event.set_failure(e.workflow_cancelled().message());
      break;
    case HistoryEvent::kWorkflowTerminated: {
      const auto& t = e.workflow_terminated();
      event.set_event(t.timed_out() ? "timed_out" : "terminated");
      event.set_failure(!t.reason().empty() ? t.reason()
                        : t.timed_out()     ? "the run timeout passed"
                                            : "");
      break;
    }
    case HistoryEvent::kWorkflowContinuedAsNew:
      // The run ended; the next run's `started` (same commit) carries its input.
      event.set_event("continued_as_new");
      event.set_next_run_id(e.workflow_continued_as_new().new_run_id());
      break;
    default:
      return InvalidArgument("outbox row '" + OutboxMsgId(row) + "' holds event seq " +
                             std::to_string(e.seq()) + " which is not a lifecycle event");
  }
  std::string subject = subjects.Event(row.workflow_type(), row.workflow_id(), event.event());
  return LifecycleMessage{std::move(subject), std::move(event)};
}

Json JsonFromValue(const pb::Value& value) {
  switch (value.kind_case()) {
    case pb::Value::kNumberValue:
      return JsonFromNumber(value.number_value());
    case pb::Value::kStringValue:
      return Json(value.string_value());
    case pb::Value::kBoolValue:
      return Json(value.bool_value());
    case pb::Value::kStructValue: {
      Json object = Json::object();
      for (const auto& [key, field] : value.struct_value().fields()) {
        object[key] = JsonFromValue(field);
      }
      return object;
    }
    case pb::Value::kListValue: {
      Json array = Json::array();
      for (const auto& item : value.list_value().values()) array.push_back(JsonFromValue(item));
      return array;
    }
    default:  // null, or absent: both read as JSON null
      return Json(nullptr);
  }
}

void ValueFromJson(const Json& json, pb::Value* out) {
  switch (json.type()) {
    case Json::value_t::boolean:
      out->set_bool_value(json.get<bool>());
      break;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      out->set_number_value(json.get<double>());
      break;
    case Json::value_t::string:
      out->set_string_value(json.get<std::string>());
      break;
    case Json::value_t::array: {
      auto* list = out->mutable_list_value();
      for (const auto& item : json) ValueFromJson(item, list->add_values());
      break;
    }
    case Json::value_t::object: {
      auto* fields = out->mutable_struct_value()->mutable_fields();
      for (const auto& [key, item] : json.items()) ValueFromJson(item, &(*fields)[key]);
      break;
    }
    default:
      out->set_null_value(pb::NULL_VALUE);
  }
}

pb::Value ValueFromPayload(const Payload& payload) {
  auto json = ParseJsonPayload(payload);
  if (!json.ok()) json = Json::parse(PayloadToDisplay(payload));
  pb::Value value;
  ValueFromJson(*json, &value);
  return value;
}

}  // namespace aion::bus
