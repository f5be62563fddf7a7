// RootTask: the body of one run, whatever type its result has.
//
// Takes over the frame of a Task<Out> and converts the finished body's result
// to a Payload only when asked, so a run needs no wrapper coroutine frame for
// the conversion (bench/README.md, memory per run). Move-only; it belongs to
// one run, and only the thread driving that run may touch it.
#pragma once

#include <coroutine>
#include <type_traits>
#include <utility>

#include "aion/engine/payload.h"
#include "aion/engine/task.h"

namespace aion {

class RootTask {
 public:
  RootTask() = default;
  // Implicit: a workflow body is written as returning Task<Out>.
  template <typename Out>
  RootTask(Task<Out> body)  // NOLINT(google-explicit-constructor)
      : handle_(body.Release()), result_(&ResultOf<Out>) {}
  RootTask(RootTask&& o) noexcept
      : handle_(std::exchange(o.handle_, {})), result_(std::exchange(o.result_, nullptr)) {}
  RootTask& operator=(RootTask&& o) noexcept {
    if (this != &o) {
      Destroy();
      handle_ = std::exchange(o.handle_, {});
      result_ = std::exchange(o.result_, nullptr);
    }
    return *this;
  }
  RootTask(const RootTask&) = delete;
  RootTask& operator=(const RootTask&) = delete;
  ~RootTask() { Destroy(); }

  bool done() const { return handle_ && handle_.done(); }
  std::coroutine_handle<> handle() const { return handle_; }
  // The finished body's result; rethrows the body's exception, or a
  // PayloadError when the result does not convert.
  Payload Result() { return result_(handle_); }

 private:
  template <typename Out>
  static Payload ResultOf(std::coroutine_handle<> frame) {
    auto& promise =
        std::coroutine_handle<detail::TaskPromise<Out>>::from_address(frame.address()).promise();
    if constexpr (std::is_void_v<Out>) {
      promise.Take();
      return JsonPayload(nullptr);
    } else if constexpr (std::is_same_v<Out, Payload>) {
      return promise.Take();
    } else {
      Out out = promise.Take();
      return detail::ToPayload(out);
    }
  }
  void Destroy() {
    if (handle_) handle_.destroy();
    handle_ = {};
  }

  std::coroutine_handle<> handle_;
  Payload (*result_)(std::coroutine_handle<>) = nullptr;
};

}  // namespace aion
