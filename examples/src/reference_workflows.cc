#include "aion/examples/reference_workflows.h"

#include <chrono>
#include <stdexcept>

namespace aion::examples {

Task<Json> Noop(Context& ctx, Json input) { co_return input; }

Task<Json> TimerSignal(Context& ctx, Json input) {
  if (!input.is_object()) throw std::invalid_argument("timer_signal expects a JSON object");
  const std::int64_t sleep_ms = input.value("sleep_ms", std::int64_t{0});
  const std::string signal = input.value("signal", std::string("go"));
  if (sleep_ms < 0) throw std::invalid_argument("sleep_ms must not be negative");
  co_await ctx.sleep(std::chrono::milliseconds(sleep_ms));
  ctx.log().info("slept " + std::to_string(sleep_ms) + " ms, waiting for signal '" + signal + "'");
  Json got = co_await ctx.signal<Json>(signal);
  co_return Json{{"slept_ms", sleep_ms}, {"signal", got}};
}

Status RegisterReferenceWorkflows(WorkflowRegistry& registry) {
  AION_RETURN_IF_ERROR(registry.workflow("noop", &Noop));
  return registry.workflow("timer_signal", &TimerSignal);
}

}  // namespace aion::examples
