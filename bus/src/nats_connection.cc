#include "aion/bus/nats_connection.h"

#include <spdlog/spdlog.h>

namespace aion::bus {
namespace {

StatusCode CodeOf(natsStatus s) {
  switch (s) {
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
    case NATS_INVALID_TIMEOUT:
    case NATS_ADDRESS_MISSING:
    case NATS_MAX_PAYLOAD:
      return StatusCode::kInvalidArgument;
    case NATS_NOT_FOUND:
      return StatusCode::kNotFound;
    case NATS_NO_MEMORY:
    case NATS_SLOW_CONSUMER:
      return StatusCode::kResourceExhausted;
    default:
      return StatusCode::kUnavailable;  // connection trouble, timeouts, server errors
  }
}

// Callbacks get no closure: they may run on nats.c's callback thread after the
// NatsConnection is gone, so they read what they log from `nc` itself.
std::string ConnectedUrl(natsConnection* nc) {
  char buf[256] = {0};
  if (natsConnection_GetConnectedUrl(nc, buf, sizeof buf) != NATS_OK) return "?";
  return buf;
}

void OnDisconnected(natsConnection* nc, void*) {
  if (natsConnection_IsClosed(nc)) return;  // our own Close, not a failure
  spdlog::warn("NATS connection lost; reconnecting");
}

void OnReconnected(natsConnection* nc, void*) {
  spdlog::info("NATS connection re-established to {}", ConnectedUrl(nc));
}

void OnAsyncError(natsConnection* nc, natsSubscription* sub, natsStatus err, void*) {
  spdlog::warn("NATS asynchronous error: {}", natsStatus_GetText(err));
}

Status SetOptions(natsOptions* opts, const NatsConnectionOptions& o) {
  natsStatus s = natsOptions_SetURL(opts, o.url.c_str());
  if (s == NATS_OK) s = natsOptions_SetName(opts, o.name.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, o.connect_timeout.count());
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, o.max_reconnect);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, o.reconnect_wait.count());
  if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, OnDisconnected, nullptr);
  if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, OnReconnected, nullptr);
  if (s == NATS_OK) s = natsOptions_SetErrorHandler(opts, OnAsyncError, nullptr);
  if (s != NATS_OK) return NatsStatus(s, "invalid NATS options for '" + o.url + "'");
  return Status::Ok();
}

}  // namespace

Status NatsStatus(natsStatus s, std::string_view what, jsErrCode js_error) {
  const std::string text = natsStatus_GetText(s);
  std::string message = std::string(what) + ": " + text;
  natsStatus last = NATS_OK;
  const char* raw = nats_GetLastError(&last);
  std::string_view detail = (raw == nullptr || last != s) ? "" : raw;
  // nats.c prefixes details with "(file.c:line): "; users need only the words.
  const auto location_end = detail.find("): ");
  if (!detail.empty() && detail.front() == '(' && location_end != std::string_view::npos) {
    detail.remove_prefix(location_end + 3);
  }
  if (!detail.empty() && detail != text) message += " (" + std::string(detail) + ")";
  if (js_error != 0) message += " [JetStream error " + std::to_string(js_error) + "]";
  return {CodeOf(s), std::move(message)};
}

Result<std::unique_ptr<NatsConnection>> NatsConnection::Connect(
    const NatsConnectionOptions& options) {
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s != NATS_OK) return NatsStatus(s, "cannot initialise the NATS client");
  Status configured = SetOptions(opts, options);
  if (!configured.ok()) {
    natsOptions_Destroy(opts);
    return configured;
  }
  natsConnection* nc = nullptr;
  s = natsConnection_Connect(&nc, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) {
    Status st = NatsStatus(s, "cannot reach NATS at " + options.url);
    return Status(StatusCode::kUnavailable, st.message());
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = options.jetstream_timeout.count();
  jsCtx* js = nullptr;
  s = natsConnection_JetStream(&js, nc, &jo);
  if (s != NATS_OK) {
    natsConnection_Destroy(nc);
    return NatsStatus(s, "cannot create a JetStream context on " + options.url);
  }
  return std::unique_ptr<NatsConnection>(
      new NatsConnection(options.url, options.jetstream_timeout, nc, js));
}

NatsConnection::~NatsConnection() {
  jsCtx_Destroy(js_);
  natsConnection_Close(nc_);
  natsConnection_Destroy(nc_);
}

Status NatsConnection::Flush(std::chrono::milliseconds timeout) {
  natsStatus s = natsConnection_FlushTimeout(nc_, timeout.count());
  if (s != NATS_OK) return NatsStatus(s, "flush to " + url_);
  return Status::Ok();
}

}  // namespace aion::bus
