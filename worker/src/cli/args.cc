#include "args.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <ctime>

#include "aion/bus/codec.h"
#include "aion/bus/subjects.h"
#include "aion/engine/history.h"
#include "aion/engine/ids.h"
#include "aion/engine/version.h"
#include "aion/wire.pb.h"

namespace aion::cli {
namespace {

constexpr const char* kDefaultNatsUrl = "nats://127.0.0.1:4222";

constexpr const char* kFooter = R"(
Exit codes:
  0  success
  1  the workflow failed, or the server answered with an error (its code is printed)
  2  bad usage or bad input (invalid id or name, invalid JSON, bad duration); nothing was sent
  3  NATS unreachable, no stream for the subject, or no worker answered within --timeout
  4  result / start --wait: the run was still open when --timeout ran out

list asks every worker at once (aion.api.list) and prints what arrives until
no reply came for 300 ms (at most --timeout, default 2s): one page per worker,
at most --limit workflows each, merged and sorted by workflow id.

Environment: AION_NATS_URL (default nats://127.0.0.1:4222), AION_PREFIX (default aion).
Examples:
  aion start noop demo-1 --input '{"hello":"world"}' --wait
  aion signal order-42 approve --input '{"by":"ana"}'
  aion cancel order-42 --reason 'customer asked'
  aion query order-42 status --args '{"verbose":true}'
  aion signal-with-start order order-44 approve --input '{"sku":"A1"}' --signal-input '"ana"'
  aion list --status running --since 1h
  aion --json history order-42
  aion pub aion.wf.order-43.start '{"workflow_type":"noop","input":{"a":1}}'
  aion sub 'aion.evt.>'
  aion nats-config --partitions 16 > aion-mappings.conf
)";

void AddStart(CLI::App& app, Invocation& inv) {
  auto* cmd = app.add_subcommand("start", "Start a workflow and wait until the worker recorded it");
  cmd->add_option("workflow_type", inv.workflow_type, "Registered workflow type, e.g. noop")
      ->required();
  cmd->add_option("workflow_id", inv.workflow_id, "Caller-chosen id: [A-Za-z0-9_:=@+-]{1,128}")
      ->required();
  cmd->add_option("--input", inv.input_text, "Workflow input, any JSON value");
  cmd->add_option("--request-id", inv.request_id, "Makes a retry of this start idempotent");
  cmd->add_flag("--wait", inv.wait, "Then wait for the workflow's result and print it");
  cmd->add_option("--run-timeout", inv.run_timeout_text,
                  "End the run as timed_out this long after it starts, e.g. 30s, 5m, 1500ms, "
                  "2h, 7d (default: never)");
  cmd->add_option("--id-reuse", inv.id_reuse_text,
                  "If the id's last run is closed: allow a new run (default), failed-only "
                  "(unless it completed) or reject");
  cmd->add_option("--timeout", inv.timeout_text,
                  "How long to wait for the worker's reply, and for the result with --wait "
                  "(default 30s)");
  cmd->callback([&inv] { inv.command = Command::kStart; });
}

void AddSignalWithStart(CLI::App& app, Invocation& inv) {
  auto* cmd = app.add_subcommand(
      "signal-with-start",
      "Signal a workflow, starting it first if it is not running, and wait until recorded");
  cmd->add_option("workflow_type", inv.workflow_type, "Workflow type of a run it starts")
      ->required();
  cmd->add_option("workflow_id", inv.workflow_id, "Workflow id")->required();
  cmd->add_option("signal", inv.signal_name, "Signal name")->required();
  cmd->add_option("--input", inv.input_text, "Input of a run it starts, any JSON value");
  cmd->add_option("--signal-input", inv.signal_input_text, "Signal input, any JSON value");
  cmd->add_option("--request-id", inv.request_id, "Makes a retry of this request idempotent");
  cmd->add_option("--id-reuse", inv.id_reuse_text,
                  "If the id's last run is closed: allow a new run (default), failed-only or "
                  "reject");
  cmd->add_option("--run-timeout", inv.run_timeout_text,
                  "Run timeout of a run it starts, e.g. 5m, 7d (default: never)");
  cmd->add_option("--timeout", inv.timeout_text, "How long to wait for the reply (default 30s)");
  cmd->callback([&inv] { inv.command = Command::kSignalWithStart; });
}

void AddQueryCommand(CLI::App& app, Invocation& inv) {
  auto* cmd = app.add_subcommand("query", "Ask a running workflow a query; prints its answer");
  cmd->add_option("workflow_id", inv.workflow_id, "Workflow id")->required();
  cmd->add_option("name", inv.query_name, "Query name")->required();
  cmd->add_option("--args", inv.args_text, "Query arguments, any JSON value");
  cmd->add_option("--timeout", inv.timeout_text,
                  "How long the workflow may take to answer (default 5s, at most 60s)");
  cmd->callback([&inv] { inv.command = Command::kQuery; });
}

void AddList(CLI::App& app, Invocation& inv) {
  auto* cmd = app.add_subcommand(
      "list", "List workflows: one page from every worker (at most --limit each), merged by id");
  cmd->add_option("--status", inv.statuses_text,
                  "Comma-separated: running, completed, failed, cancelled, terminated, "
                  "timed_out (default: all)");
  cmd->add_option("--type", inv.workflow_type, "Only this workflow type");
  cmd->add_option("--since", inv.since_text,
                  "Started at or after: RFC 3339 (2026-11-21T12:00:00Z) or a duration ago (1h)");
  cmd->add_option("--until", inv.until_text, "Started before: RFC 3339 or a duration ago");
  cmd->add_option("--limit", inv.limit, "At most this many per worker (default 100, max 1000)");
  cmd->add_option("--timeout", inv.timeout_text,
                  "Longest wait for replies (default 2s; stops 300 ms after the last reply)");
  cmd->callback([&inv] { inv.command = Command::kList; });
}

void AddSignal(CLI::App& app, Invocation& inv) {
  auto* cmd = app.add_subcommand("signal", "Send a signal and wait until the worker recorded it");
  cmd->add_option("workflow_id", inv.workflow_id, "Workflow id")->required();
  cmd->add_option("name", inv.signal_name, "Signal name")->required();
  cmd->add_option("--input", inv.input_text, "Signal input, any JSON value");
  cmd->add_option("--request-id", inv.request_id, "Makes a retry of this signal idempotent");
  cmd->add_option("--timeout", inv.timeout_text, "How long to wait for the reply (default 30s)");
  cmd->callback([&inv] { inv.command = Command::kSignal; });
}

void AddStop(CLI::App& app, Invocation& inv, const char* name, const char* help, Command command) {
  auto* cmd = app.add_subcommand(name, help);
  cmd->add_option("workflow_id", inv.workflow_id, "Workflow id")->required();
  cmd->add_option("--reason", inv.reason, "Why; recorded in the history and shown by result");
  cmd->add_option("--request-id", inv.request_id, "Makes a retry of this request idempotent");
  cmd->add_option("--timeout", inv.timeout_text, "How long to wait for the reply (default 30s)");
  cmd->callback([&inv, command] { inv.command = command; });
}

void AddQuery(CLI::App& app, Invocation& inv, const char* name, const char* help, Command command,
              const char* timeout_help) {
  auto* cmd = app.add_subcommand(name, help);
  cmd->add_option("workflow_id", inv.workflow_id, "Workflow id")->required();
  cmd->add_option("--timeout", inv.timeout_text, timeout_help);
  cmd->callback([&inv, command] { inv.command = command; });
}

void AddPubSub(CLI::App& app, Invocation& inv) {
  auto* pub = app.add_subcommand(
      "pub", "Publish raw JSON through JetStream with Content-Type: application/json");
  pub->add_option("subject", inv.subject, "e.g. aion.wf.order-42.start")->required();
  pub->add_option("json", inv.body_text, "The message: the protobuf JSON mapping")->required();
  pub->add_option("--timeout", inv.timeout_text, "How long to wait for JetStream (default 10s)");
  pub->callback([&inv] { inv.command = Command::kPub; });

  auto* sub = app.add_subcommand("sub", "Print messages on a subject as they arrive (core NATS)");
  sub->add_option("subject", inv.subject, "Subject, wildcards allowed (default <prefix>.evt.>)");
  sub->add_option("--count", inv.count, "Exit after this many messages");
  sub->add_option("--timeout", inv.timeout_text, "Exit after this long (default: never)");
  sub->callback([&inv] { inv.command = Command::kSub; });
}

void AddNatsConfig(CLI::App& app, Invocation& inv) {
  auto* cmd = app.add_subcommand(
      "nats-config",
      "Print the nats-server config fragment (subject mappings) a deployment needs; "
      "offline, sends nothing");
  cmd->add_option("--partitions", inv.partitions,
                  "P: the workers' --partition-count, fixed when the streams are created")
      ->check(CLI::Range(1u, 4096u))
      ->capture_default_str();
  cmd->callback([&inv] { inv.command = Command::kNatsConfig; });
}

// Default --timeout per command when the user gave none.
std::string DefaultTimeout(Command c) {
  switch (c) {
    case Command::kStart:
    case Command::kSignal:
    case Command::kSignalWithStart:
    case Command::kCancel:
    case Command::kTerminate:
    case Command::kResult:
      return "30s";
    case Command::kQuery:
      return "5s";
    case Command::kList:
      return "2s";
    case Command::kDescribe:
    case Command::kHistory:
    case Command::kPub:
      return "10s";
    case Command::kSub:
    case Command::kNatsConfig:
      return "";
  }
  return "30s";
}

}  // namespace

std::optional<int> ParseCommandLine(int argc, char** argv, Invocation& inv) {
  CLI::App app{"aion: command-line client of the Aion durable workflow engine", "aion"};
  app.footer(kFooter);
  app.require_subcommand(1);
  app.set_version_flag("--version", "aion " + std::string(Version()), "Print the version and exit");
  app.fallthrough();  // global flags may also follow the command
  inv.nats_url = kDefaultNatsUrl;
  app.add_option("--nats", inv.nats_url, "NATS server URL")
      ->envname("AION_NATS_URL")
      ->capture_default_str();
  app.add_option("--prefix", inv.prefix, "Subject prefix")
      ->envname("AION_PREFIX")
      ->capture_default_str();
  app.add_flag("--json", inv.json, "Print one JSON object per result (protobuf JSON mapping)");
  AddStart(app, inv);
  AddSignal(app, inv);
  AddSignalWithStart(app, inv);
  AddStop(app, inv, "cancel",
          "Ask a workflow to cancel (its code may clean up first) and wait until recorded",
          Command::kCancel);
  AddStop(app, inv, "terminate",
          "End a workflow at once as terminated (its code is not asked) and wait until recorded",
          Command::kTerminate);
  AddQuery(app, inv, "describe", "Show a workflow's current state", Command::kDescribe,
           "How long to wait for the reply (default 10s)");
  AddQuery(app, inv, "history", "Print a workflow's history, one event per line", Command::kHistory,
           "How long to wait for each reply (default 10s)");
  AddQuery(app, inv, "result", "Wait for a workflow to close and print its result",
           Command::kResult, "How long to wait for the run to close (default 30s)");
  AddQueryCommand(app, inv);
  AddList(app, inv);
  AddPubSub(app, inv);
  AddNatsConfig(app, inv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints the help text or the usage error
    return rc == 0 ? kExitOk : kExitUsage;
  }
  return std::nullopt;
}

Result<std::chrono::milliseconds> ParseDuration(std::string_view text, std::int64_t max_ms) {
  std::int64_t n = 0;
  const char* end = text.data() + text.size();
  auto [rest, ec] = std::from_chars(text.data(), end, n);
  if (ec != std::errc() || n <= 0) {
    return InvalidArgument("invalid duration '" + std::string(text) +
                           "': expected a positive number with unit ms, s, m or h, e.g. 30s");
  }
  const std::string_view unit(rest, static_cast<std::size_t>(end - rest));
  std::int64_t ms_per_unit = 0;
  if (unit == "ms") ms_per_unit = 1;
  if (unit == "s" || unit.empty()) ms_per_unit = 1000;
  if (unit == "m") ms_per_unit = 60'000;
  if (unit == "h") ms_per_unit = 3'600'000;
  if (unit == "d" && max_ms > 86'400'000) ms_per_unit = 86'400'000;
  // Waits are capped at 24 h: ResultRequest.timeout_ms is a uint32 and nobody
  // waits longer in a shell. Run timeouts may be longer (and use d).
  if (ms_per_unit == 0 || n > max_ms / ms_per_unit) {
    const bool days = max_ms > 86'400'000;
    return InvalidArgument("invalid duration '" + std::string(text) + "': use ms, s, m, h" +
                           (days ? ", d" : "") + ", at most " +
                           (days ? std::to_string(max_ms / 86'400'000) + "d" : "24h"));
  }
  return std::chrono::milliseconds(n * ms_per_unit);
}

Result<int> ParseIdReuse(std::string_view text) {
  if (text.empty() || text == "allow")
    return static_cast<int>(wire::ID_REUSE_POLICY_ALLOW_DUPLICATE);
  if (text == "failed-only") {
    return static_cast<int>(wire::ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY);
  }
  if (text == "reject") return static_cast<int>(wire::ID_REUSE_POLICY_REJECT_DUPLICATE);
  return InvalidArgument("--id-reuse '" + std::string(text) +
                         "': expected allow, failed-only or reject");
}

namespace {
// Reads exactly `digits` decimal digits at text[pos], advancing pos.
bool Digits(std::string_view text, std::size_t& pos, int digits, int& out) {
  if (pos + static_cast<std::size_t>(digits) > text.size()) return false;
  out = 0;
  for (int i = 0; i < digits; ++i) {
    const char c = text[pos++];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

bool Expect(std::string_view text, std::size_t& pos, std::string_view one_of) {
  if (pos >= text.size() || one_of.find(text[pos]) == std::string_view::npos) return false;
  ++pos;
  return true;
}

// RFC 3339: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), in microseconds.
std::optional<std::int64_t> ParseRfc3339(std::string_view t) {
  std::size_t i = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!Digits(t, i, 4, year) || !Expect(t, i, "-") || !Digits(t, i, 2, month) ||
      !Expect(t, i, "-") || !Digits(t, i, 2, day) || !Expect(t, i, "Tt ") ||
      !Digits(t, i, 2, hour) || !Expect(t, i, ":") || !Digits(t, i, 2, minute) ||
      !Expect(t, i, ":") || !Digits(t, i, 2, second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  std::int64_t micros = 0;
  if (i < t.size() && t[i] == '.') {
    ++i;
    int n = 0;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
      if (n < 6) micros = micros * 10 + (t[i] - '0');
      ++n;
      ++i;
    }
    if (n == 0) return std::nullopt;
    for (; n < 6; ++n) micros *= 10;
  }
  std::int64_t offset_s = 0;
  if (i < t.size() && (t[i] == 'Z' || t[i] == 'z')) {
    ++i;
  } else if (i < t.size() && (t[i] == '+' || t[i] == '-')) {
    const int sign = t[i++] == '-' ? -1 : 1;
    int oh = 0, om = 0;
    if (!Digits(t, i, 2, oh) || !Expect(t, i, ":") || !Digits(t, i, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_s = sign * (oh * 3600 + om * 60);
  } else {
    return std::nullopt;
  }
  if (i != t.size()) return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  const std::int64_t secs = static_cast<std::int64_t>(timegm(&tm)) - offset_s;
  if (secs < 0) return std::nullopt;
  return secs * 1'000'000 + micros;
}
}  // namespace

Result<std::int64_t> ParseTimeArgument(std::string_view what, std::string_view text,
                                       std::int64_t now_us) {
  if (text.size() > 4 && text[4] == '-') {
    auto at = ParseRfc3339(text);
    if (!at) {
      return InvalidArgument(std::string(what) + " '" + std::string(text.substr(0, 80)) +
                             "' is not an RFC 3339 time such as 2026-11-21T12:00:00Z");
    }
    return *at;
  }
  auto ago = ParseDuration(text, bus::kMaxRunTimeoutMs);
  if (!ago.ok()) {
    return InvalidArgument(std::string(what) + ": " + ago.status().message() +
                           " (or an RFC 3339 time such as 2026-11-21T12:00:00Z)");
  }
  return std::max<std::int64_t>(1, now_us - ago->count() * 1000);
}

Result<Json> ParseJsonArgument(std::string_view what, std::string_view text) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    return InvalidArgument(std::string(what) + " is not valid JSON (byte " +
                           std::to_string(e.byte) + "): " + std::string(text.substr(0, 80)));
  }
}

Status Validate(Invocation& inv) {
  AION_RETURN_IF_ERROR(bus::ValidatePrefix(inv.prefix));
  if (inv.timeout_text.empty()) inv.timeout_text = DefaultTimeout(inv.command);
  if (!inv.timeout_text.empty()) {
    auto timeout = ParseDuration(inv.timeout_text);
    if (!timeout.ok()) return timeout.status();
    inv.timeout = *timeout;
  }
  if (inv.count < 0) return InvalidArgument("--count must not be negative");
  switch (inv.command) {
    case Command::kStart:
    case Command::kSignalWithStart: {
      AION_RETURN_IF_ERROR(ValidateName("workflow type", inv.workflow_type));
      if (inv.command == Command::kSignalWithStart) {
        AION_RETURN_IF_ERROR(ValidateName("signal name", inv.signal_name));
        if (inv.signal_input_text) {
          auto signal_input = ParseJsonArgument("--signal-input", *inv.signal_input_text);
          if (!signal_input.ok()) return signal_input.status();
          inv.signal_input = std::move(*signal_input);
        }
      }
      auto reuse = ParseIdReuse(inv.id_reuse_text);
      if (!reuse.ok()) return reuse.status();
      inv.id_reuse = *reuse;
      if (!inv.run_timeout_text.empty()) {
        auto run_timeout = ParseDuration(inv.run_timeout_text, bus::kMaxRunTimeoutMs);
        if (!run_timeout.ok()) {
          return InvalidArgument("--run-timeout: " + run_timeout.status().message());
        }
        inv.run_timeout = *run_timeout;
      }
      break;
    }
    case Command::kQuery:
      AION_RETURN_IF_ERROR(ValidateName("query name", inv.query_name));
      if (inv.timeout > std::chrono::milliseconds(60000)) {
        return InvalidArgument("--timeout of a query is at most 60s");
      }
      if (inv.args_text) {
        auto args = ParseJsonArgument("--args", *inv.args_text);
        if (!args.ok()) return args.status();
        inv.args = std::move(*args);
      }
      break;
    case Command::kList: {
      std::string_view rest = inv.statuses_text;
      while (!rest.empty()) {
        const std::size_t comma = rest.find(',');
        const std::string_view name = rest.substr(0, comma);
        auto status = bus::ParseWorkflowStatus(name);
        if (!status.ok()) return InvalidArgument("--status: " + status.status().message());
        inv.statuses.push_back(WorkflowStatusName(*status));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
        if (rest.empty()) return InvalidArgument("--status ends with a comma");
      }
      if (!inv.workflow_type.empty()) {
        AION_RETURN_IF_ERROR(ValidateName("--type", inv.workflow_type));
      }
      const std::int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count();
      if (!inv.since_text.empty()) {
        auto since = ParseTimeArgument("--since", inv.since_text, now_us);
        if (!since.ok()) return since.status();
        inv.started_after_us = *since;
      }
      if (!inv.until_text.empty()) {
        auto until = ParseTimeArgument("--until", inv.until_text, now_us);
        if (!until.ok()) return until.status();
        inv.started_before_us = *until;
        if (inv.started_before_us <= inv.started_after_us) {
          return InvalidArgument("--until must be later than --since");
        }
      }
      if (inv.limit > bus::kMaxListLimit) {
        return InvalidArgument("--limit is at most " + std::to_string(bus::kMaxListLimit));
      }
      return Status::Ok();
    }
    case Command::kSignal:
      AION_RETURN_IF_ERROR(ValidateName("signal name", inv.signal_name));
      break;
    case Command::kCancel:
    case Command::kTerminate:
      if (inv.reason.size() > bus::kMaxReasonBytes) {
        return InvalidArgument("--reason is " + std::to_string(inv.reason.size()) +
                               " bytes; at most " + std::to_string(bus::kMaxReasonBytes) +
                               " are allowed");
      }
      break;
    case Command::kPub: {
      if (inv.subject.empty()) return InvalidArgument("subject is empty");
      auto body = ParseJsonArgument("message", inv.body_text);
      if (!body.ok()) return body.status();
      if (!body->is_object()) return InvalidArgument("message must be a JSON object");
      return Status::Ok();
    }
    case Command::kSub:
      if (inv.subject.empty()) inv.subject = inv.prefix + ".evt.>";
      return Status::Ok();
    case Command::kNatsConfig:
      if (inv.partitions < 1 || inv.partitions > 4096) {
        return InvalidArgument("--partitions must be 1..4096");
      }
      return Status::Ok();
    default:
      break;
  }
  AION_RETURN_IF_ERROR(ValidateWorkflowId(inv.workflow_id));
  if (!inv.request_id.empty()) AION_RETURN_IF_ERROR(ValidateName("--request-id", inv.request_id));
  if (inv.input_text) {
    auto input = ParseJsonArgument("--input", *inv.input_text);
    if (!input.ok()) return input.status();
    inv.input = std::move(*input);
  }
  return Status::Ok();
}

}  // namespace aion::cli
