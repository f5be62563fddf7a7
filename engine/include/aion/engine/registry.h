// WorkflowRegistry: the workflow types a worker can run, by name and version.
//
// Register every type before the Engine opens; afterwards the registry is
// read-only and may be read from any thread. A workflow is a coroutine
// `Task<Out>(Context&, In)` where In and Out convert to and from JSON
// (nlohmann::json's to_json/from_json), or are Json or Payload themselves.
#pragma once

#include <exception>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "aion/engine/context.h"
#include "aion/engine/payload.h"
#include "aion/engine/root_task.h"
#include "aion/engine/status.h"
#include "aion/engine/task.h"

namespace aion {

struct WorkflowOptions {
  // Code version recorded in WorkflowStarted; runs stay pinned to it. Several
  // versions of one type may be registered side by side: new runs start on
  // the one registered last (or marked `current`), open runs replay on the
  // version they started with.
  std::string version = "1";
  bool current = false;  // new runs start on this version even if not the last
};

// A registered workflow type with its inputs and outputs as payloads.
struct WorkflowDefinition {
  std::string type;
  WorkflowOptions options;
  // A lambda returning Task<Payload> (or any Task<Out>) will do.
  std::function<RootTask(Context&, Payload)> run;
};

namespace detail {
// A root task that fails with `error` when it is first run.
inline Task<Payload> FailedStart(std::exception_ptr error) {
  std::rethrow_exception(error);
  co_return Payload();
}

// When the workflow takes its input by reference, the converted input must
// outlive the body: it is kept in this frame.
template <typename Out, typename In, typename Fn>
Task<Out> InvokeKeepingInput(Fn fn, Context& ctx, Payload input) {
  using Arg = std::remove_cvref_t<In>;
  Arg arg = FromPayload<Arg>(input);
  Payload().Swap(&input);  // converted: the frame need not keep it twice
  Task<Out> body = fn(ctx, arg);
  if constexpr (std::is_void_v<Out>) {
    co_await body;
  } else {
    Out out = co_await body;
    co_return out;
  }
}

template <typename Out, typename In, typename Fn>
RootTask InvokeWorkflow(Fn fn, Context& ctx, Payload input) {
  if constexpr (std::is_reference_v<In>) {
    return InvokeKeepingInput<Out, In>(fn, ctx, std::move(input));
  } else {
    // The input is converted and moved into the body's frame now (the body
    // itself starts when the root task is first resumed), so the payload
    // does not stay in a wrapper frame for the life of the run. A failed
    // conversion fails the run when it starts, as it did inside the body.
    try {
      return fn(ctx, FromPayload<std::remove_cv_t<In>>(input));
    } catch (...) {
      return FailedStart(std::current_exception());
    }
  }
}
}  // namespace detail

class WorkflowRegistry {
 public:
  // Registers `fn` under `type`; kInvalidArgument for a bad or duplicate name.
  template <typename Out, typename In>
  Status workflow(std::string type, Task<Out> (*fn)(Context&, In), WorkflowOptions options = {}) {
    auto run = [fn](Context& ctx, Payload input) {
      return detail::InvokeWorkflow<Out, In>(fn, ctx, std::move(input));
    };
    return Add(WorkflowDefinition{std::move(type), std::move(options), std::move(run)});
  }

  // kInvalidArgument for a bad name, an empty body or a (type, version) that
  // is already registered; the registry also keeps the first such error.
  Status Add(WorkflowDefinition definition);
  // OK, or the first registration that failed: a program that ignores the
  // Status of each call still learns of it before it serves (worker::Main).
  const Status& status() const { return first_error_; }
  bool empty() const { return definitions_.empty(); }
  // The version new runs of `type` start on; nullptr if `type` is not registered.
  const WorkflowDefinition* Find(std::string_view type) const;
  // Exactly that version; nullptr if this registry lacks it.
  const WorkflowDefinition* Find(std::string_view type, std::string_view version) const;
  // "v1, v2" for error messages.
  std::string Versions(std::string_view type) const;
  std::vector<std::string> Types() const;

 private:
  struct TypeVersions {
    std::map<std::string, WorkflowDefinition, std::less<>> by_version;
    std::string current;
  };
  Status Insert(WorkflowDefinition definition);

  std::map<std::string, TypeVersions, std::less<>> definitions_;
  Status first_error_;
};

}  // namespace aion
