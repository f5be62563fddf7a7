// NatsConnection: one connection to NATS plus its JetStream context.
//
// RAII: Connect returns a live connection or a kUnavailable Status naming the
// URL; the destructor closes it. After the first connect it reconnects on its
// own (forever, by default) and logs disconnects. nats.c objects are
// thread-safe, so nc() and js() may be used from any thread while it lives.
#pragma once

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "aion/engine/status.h"

namespace aion::bus {

struct NatsConnectionOptions {
  std::string url = "nats://127.0.0.1:4222";
  std::string name = "aion";  // shown by the server's monitoring
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds jetstream_timeout{5000};  // JetStream API calls and PubAcks
  std::chrono::milliseconds reconnect_wait{250};
  int max_reconnect = -1;  // -1: keep trying forever
};

// A non-ok Status for a failed nats.c call: "<what>: <nats text> (<details>)".
// Connection trouble and timeouts are kUnavailable, bad arguments
// kInvalidArgument, missing objects kNotFound.
Status NatsStatus(natsStatus s, std::string_view what,
                  jsErrCode js_error = static_cast<jsErrCode>(0));

class NatsConnection {
 public:
  static Result<std::unique_ptr<NatsConnection>> Connect(const NatsConnectionOptions& options);
  ~NatsConnection();
  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;

  natsConnection* nc() const { return nc_; }
  jsCtx* js() const { return js_; }
  const std::string& url() const { return url_; }
  // NatsConnectionOptions::jetstream_timeout: how long to wait for a PubAck.
  std::chrono::milliseconds jetstream_timeout() const { return jetstream_timeout_; }
  // The largest message the server accepts, in bytes.
  std::int64_t max_payload() const { return natsConnection_GetMaxPayload(nc_); }
  // Sends everything buffered and waits for the server to have seen it.
  Status Flush(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

 private:
  NatsConnection(std::string url, std::chrono::milliseconds jetstream_timeout, natsConnection* nc,
                 jsCtx* js)
      : url_(std::move(url)), jetstream_timeout_(jetstream_timeout), nc_(nc), js_(js) {}

  std::string url_;
  std::chrono::milliseconds jetstream_timeout_;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
};

}  // namespace aion::bus
