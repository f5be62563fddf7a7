// Header Aion-Reply-When, and the reply a start gets when its run closes.
//
// A message on aion.wf.<id>.<kind> with header Aion-Reply-To gets an
// IngressReply there once it was recorded (or refused). A *start* that also
// carries `Aion-Reply-When: closed` gets a second IngressReply on the same
// subject when its run closes (the last run of a continue-as-new chain):
// `status`, `output` / `failure` and `run_id` as in ResultReply, in JSON when
// the start was JSON. The subject is kept in the workflow record, so a worker
// restart between start and close loses nothing; the reply leaves through the
// outbox from the closing commit (core NATS, at least once). A repeated start
// (same request id) asking the same is answered at once if the run closed.
#pragma once

#include <string>
#include <string_view>

#include "aion/bus/codec.h"
#include "aion/bus/subjects.h"

namespace aion::bus {

inline constexpr std::string_view kReplyWhenHeader = "Aion-Reply-When";
// Longest Aion-Reply-To a close reply may name (it is stored with the run).
inline constexpr std::size_t kMaxCloseReplySubjectBytes = 256;

enum class ReplyWhen { kRecorded, kClosed };

// Whether the worker may publish a reply to `to`: kInvalidArgument for a
// subject under `prefix` (it would be taken for input) or a system subject
// (a leading '$': $JS.API, $KV, $SYS act on what lands there). Every reply
// the ingress sends checks it.
Status CheckReplySubject(std::string_view to, std::string_view prefix);

// Reads header Aion-Reply-When of a message of `kind`: absent or "recorded"
// -> kRecorded; "closed" -> kClosed (case-insensitive, surrounding blanks
// ignored). kInvalidArgument for any other value, for "closed" on a kind
// other than start, without Aion-Reply-To, or with an Aion-Reply-To that is
// not a plain subject of at most kMaxCloseReplySubjectBytes printable ASCII
// bytes or that CheckReplySubject refuses.
Result<ReplyWhen> ParseReplyWhen(const Headers& headers, IngressKind kind, std::string_view prefix);

// The close reply of an outbox row of KIND_CLOSE_REPLY: its subject, body
// (an IngressReply from the row's terminal event, JSON if the row says so)
// and headers (Content-Type: application/json for JSON). kInvalidArgument
// for a row without a subject or a terminal event.
struct CloseReplyMessage {
  std::string subject;
  std::string data;
  Headers headers;
};
Result<CloseReplyMessage> CloseReplyFromRow(const OutboxRow& row);

}  // namespace aion::bus
