// Activities: side effects run outside workflow code, at least once, with
// their result recorded (DESIGN §1).
//
// ActivityOptions/RetryPolicy are what workflow code passes to
// `ctx.activity<T>(...)`. ActivityRegistry holds the local activities of a
// worker: plain C++ functions the engine runs on its bounded activity pool,
// never on a thread that runs workflow code. Register every activity before
// the Engine opens; afterwards the registry is read-only, safe from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "aion/engine/clock.h"
#include "aion/engine/payload.h"
#include "aion/engine/status.h"

namespace aion {

// Zero fields take the defaults: 1 s initial interval, coefficient 2.0,
// maximum interval 100 x initial, unlimited attempts.
struct RetryPolicy {
  Micros initial_interval{0};
  double backoff_coefficient = 0;
  Micros maximum_interval{0};
  std::uint32_t maximum_attempts = 0;  // 0 = unlimited; 1 = no retries
  std::vector<std::string> non_retryable_error_types;
};

struct ActivityOptions {
  std::string task_queue;       // "" = a local activity registered on the worker
  Micros start_to_close{0};     // per attempt; 0 = none
  Micros schedule_to_close{0};  // all attempts together; 0 = none
  Micros heartbeat_timeout{0};  // 0 = none
  RetryPolicy retry;
};

// Thrown by an activity to fail its attempt with a type the retry policy can
// match; any other exception fails it with its C++ type name. A failure with
// non_retryable set is final whatever the policy says.
class ActivityError : public std::runtime_error {
 public:
  explicit ActivityError(const std::string& message, std::string type = "ActivityError",
                         bool non_retryable = false)
      : std::runtime_error(message), type_(std::move(type)), non_retryable_(non_retryable) {}
  const std::string& type() const { return type_; }
  bool non_retryable() const { return non_retryable_; }

 private:
  std::string type_;
  bool non_retryable_;
};

// What a running local activity attempt may use. Owned by the engine; valid
// for the duration of the call, used from the activity's pool thread.
class ActivityContext {
 public:
  using HeartbeatFn = std::function<bool(const Payload&)>;
  ActivityContext(std::string workflow_id, std::string run_id, std::string activity_id,
                  std::uint32_t attempt, HeartbeatFn heartbeat, const std::atomic<bool>* cancelled)
      : workflow_id_(std::move(workflow_id)),
        run_id_(std::move(run_id)),
        activity_id_(std::move(activity_id)),
        attempt_(attempt),
        heartbeat_(std::move(heartbeat)),
        cancelled_(cancelled) {}

  const std::string& workflow_id() const { return workflow_id_; }
  const std::string& run_id() const { return run_id_; }
  const std::string& activity_id() const { return activity_id_; }
  std::uint32_t attempt() const { return attempt_; }
  // Records progress `details` (shown by describe) and resets the heartbeat
  // timeout. False: the attempt was cancelled, timed out or superseded;
  // stop and return (its result will be dropped).
  bool heartbeat(const Json& details = nullptr) { return heartbeat_(JsonPayload(details)); }
  // The workflow stopped waiting for this attempt; stop cooperatively.
  bool cancelled() const { return cancelled_ != nullptr && cancelled_->load(); }

 private:
  std::string workflow_id_;
  std::string run_id_;
  std::string activity_id_;
  std::uint32_t attempt_;
  HeartbeatFn heartbeat_;
  const std::atomic<bool>* cancelled_;
};

// A local activity with its input and output as payloads. Returns the result
// or throws (ActivityError or any std::exception) to fail the attempt.
using ActivityFn = std::function<Payload(ActivityContext&, const Payload&)>;

// Runs one attempt of the local activity `fn` on `input`. True with
// `*output` set if it returned; false with `*failure` set if it threw: an
// ActivityError's message, type and retryability, any other exception's
// message and type name (retryable). Runs on the caller's thread.
bool RunActivityAttempt(const ActivityFn& fn, ActivityContext& ctx, const Payload& input,
                        Payload* output, history::ActivityFailure* failure);

namespace detail {
template <typename F>
struct ActivitySignature : ActivitySignature<decltype(&F::operator())> {};
template <typename Out, typename In>
struct ActivitySignature<Out (*)(ActivityContext&, In)> {
  using Output = Out;
  using Input = std::remove_cvref_t<In>;
};
template <typename C, typename Out, typename In>
struct ActivitySignature<Out (C::*)(ActivityContext&, In) const> {
  using Output = Out;
  using Input = std::remove_cvref_t<In>;
};
}  // namespace detail

class ActivityRegistry {
 public:
  // Registers `fn` (a function or lambda `Out(ActivityContext&, In)` whose In
  // and Out convert to and from JSON, or are Json/Payload) under `type`.
  // kInvalidArgument for a bad or duplicate name.
  template <typename Fn>
  Status activity(std::string type, Fn fn) {
    using Sig = detail::ActivitySignature<std::decay_t<Fn>>;
    return Add(std::move(type), [fn](ActivityContext& ctx, const Payload& input) -> Payload {
      auto in = ParseInput<typename Sig::Input>(input);
      if constexpr (std::is_void_v<typename Sig::Output>) {
        fn(ctx, std::move(in));
        return JsonPayload(nullptr);
      } else {
        return detail::ToPayload(fn(ctx, std::move(in)));
      }
    });
  }

  // kInvalidArgument for a bad name, an empty body or a type that is already
  // registered; the registry also keeps the first such error (status()).
  Status Add(std::string type, ActivityFn fn);
  // OK, or the first registration that failed.
  const Status& status() const { return first_error_; }
  // nullptr if `type` is not registered.
  const ActivityFn* Find(std::string_view type) const;
  std::vector<std::string> Types() const;

 private:
  // The input as In; a payload that does not convert fails the attempt for good.
  template <typename In>
  static In ParseInput(const Payload& p) {
    try {
      return detail::FromPayload<In>(p);
    } catch (const PayloadError& e) {
      throw ActivityError(std::string("activity input: ") + e.what(), "PayloadError", true);
    }
  }

  Status Insert(std::string type, ActivityFn fn);

  std::map<std::string, ActivityFn, std::less<>> activities_;
  Status first_error_;
};

}  // namespace aion
