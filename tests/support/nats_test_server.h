// NatsTestServer: a real nats-server for one test, in a fresh temp dir, on a
// port the server picks (never 4222), with the partition mappings of DESIGN
// §5. Header-only so tests/support's library need not link aion::bus.
// Helpers to publish and request as a client. One owner thread.
#pragma once

#include <google/protobuf/message.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

#include "aion/bus/codec.h"
#include "aion/bus/nats_connection.h"
#include "aion/bus/nats_server_process.h"
#include "support/temp_dir.h"

namespace aion::testing {

class NatsTestServer {
 public:
  explicit NatsTestServer(std::uint32_t partitions = 16, std::string prefix = "aion")
      : NatsTestServer(Options(partitions, std::move(prefix))) {}
  // A server with `options` (e.g. other mappings); its directory is set here.
  explicit NatsTestServer(bus::NatsServerOptions options) : dir_("aion-nats") {
    options.directory = dir_.path();
    auto server = bus::NatsServerProcess::Start(options);
    if (!server.ok()) throw std::runtime_error(server.status().ToString());
    server_ = std::move(*server);
  }
  static bus::NatsServerOptions Options(std::uint32_t partitions, std::string prefix = "aion") {
    bus::NatsServerOptions options;
    options.partitions = partitions;
    options.prefix = std::move(prefix);
    return options;
  }

  bus::NatsServerProcess& process() { return *server_; }
  const std::string& url() const { return server_->url(); }
  const std::filesystem::path& dir() const { return dir_.path(); }

  // `jetstream_timeout` 0 keeps the default; tests of outages shorten it so a
  // publish to a stopped server fails fast.
  std::unique_ptr<bus::NatsConnection> Connect(
      std::string name = "aion-test",
      std::chrono::milliseconds jetstream_timeout = std::chrono::milliseconds(0)) const {
    bus::NatsConnectionOptions options;
    options.url = server_->url();
    options.name = std::move(name);
    if (jetstream_timeout.count() > 0) options.jetstream_timeout = jetstream_timeout;
    auto conn = bus::NatsConnection::Connect(options);
    if (!conn.ok()) throw std::runtime_error(conn.status().ToString());
    return std::move(*conn);
  }

 private:
  TempDir dir_;
  std::unique_ptr<bus::NatsServerProcess> server_;
};

struct NatsMsgDeleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
using NatsMsgPtr = std::unique_ptr<natsMsg, NatsMsgDeleter>;

inline NatsMsgPtr MakeNatsMsg(const std::string& subject, const std::string& data,
                              const bus::Headers& headers = {}) {
  natsMsg* raw = nullptr;
  if (natsMsg_Create(&raw, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size())) !=
      NATS_OK) {
    throw std::runtime_error("natsMsg_Create failed for " + subject);
  }
  NatsMsgPtr msg(raw);
  for (const auto& [k, v] : headers) natsMsgHeader_Set(msg.get(), k.c_str(), v.c_str());
  return msg;
}

inline const bus::Headers kJsonHeaders = {{"Content-Type", "application/json"}};

// JetStream publish; throws unless the stream stored it (or dropped a duplicate).
inline void JsPublish(bus::NatsConnection& conn, const std::string& subject,
                      const std::string& data, const bus::Headers& headers = {}) {
  auto msg = MakeNatsMsg(subject, data, headers);
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_PublishMsg(nullptr, conn.js(), msg.get(), nullptr, &jerr);
  if (s != NATS_OK)
    throw std::runtime_error(bus::NatsStatus(s, "publish " + subject, jerr).ToString());
}

// Core request/reply; returns the reply's body. Throws on timeout.
inline std::string Request(bus::NatsConnection& conn, const std::string& subject,
                           const std::string& data, bool json,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto msg = MakeNatsMsg(subject, data, json ? kJsonHeaders : bus::Headers{});
  natsMsg* reply = nullptr;
  natsStatus s = natsConnection_RequestMsg(&reply, conn.nc(), msg.get(), timeout.count());
  if (s != NATS_OK) throw std::runtime_error(bus::NatsStatus(s, "request " + subject).ToString());
  NatsMsgPtr owned(reply);
  const char* d = natsMsg_GetData(reply);
  return d == nullptr ? "" : std::string(d, static_cast<std::size_t>(natsMsg_GetDataLength(reply)));
}

// A core subscription collecting messages on `subject` (e.g. aion.evt.>).
class NatsCollector {
 public:
  NatsCollector(bus::NatsConnection& conn, const std::string& subject) {
    if (natsConnection_SubscribeSync(&sub_, conn.nc(), subject.c_str()) != NATS_OK) {
      throw std::runtime_error("cannot subscribe to " + subject);
    }
    natsConnection_Flush(conn.nc());
  }
  ~NatsCollector() { natsSubscription_Destroy(sub_); }
  NatsCollector(const NatsCollector&) = delete;
  NatsCollector& operator=(const NatsCollector&) = delete;

  // The next message, or null after `timeout`.
  NatsMsgPtr Next(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    natsMsg* msg = nullptr;
    if (natsSubscription_NextMsg(&msg, sub_, timeout.count()) != NATS_OK) return nullptr;
    return NatsMsgPtr(msg);
  }

 private:
  natsSubscription* sub_ = nullptr;
};

inline std::string Body(natsMsg* msg) {
  const char* d = natsMsg_GetData(msg);
  return d == nullptr ? "" : std::string(d, static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
}

}  // namespace aion::testing
