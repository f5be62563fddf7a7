// ApiServer: answers core-NATS requests on <prefix>.api.<p>.<id>.<op> for the
// partitions a worker owns (DESIGN §5): describe, history, query, result and
// heartbeat (activity workers reporting progress); and <prefix>.api.list
// (no queue group: every worker answers for the partitions it owns).
//
// Threads: nats.c delivers each subscription (one per owned partition, one
// for list) on its own thread, in order, so a handler that blocked would
// stall every later request of its partition. None blocks: `result` waits
// through Engine::OnClosed, `heartbeat` through the engine's callback, and
// `query` (Engine::Query blocks its caller) runs on a pool of
// `query_threads`. A query is answered within its timeout whatever else is
// queued (query_timeout when it could not run or finish in time); at most
// `max_queued_queries` wait or run at once, beyond that the answer is
// resource_exhausted. describe, history and list read the store on the
// delivery thread.
//
// Replies are protobuf binary, or JSON when the request carries Content-Type
// JSON; every reply type carries `error` (field 15) on failure. `result`
// answers deadline_exceeded after ResultRequest.timeout_ms; `heartbeat`
// answers after the engine recorded it, or unavailable after
// heartbeat_timeout. Borrows the connection and the engine, which must
// outlive it; Start/Stop from one owning thread.
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
  // QueryRequest.timeout_ms: 0 means the default; longer asks are cut.
  std::chrono::milliseconds default_query_timeout{5000};
  std::chrono::milliseconds max_query_timeout{60000};
  int query_threads = 4;                  // queries asked of the engine at once
  std::size_t max_queued_queries = 1024;  // queued or running; beyond: resource_exhausted
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

  // Unsubscribes, answers waiting `result`, heartbeat and queued query
  // requests with unavailable and cancels their engine callbacks; waits for
  // queries already asked of the engine (at most their timeout). Idempotent.
  void Stop();

 private:
  struct Impl;
  explicit ApiServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace aion::bus
