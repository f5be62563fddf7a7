#include "args.h"

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdlib>

#include "aion/bus/codec.h"
#include "aion/bus/subjects.h"
#include "aion/engine/ids.h"

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

Environment: AION_NATS_URL (default nats://127.0.0.1:4222), AION_PREFIX (default aion).
Examples:
  aion start noop demo-1 --input '{"hello":"world"}' --wait
  aion signal order-42 approve --input '{"by":"ana"}'
  aion cancel order-42 --reason 'customer asked'
  aion --json history order-42
  aion pub aion.wf.order-43.start '{"workflow_type":"noop","input":{"a":1}}'
  aion sub 'aion.evt.>'
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
  cmd->add_option("--timeout", inv.timeout_text,
                  "How long to wait for the worker's reply, and for the result with --wait "
                  "(default 30s)");
  cmd->callback([&inv] { inv.command = Command::kStart; });
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

// Default --timeout per command when the user gave none.
std::string DefaultTimeout(Command c) {
  switch (c) {
    case Command::kStart:
    case Command::kSignal:
    case Command::kCancel:
    case Command::kTerminate:
    case Command::kResult:
      return "30s";
    case Command::kDescribe:
    case Command::kHistory:
    case Command::kPub:
      return "10s";
    case Command::kSub:
      return "";
  }
  return "30s";
}

}  // namespace

std::optional<int> ParseCommandLine(int argc, char** argv, Invocation& inv) {
  CLI::App app{"aion: command-line client of the Aion durable workflow engine", "aion"};
  app.footer(kFooter);
  app.require_subcommand(1);
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
  AddPubSub(app, inv);
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
      AION_RETURN_IF_ERROR(ValidateName("workflow type", inv.workflow_type));
      if (!inv.run_timeout_text.empty()) {
        auto run_timeout = ParseDuration(inv.run_timeout_text, bus::kMaxRunTimeoutMs);
        if (!run_timeout.ok()) {
          return InvalidArgument("--run-timeout: " + run_timeout.status().message());
        }
        inv.run_timeout = *run_timeout;
      }
      break;
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
