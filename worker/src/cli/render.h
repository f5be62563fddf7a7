// Turns wire replies into what the user reads: short readable lines by default,
// or with --json one JSON object per result (the protobuf JSON mapping with
// snake_case names, payloads inlined as JSON values). Results go to `out`, errors
// in readable mode to `err`. No NATS here, so every format is testable offline.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "aion/engine/status.h"
#include "aion/history.pb.h"
#include "aion/wire.pb.h"

namespace aion::cli {

class Renderer {
 public:
  Renderer(bool json, std::ostream& out, std::ostream& err) : json_(json), out_(out), err_(err) {}

  // "<verb> <id> run <run_id>" (verb: started, signaled, terminated, ...).
  void Ingress(std::string_view verb, const wire::IngressReply& reply);
  void Result(std::string_view workflow_id, const wire::ResultReply& reply);
  void Describe(const wire::DescribeReply& reply);
  void History(const std::vector<history::HistoryEvent>& events);
  // The query's answer as JSON (with --json: the whole QueryReply).
  void Query(const wire::QueryReply& reply);
  // The merged `list` replies of `workers` workers, one row per workflow;
  // `more`: some worker had more than one page.
  void List(const wire::ListReply& merged, std::size_t workers, bool more);
  void Published(std::string_view subject, const std::string& stream, std::uint64_t seq,
                 bool duplicate);
  // One message seen by `aion sub`: lifecycle events and dead letters decoded.
  void Seen(std::string_view subject, const std::string& data, bool json, std::string_view prefix);
  // An error the server sent (code as on the wire).
  void ServerError(const wire::Error& error);
  // An error found locally or by the transport.
  void LocalError(const Status& status);

 private:
  void Line(const std::string& text);

  bool json_;
  std::ostream& out_;
  std::ostream& err_;
};

// 2024-05-01T12:00:00.123Z from microseconds since the epoch; "-" for 0.
std::string FormatTimeUs(std::int64_t us);
// One readable `describe` line for a pending activity:
// "#1 charge attempt 2 started on payments deadline <time> ...".
std::string PendingActivityText(const wire::PendingActivity& activity);
// One readable history line: "seq  time  Type  key=value ...".
std::string HistoryLine(const history::HistoryEvent& event, const std::string& previous_run);

}  // namespace aion::cli
