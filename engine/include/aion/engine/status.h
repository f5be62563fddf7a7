// Status and Result<T>: the error values that cross component boundaries.
//
// A small fixed set of codes tells the caller what to do next (retry, fix the
// input, give up). Every code has a stable wire name (DESIGN §5). Immutable
// values; safe to copy between threads.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace aion {

enum class StatusCode {
  kOk,
  kInvalidArgument,      // the input is wrong; do not retry it unchanged
  kNotFound,             // no such workflow (or record)
  kAlreadyStarted,       // a start for an id whose run is open
  kNotRunning,           // the run is terminal; signals and commands are refused
  kUnknownWorkflowType,  // no workflow registered under that type
  kNondeterminism,       // replay diverged from history; the run is parked
  kAborted,              // optimistic check failed (expected head seq); nothing written
  kUnavailable,          // transient: retry later (I/O, connection, commit failure)
  kResourceExhausted,    // map/disk full, queue full: back off and retry
  kDeadlineExceeded,     // a wait ran out of time
  kInternal,             // a bug or corrupted data
  kUnknownQuery,         // the run has no handler for that query
  kQueryTimeout,         // the run did not answer the query in time
};

// Stable snake_case name used on the wire ("not_found", ...).
std::string_view StatusCodeName(StatusCode code);
// Inverse of StatusCodeName; unknown names map to kInternal.
StatusCode StatusCodeFromName(std::string_view name);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "not_found: no workflow 'x'" or "ok".
  std::string ToString() const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status Aborted(std::string m) { return {StatusCode::kAborted, std::move(m)}; }

inline std::ostream& operator<<(std::ostream& os, StatusCode code) {
  return os << StatusCodeName(code);
}
inline std::ostream& operator<<(std::ostream& os, const Status& s) { return os << s.ToString(); }

// Either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace aion

// Returns early from the enclosing function if `expr` is a non-ok Status.
#define AION_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::aion::Status aion_status_ = (expr);        \
    if (!aion_status_.ok()) return aion_status_; \
  } while (0)
