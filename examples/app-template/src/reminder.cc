#include "reminder.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace reminder {

aion::Task<aion::Json> Remind(aion::Context& ctx, aion::Json input) {
  // Workflow code is replayed after a crash: time, randomness and I/O come
  // from ctx and activities only, never from the system directly.
  std::string state = "waiting";
  ctx.on_query("state", [&state](const aion::Json&) { return aion::Json(state); });
  // 64-bit defaults: value() converts to the default's type, and 30 days of
  // milliseconds do not fit an int.
  const auto delay = std::chrono::milliseconds(input.value("delay_ms", std::int64_t{1000}));
  const auto ack_timeout =
      std::chrono::milliseconds(input.value("ack_timeout_ms", std::int64_t{86400000}));

  // GCC 12 mishandles temporaries inside co_await expressions: build each
  // awaitable in a named variable, then co_await it.
  auto wait = ctx.sleep(delay);  // a durable timer: survives restarts
  co_await wait;
  state = "composing";
  auto composing = ctx.activity<std::string>("compose", input);
  std::string text = co_await composing;
  state = "awaiting ack";
  auto ack_or_timeout = ctx.signal<aion::Json>("ack").within(ack_timeout);
  std::optional<aion::Json> ack = co_await ack_or_timeout;
  state = "done";
  aion::Json result;
  result["text"] = text;
  result["acknowledged"] = ack.has_value();
  result["ack"] = ack ? *ack : aion::Json();
  co_return result;
}

std::string Compose(aion::ActivityContext&, aion::Json input) {
  return "Reminder for " + input.value("to", std::string("you")) + ": it is time.";
}

void Register(aion::WorkflowRegistry& workflows, aion::ActivityRegistry& activities) {
  (void)workflows.workflow("reminder", &Remind, {.version = "1"});
  (void)activities.activity("compose", &Compose);
}

}  // namespace reminder
