#include "aion/engine/status.h"

#include <array>

namespace aion {
namespace {
struct CodeName {
  StatusCode code;
  std::string_view name;
};
constexpr std::array kNames = {
    CodeName{StatusCode::kOk, "ok"},
    CodeName{StatusCode::kInvalidArgument, "invalid_argument"},
    CodeName{StatusCode::kNotFound, "not_found"},
    CodeName{StatusCode::kAlreadyStarted, "already_started"},
    CodeName{StatusCode::kNotRunning, "not_running"},
    CodeName{StatusCode::kUnknownWorkflowType, "unknown_workflow_type"},
    CodeName{StatusCode::kNondeterminism, "nondeterminism"},
    CodeName{StatusCode::kAborted, "aborted"},
    CodeName{StatusCode::kUnavailable, "unavailable"},
    CodeName{StatusCode::kResourceExhausted, "resource_exhausted"},
    CodeName{StatusCode::kDeadlineExceeded, "deadline_exceeded"},
    CodeName{StatusCode::kInternal, "internal"},
    CodeName{StatusCode::kUnknownQuery, "unknown_query"},
    CodeName{StatusCode::kQueryTimeout, "query_timeout"},
};
}  // namespace

std::string_view StatusCodeName(StatusCode code) {
  for (const auto& n : kNames) {
    if (n.code == code) return n.name;
  }
  return "internal";
}

StatusCode StatusCodeFromName(std::string_view name) {
  for (const auto& n : kNames) {
    if (n.name == name) return n.code;
  }
  return StatusCode::kInternal;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(StatusCodeName(code_)) + ": " + message_;
}

}  // namespace aion
