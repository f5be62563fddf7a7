// The `aion` command line (DESIGN §5): `aion [--nats <url>] [--json] <command> ...`.
//
// ParseCommandLine turns argv into one Invocation with CLI11; Validate then checks
// everything that can be checked without a server (ids, names, JSON, durations), so
// bad input never reaches NATS. Both are pure: no I/O beyond CLI11's own --help.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "aion/engine/payload.h"
#include "aion/engine/status.h"

namespace aion::cli {

// Process exit codes; documented in `aion --help` and the README.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailed = 1,        // the workflow failed, or the server answered with an error
  kExitUsage = 2,         // bad usage or bad input, found before anything was sent
  kExitUnreachable = 3,   // NATS unreachable, no stream, or no worker answered in time
  kExitStillRunning = 4,  // `result`/`--wait`: the run was still open when --timeout ran out
};

enum class Command {
  kStart,
  kSignal,
  kCancel,
  kTerminate,
  kDescribe,
  kHistory,
  kResult,
  kQuery,
  kList,
  kSignalWithStart,
  kPub,
  kSub,
  kNatsConfig  // offline: prints the nats-server mappings fragment
};

struct Invocation {
  Command command = Command::kDescribe;
  std::string nats_url;
  std::string prefix = "aion";
  bool json = false;

  std::string workflow_id;
  std::string workflow_type;                     // start, signal-with-start; list: --type
  std::string signal_name;                       // signal, signal-with-start
  std::string query_name;                        // query
  std::string request_id;                        // start, signal, cancel, terminate
  std::string reason;                            // cancel, terminate
  std::string run_timeout_text;                  // start: --run-timeout as typed ("" = none)
  std::optional<std::string> input_text;         // start, signal: --input as typed
  std::optional<std::string> signal_input_text;  // signal-with-start: --signal-input
  std::optional<std::string> args_text;          // query: --args
  std::string id_reuse_text;                     // start, signal-with-start: --id-reuse
  std::string statuses_text;                     // list: --status running,completed
  std::string since_text, until_text;            // list: --since, --until
  std::uint32_t limit = 0;                       // list: per worker (0 = the server's 100)
  bool wait = false;                             // start
  std::string subject;                           // pub, sub
  std::string body_text;                         // pub
  int count = 0;                                 // sub: stop after this many messages (0 = never)
  std::string timeout_text;                      // as typed; Validate fills `timeout`
  std::uint32_t partitions = 16;                 // nats-config: P

  // Filled by Validate.
  Json input;                         // null when --input was not given
  Json signal_input;                  // null when --signal-input was not given
  Json args;                          // null when --args was not given
  int id_reuse = 0;                   // wire::IdReusePolicy
  std::vector<std::string> statuses;  // list: canonical names
  std::int64_t started_after_us = 0;  // list: 0 = any
  std::int64_t started_before_us = 0;
  std::chrono::milliseconds timeout{0};
  std::chrono::milliseconds run_timeout{0};  // start: 0 = none
};

// Parses argv. Returns the exit code when the process should stop right away
// (--help printed: 0; a usage error printed: kExitUsage), nullopt otherwise.
std::optional<int> ParseCommandLine(int argc, char** argv, Invocation& inv);

// Local checks of `inv`, filling its parsed fields; kInvalidArgument says what is wrong.
Status Validate(Invocation& inv);

// "500ms", "30s", "2m", "1h"; a bare number means seconds. Must be > 0 and at
// most `max_ms` (default 24 h).
Result<std::chrono::milliseconds> ParseDuration(std::string_view text,
                                                std::int64_t max_ms = 86'400'000);

// --since / --until: an RFC 3339 time (2026-11-21T12:54:05Z, fractions and
// offsets like +02:00 allowed), or a duration before `now_us` ("1h", "7d").
Result<std::int64_t> ParseTimeArgument(std::string_view what, std::string_view text,
                                       std::int64_t now_us);

// --id-reuse: allow, failed-only or reject -> wire::IdReusePolicy.
Result<int> ParseIdReuse(std::string_view text);

// Parses JSON typed by the user; the error names `what` and the byte offset.
Result<Json> ParseJsonArgument(std::string_view what, std::string_view text);

}  // namespace aion::cli
