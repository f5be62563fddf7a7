// ApiServer: answers core-NATS requests on <prefix>.api.<p>.<id>.<op> for the
// partitions a worker owns (DESIGN §5): describe, history, result and
// heartbeat (activity workers reporting progress).
//
// Replies are protobuf binary, or JSON when the request carries Content-Type
// JSON; every reply type carries `error` (field 15) on failure. `result`
// waits through Engine::OnClosed without holding a NATS thread and answers
// deadline_exceeded after ResultRequest.timeout_ms; `heartbeat` answers after
// the engine recorded it, or unavailable after heartbeat_timeout. Borrows the connection and
// the engine, which must outlive it; Start/Stop from one owning thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "aion/bus/codec.h"
#include "aion/bus/nats_connection.h"
#include "aion/engine/engine.h"

namespace aion::bus {

struct ApiServerOptions {
  std::vector<std::uint32_t> partitions;  // the partitions this worker owns
  std::chrono::milliseconds default_result_timeout{30000};
  std::chrono::milliseconds max_result_timeout{std::chrono::minutes(10)};  // longer asks are cut
  // A heartbeat the engine has not recorded by then is answered unavailable.
  std::chrono::milliseconds heartbeat_timeout{10000};
  // Workers owning the same partition (during a hand-over) share the
  // subscription, so a request is answered once.
  std::string queue_group = "aion-api";
};

class ApiServer {
 public:
  static Result<std::unique_ptr<ApiServer>> Start(NatsConnection& conn, Engine& engine, Codec codec,
                                                  ApiServerOptions options);
  ~ApiServer();  // Stop()
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Unsubscribes, answers waiting `result` and heartbeat requests with
  // unavailable and cancels their engine callbacks. Idempotent.
  void Stop();

 private:
  struct Impl;
  explicit ApiServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace aion::bus
