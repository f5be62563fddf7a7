#include "aion/examples/reference_workflows.h"

#include <chrono>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <utility>
#include <vector>

#include "aion/engine/ids.h"

namespace aion::examples {
namespace {

using namespace std::chrono_literals;

// A stable id for a receipt: the same input gives the same id.
std::string DerivedId(const std::string& kind, const Json& input) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx",
                static_cast<unsigned long long>(Fnv1a64(kind + "\n" + input.dump())));
  return kind + "-" + buf;
}

Json Field(const Json& object, const char* key) {
  return object.is_object() && object.contains(key) ? object.at(key) : Json(nullptr);
}

// One compensating activity of a saga.
struct Compensation {
  std::string activity;
  Json input;
};

Task<void> Compensate(Context& ctx, std::vector<Compensation> steps,
                      const ActivityOptions& options) {
  for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
    ctx.log().info("compensating with " + it->activity);
    co_await ctx.activity<Json>(it->activity, it->input, options);
  }
}

}  // namespace

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

Task<Json> StepsSignal(Context& ctx, Json input) {
  if (!input.is_object()) throw std::invalid_argument("steps_signal expects a JSON object");
  const std::int64_t steps = input.value("steps", std::int64_t{1});
  if (steps < 0 || steps > 10000) throw std::invalid_argument("steps must be in [0, 10000]");
  ActivityOptions options;
  options.task_queue = input.value("remote", false) ? "echo" : "";
  options.start_to_close = 30s;
  for (std::int64_t i = 0; i < steps; ++i) {
    // Built outside the co_await: GCC 12 cannot keep a braced Json with
    // string literals alive across a suspension point.
    const Json step{{"step", i}};
    co_await ctx.activity<Json>("echo", step, options);
  }
  Json approved_by = nullptr;
  if (input.value("approval", true)) {
    auto approve = ctx.signal<Json>("approve");
    approved_by = co_await approve;
  }
  co_return Json{{"steps", steps}, {"approved_by", approved_by}};
}

Task<Json> Order(Context& ctx, Json order) {
  if (!order.is_object()) throw std::invalid_argument("order expects a JSON object");
  const auto approval_timeout =
      std::chrono::milliseconds(order.value("approval_timeout_ms", std::int64_t{60000}));
  ActivityOptions options;
  options.task_queue = order.value("task_queue", std::string());
  options.start_to_close = 10s;
  options.retry.initial_interval = 200ms;
  options.retry.maximum_attempts = 5;

  const std::int64_t hold_ms = order.value("hold_ms", std::int64_t{0});
  if (hold_ms < 0) throw std::invalid_argument("hold_ms must not be negative");
  std::vector<Compensation> undo;
  Json receipt{{"status", "shipped"}};
  std::string stage = "reserving";
  ctx.on_query("stage", [&stage](const Json&) { return Json(stage); });
  std::exception_ptr failure;  // co_await is not allowed in a catch block
  try {
    Json hold = co_await ctx.activity<Json>("reserve", order, options);
    undo.push_back({"release", hold});
    receipt["reservation"] = hold;
    stage = "charging";
    const Json payment{{"reservation_id", Field(hold, "reservation_id")},
                       {"card", Field(order, "card")},
                       {"amount", Field(order, "amount")}};
    Json charge = co_await ctx.activity<Json>("charge", payment, options);
    undo.push_back({"refund", charge});
    receipt["charge"] = charge;
    if (hold_ms > 0) {  // a durable pause between charging and approval
      stage = "holding";
      auto pause = ctx.sleep(std::chrono::milliseconds(hold_ms));
      co_await pause;
    }
    stage = "awaiting approval";
    auto approval = co_await ctx.signal<Json>("approve").within(approval_timeout);
    if (!approval) {
      stage = "compensating";
      co_await Compensate(ctx, std::move(undo), options);
      co_return Json{{"status", "expired"}, {"reservation", hold}, {"charge", charge}};
    }
    receipt["approved_by"] = *approval;
    stage = "shipping";
    const Json parcel{{"reservation_id", Field(hold, "reservation_id")},
                      {"sku", Field(order, "sku")},
                      {"qty", Field(order, "qty")}};
    receipt["shipment"] = co_await ctx.activity<Json>("ship", parcel, options);
  } catch (...) {
    failure = std::current_exception();
  }
  if (failure) {
    // Failed or cancelled: undo what was done, then end the run the same way.
    stage = "compensating";
    co_await Compensate(ctx, std::move(undo), options);
    std::rethrow_exception(failure);
  }
  co_return receipt;
}

Task<Json> Fanout(Context& ctx, Json input) {
  if (!input.is_object()) throw std::invalid_argument("fanout expects a JSON object");
  const std::int64_t count = input.value("children", std::int64_t{1});
  if (count < 0 || count > 1000) throw std::invalid_argument("children must be in [0, 1000]");
  const std::string type = input.value("type", std::string("noop"));
  const Json child_input = Field(input, "input");
  ChildOptions options;
  const std::string policy = input.value("policy", std::string("terminate"));
  if (policy == "request_cancel") {
    options.parent_close_policy = ParentClosePolicy::kRequestCancel;
  } else if (policy == "abandon") {
    options.parent_close_policy = ParentClosePolicy::kAbandon;
  } else if (policy != "terminate") {
    throw std::invalid_argument("policy must be terminate, request_cancel or abandon");
  }
  std::vector<ChildWorkflow<Json>> children;
  for (std::int64_t i = 1; i <= count; ++i) {
    options.workflow_id = ctx.workflow_id() + "-" + std::to_string(i);
    children.push_back(ctx.child<Json>(type, child_input, options));
  }
  Json results = Json::array();
  if (!input.value("await", true)) {
    auto finish = ctx.signal<Json>("finish");
    co_await finish;
    co_return Json{{"results", results}};
  }
  for (auto& child : children) {
    Json output = co_await child;
    results.push_back(std::move(output));
  }
  co_return Json{{"results", results}};
}

Status RegisterReferenceWorkflows(WorkflowRegistry& registry) {
  AION_RETURN_IF_ERROR(registry.workflow("noop", &Noop));
  AION_RETURN_IF_ERROR(registry.workflow("timer_signal", &TimerSignal));
  AION_RETURN_IF_ERROR(registry.workflow("steps_signal", &StepsSignal));
  AION_RETURN_IF_ERROR(registry.workflow("fanout", &Fanout));
  return registry.workflow("order", &Order);
}

Status RegisterReferenceActivities(ActivityRegistry& registry) {
  AION_RETURN_IF_ERROR(registry.activity("echo", [](ActivityContext&, Json in) { return in; }));
  AION_RETURN_IF_ERROR(registry.activity("reserve", [](ActivityContext&, Json order) {
    return Json{{"reservation_id", DerivedId("res", order)},
                {"sku", Field(order, "sku")},
                {"qty", order.is_object() ? order.value("qty", Json(1)) : Json(1)}};
  }));
  AION_RETURN_IF_ERROR(registry.activity("charge", [](ActivityContext&, Json in) {
    if (Field(in, "card") == "declined") throw ActivityError("card declined", "CardDeclined", true);
    return Json{{"charge_id", DerivedId("ch", in)}, {"amount", Field(in, "amount")}};
  }));
  AION_RETURN_IF_ERROR(registry.activity("ship", [](ActivityContext&, Json in) {
    return Json{{"shipment_id", DerivedId("shp", in)},
                {"sku", Field(in, "sku")},
                {"qty", Field(in, "qty")},
                {"reservation_id", Field(in, "reservation_id")}};
  }));
  AION_RETURN_IF_ERROR(registry.activity("release", [](ActivityContext&, Json hold) {
    return Json{{"released", Field(hold, "reservation_id")}};
  }));
  AION_RETURN_IF_ERROR(registry.activity("refund", [](ActivityContext&, Json charge) {
    return Json{{"refund_id", DerivedId("rf", charge)}, {"charge_id", Field(charge, "charge_id")}};
  }));
  return registry.activity("flaky", [](ActivityContext& ctx, Json in) {
    const std::int64_t fail_times = in.is_object() ? in.value("fail_times", std::int64_t{1}) : 1;
    if (static_cast<std::int64_t>(ctx.attempt()) <= fail_times) {
      throw ActivityError("attempt " + std::to_string(ctx.attempt()) + " of the first " +
                              std::to_string(fail_times) + " fails",
                          "Flaky");
    }
    return Json{{"attempt", ctx.attempt()}};
  });
}

}  // namespace aion::examples
