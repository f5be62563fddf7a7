#include "aion/bus/subjects.h"

#include <array>
#include <charconv>
#include <utility>
#include <vector>

#include "aion/engine/ids.h"

namespace aion::bus {
namespace {

constexpr std::array<std::pair<IngressKind, std::string_view>, 7> kKinds = {{
    {IngressKind::kStart, "start"},
    {IngressKind::kSignal, "signal"},
    {IngressKind::kSignalWithStart, "signal_with_start"},
    {IngressKind::kCancel, "cancel"},
    {IngressKind::kTerminate, "terminate"},
    {IngressKind::kActivityResult, "activity_result"},
    {IngressKind::kChildResult, "child_result"},
}};

constexpr std::array<std::pair<ApiOp, std::string_view>, 5> kOps = {{
    {ApiOp::kDescribe, "describe"},
    {ApiOp::kHistory, "history"},
    {ApiOp::kQuery, "query"},
    {ApiOp::kResult, "result"},
    {ApiOp::kHeartbeat, "heartbeat"},
}};

std::string Quoted(std::string_view s) {
  // Subjects come from outside: keep error messages short and printable.
  std::string out = "'";
  for (char c : s.substr(0, 200)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 200) out += "...";
  return out + "'";
}

std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = s.find('.', start);
    out.push_back(s.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) return out;
    start = dot + 1;
  }
}

// The tokens after "<prefix>.<area>.", which must number exactly `count`.
Result<std::vector<std::string_view>> TokensAfter(std::string_view subject,
                                                  const std::string& prefix, std::string_view area,
                                                  std::size_t count) {
  const std::string head = prefix + "." + std::string(area) + ".";
  if (subject.substr(0, head.size()) != head) {
    return InvalidArgument("subject " + Quoted(subject) + " does not start with '" + head + "'");
  }
  auto tokens = Split(subject.substr(head.size()));
  if (tokens.size() != count) {
    return InvalidArgument("subject " + Quoted(subject) + " has " + std::to_string(tokens.size()) +
                           " tokens after '" + head + "', expected " + std::to_string(count));
  }
  return tokens;
}

Result<std::uint32_t> ParsePartition(std::string_view token) {
  std::uint32_t p = 0;
  auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), p);
  if (token.empty() || ec != std::errc() || end != token.data() + token.size() ||
      (token.size() > 1 && token[0] == '0')) {
    return InvalidArgument("partition " + Quoted(token) + " is not a decimal number");
  }
  return p;
}

bool IsPrefixChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

}  // namespace

std::string_view IngressKindName(IngressKind kind) {
  for (const auto& [k, name] : kKinds) {
    if (k == kind) return name;
  }
  return "unknown";
}

Result<IngressKind> ParseIngressKind(std::string_view name) {
  for (const auto& [k, n] : kKinds) {
    if (n == name) return k;
  }
  return InvalidArgument("unknown ingress kind " + Quoted(name) +
                         " (expected start, signal, signal_with_start, cancel, terminate, "
                         "activity_result or child_result)");
}

std::string_view ApiOpName(ApiOp op) {
  for (const auto& [o, name] : kOps) {
    if (o == op) return name;
  }
  return "unknown";
}

Result<ApiOp> ParseApiOp(std::string_view name) {
  for (const auto& [o, n] : kOps) {
    if (n == name) return o;
  }
  return InvalidArgument("unknown operation " + Quoted(name) +
                         " (expected describe, history, query, result or heartbeat)");
}

Status ValidatePrefix(std::string_view prefix) {
  for (std::string_view token : Split(prefix)) {
    if (token.empty())
      return InvalidArgument("subject prefix " + Quoted(prefix) + " has an empty token");
    for (char c : token) {
      if (!IsPrefixChar(c)) {
        return InvalidArgument("subject prefix " + Quoted(prefix) +
                               " may contain only A-Z a-z 0-9 _ - and dots between tokens");
      }
    }
  }
  return Status::Ok();
}

Subjects::Subjects(std::string prefix) : prefix_(std::move(prefix)) {}

std::string Subjects::Join(std::string_view area, std::string_view rest) const {
  std::string s;
  s.reserve(prefix_.size() + area.size() + rest.size() + 2);
  s.append(prefix_).append(".").append(area).append(".").append(rest);
  return s;
}

std::string Subjects::Workflow(std::string_view id, IngressKind kind) const {
  return Join("wf", std::string(id) + "." + std::string(IngressKindName(kind)));
}

std::string Subjects::Inbox(std::uint32_t partition, std::string_view id, IngressKind kind) const {
  return Join("in", std::to_string(partition) + "." + std::string(id) + "." +
                        std::string(IngressKindName(kind)));
}

std::string Subjects::InboxOf(std::string_view id, IngressKind kind,
                              std::uint32_t partitions) const {
  return Inbox(PartitionOf(id, partitions), id, kind);
}

std::string Subjects::InboxAll() const { return Join("in", ">"); }

std::string Subjects::InboxFilter(std::uint32_t partition) const {
  return Join("in", std::to_string(partition) + ".>");
}

std::string Subjects::Event(std::string_view type, std::string_view id,
                            std::string_view event) const {
  return Join("evt", std::string(type) + "." + std::string(id) + "." + std::string(event));
}

std::string Subjects::EventsAll() const { return Join("evt", ">"); }

std::string Subjects::Request(std::string_view id, ApiOp op) const {
  return Join("req", std::string(id) + "." + std::string(ApiOpName(op)));
}

std::string Subjects::Api(std::uint32_t partition, std::string_view id, ApiOp op) const {
  return Join("api",
              std::to_string(partition) + "." + std::string(id) + "." + std::string(ApiOpName(op)));
}

std::string Subjects::ApiFilter(std::uint32_t partition) const {
  return Join("api", std::to_string(partition) + ".*.*");
}

std::string Subjects::List() const { return Join("api", "list"); }

std::string Subjects::Dlq(std::string_view kind) const { return Join("dlq", kind); }

std::string Subjects::DlqAll() const { return Join("dlq", ">"); }

std::string Subjects::Task(std::string_view task_queue) const { return Join("task", task_queue); }

std::string Subjects::TasksAll() const { return Join("task", "*"); }

std::string Subjects::TaskCancel(std::string_view task_queue) const {
  return Join("task", std::string(task_queue) + ".cancel");
}

std::string Subjects::ActivityResult(std::string_view id) const {
  return Workflow(id, IngressKind::kActivityResult);
}

std::string Subjects::Heartbeat(std::string_view id) const {
  return Request(id, ApiOp::kHeartbeat);
}

Result<IngressSubject> Subjects::ParseWorkflow(std::string_view subject) const {
  auto tokens = TokensAfter(subject, prefix_, "wf", 2);
  if (!tokens.ok()) return tokens.status();
  AION_RETURN_IF_ERROR(ValidateWorkflowId((*tokens)[0]));
  auto kind = ParseIngressKind((*tokens)[1]);
  if (!kind.ok()) return kind.status();
  return IngressSubject{0, std::string((*tokens)[0]), *kind};
}

Result<IngressSubject> Subjects::ParseInbox(std::string_view subject) const {
  auto tokens = TokensAfter(subject, prefix_, "in", 3);
  if (!tokens.ok()) return tokens.status();
  auto partition = ParsePartition((*tokens)[0]);
  if (!partition.ok()) return partition.status();
  AION_RETURN_IF_ERROR(ValidateWorkflowId((*tokens)[1]));
  auto kind = ParseIngressKind((*tokens)[2]);
  if (!kind.ok()) return kind.status();
  return IngressSubject{*partition, std::string((*tokens)[1]), *kind};
}

Result<ApiSubject> Subjects::ParseRequest(std::string_view subject) const {
  auto tokens = TokensAfter(subject, prefix_, "req", 2);
  if (!tokens.ok()) return tokens.status();
  AION_RETURN_IF_ERROR(ValidateWorkflowId((*tokens)[0]));
  auto op = ParseApiOp((*tokens)[1]);
  if (!op.ok()) return op.status();
  return ApiSubject{0, std::string((*tokens)[0]), *op};
}

Result<ApiSubject> Subjects::ParseApi(std::string_view subject) const {
  auto tokens = TokensAfter(subject, prefix_, "api", 3);
  if (!tokens.ok()) return tokens.status();
  auto partition = ParsePartition((*tokens)[0]);
  if (!partition.ok()) return partition.status();
  AION_RETURN_IF_ERROR(ValidateWorkflowId((*tokens)[1]));
  auto op = ParseApiOp((*tokens)[2]);
  if (!op.ok()) return op.status();
  return ApiSubject{*partition, std::string((*tokens)[1]), *op};
}

Result<EventSubject> Subjects::ParseEvent(std::string_view subject) const {
  auto tokens = TokensAfter(subject, prefix_, "evt", 3);
  if (!tokens.ok()) return tokens.status();
  AION_RETURN_IF_ERROR(ValidateName("workflow type", (*tokens)[0]));
  AION_RETURN_IF_ERROR(ValidateWorkflowId((*tokens)[1]));
  AION_RETURN_IF_ERROR(ValidateName("event", (*tokens)[2]));
  return EventSubject{std::string((*tokens)[0]), std::string((*tokens)[1]),
                      std::string((*tokens)[2])};
}

Result<std::string> Subjects::ParseTask(std::string_view subject) const {
  auto tokens = TokensAfter(subject, prefix_, "task", 1);
  if (!tokens.ok()) return tokens.status();
  AION_RETURN_IF_ERROR(ValidateName("task queue", (*tokens)[0]));
  return std::string((*tokens)[0]);
}

}  // namespace aion::bus
