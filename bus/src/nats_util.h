// Small helpers over nats.c shared by the bus sources (not installed).
#pragma once

#include <nats/nats.h>

#include <memory>
#include <string>
#include <string_view>

#include "aion/bus/codec.h"
#include "aion/bus/nats_connection.h"

namespace aion::bus {

struct MsgDeleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
using MsgPtr = std::unique_ptr<natsMsg, MsgDeleter>;

// Copies subject, headers and data out of a received message.
WireMessage ToWire(natsMsg* msg);

// {"Content-Type": "application/json"} when `json`, else no headers.
Headers ReplyHeaders(bool json);

// A message ready to publish; kInvalidArgument for a bad subject or header.
Result<MsgPtr> MakeMsg(const std::string& subject, std::string_view data, const Headers& headers);

// Core NATS publish (fire and forget; buffered while reconnecting).
Status CorePublish(NatsConnection& conn, const std::string& subject, std::string_view data,
                   const Headers& headers);

// JetStream publish; returns after the PubAck. `msg_id` ("" = none) becomes
// Nats-Msg-Id so a retry within the duplicate window is stored once.
Status JsPublish(NatsConnection& conn, const std::string& subject, std::string_view data,
                 const Headers& headers, const std::string& msg_id);

}  // namespace aion::bus
