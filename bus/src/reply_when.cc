#include "aion/bus/reply_when.h"

#include <algorithm>
#include <cctype>

#include "aion/engine/history.h"

namespace aion::bus {
namespace {

std::string Lower(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// A plain NATS subject to publish to: printable ASCII, no blanks, no
// wildcards, no empty tokens.
bool IsPlainSubject(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  char prev = 0;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '*' || c == '>' || (c == '.' && prev == '.')) return false;
    prev = c;
  }
  return true;
}

Status CheckCloseReplyTo(std::string_view to, std::string_view prefix) {
  if (to.empty()) {
    return InvalidArgument("header Aion-Reply-When: closed needs header Aion-Reply-To");
  }
  if (to.size() > kMaxCloseReplySubjectBytes) {
    return InvalidArgument("header Aion-Reply-To is " + std::to_string(to.size()) +
                           " bytes; a close reply allows at most " +
                           std::to_string(kMaxCloseReplySubjectBytes));
  }
  if (!IsPlainSubject(to)) {
    return InvalidArgument("header Aion-Reply-To '" + SanitizeUtf8(to.substr(0, 64)) +
                           "' is not a plain NATS subject");
  }
  return CheckReplySubject(to, prefix);
}

}  // namespace

Status CheckReplySubject(std::string_view to, std::string_view prefix) {
  if (to.rfind(std::string(prefix) + ".", 0) == 0) {
    return InvalidArgument("header Aion-Reply-To must not be an Aion subject");
  }
  if (!to.empty() && to.front() == '$') {
    return InvalidArgument("header Aion-Reply-To must not be a system subject ('$...')");
  }
  return Status::Ok();
}

Result<ReplyWhen> ParseReplyWhen(const Headers& headers, IngressKind kind,
                                 std::string_view prefix) {
  const std::string_view raw = HeaderValue(headers, kReplyWhenHeader);
  const std::string value = Lower(raw);
  if (value.empty() || value == "recorded") return ReplyWhen::kRecorded;
  if (value != "closed") {
    return InvalidArgument("header Aion-Reply-When '" + SanitizeUtf8(raw.substr(0, 64)) +
                           "' is not one of recorded, closed");
  }
  if (kind != IngressKind::kStart) {
    return InvalidArgument("header Aion-Reply-When: closed applies to start only, not " +
                           std::string(IngressKindName(kind)));
  }
  AION_RETURN_IF_ERROR(CheckCloseReplyTo(HeaderValue(headers, kReplyToHeader), prefix));
  return ReplyWhen::kClosed;
}

Result<CloseReplyMessage> CloseReplyFromRow(const OutboxRow& row) {
  if (row.reply().subject().empty()) return InvalidArgument("close reply row without a subject");
  if (!IsTerminalEvent(row.event())) {
    return InvalidArgument("close reply row without a terminal event");
  }
  Outcome outcome;
  outcome.status = StatusOfTerminal(row.event());
  outcome.run_id = row.event().run_id();
  if (row.event().has_workflow_completed())
    outcome.output = row.event().workflow_completed().output();
  outcome.failure = TerminalMessage(row.event());
  const wire::ResultReply result = MakeResultReply(outcome);
  wire::IngressReply reply;
  reply.set_workflow_id(row.workflow_id());
  reply.set_run_id(result.run_id());
  reply.set_status(result.status());
  if (result.has_output()) *reply.mutable_output() = result.output();
  reply.set_failure(result.failure());
  CloseReplyMessage out;
  out.subject = row.reply().subject();
  out.data = EncodeMessage(reply, row.reply().json());
  if (row.reply().json()) out.headers.emplace(kContentTypeHeader, kJsonContentType);
  return out;
}

}  // namespace aion::bus
