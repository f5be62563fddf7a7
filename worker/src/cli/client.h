// The CLI's one NATS connection: JetStream publishes (optionally followed by the
// worker's reply on a private inbox), core-NATS requests and subscriptions.
//
// Every failure is a Status: kUnavailable when NATS, a stream or a responder is
// missing, kDeadlineExceeded when nobody answered in time. A Client lives for one
// command on one thread; the nats.c library is closed when the last Client dies.
#pragma once

#include <google/protobuf/message.h>
#include <nats/nats.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "aion/engine/status.h"

namespace aion::cli {

using std::chrono::milliseconds;

// A received message body and whether it is JSON (header Content-Type: application/json).
struct Message {
  std::string subject;
  std::string data;
  bool json = false;
};

// What JetStream said after storing a publish.
struct PublishAck {
  std::string stream;
  std::uint64_t sequence = 0;
  bool duplicate = false;
};

class Client {
 public:
  static Result<std::unique_ptr<Client>> Connect(const std::string& url);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // JetStream publish; `json` sets Content-Type: application/json.
  Result<PublishAck> Publish(const std::string& subject, const std::string& data, bool json,
                             milliseconds timeout);
  // JetStream publish carrying header Aion-Reply-To: <fresh inbox>, then the one
  // reply the worker sends there after its commit. `timeout` covers both steps.
  Result<Message> PublishAndAwaitReply(const std::string& subject, const std::string& data,
                                       milliseconds timeout);
  // The same with header Aion-Reply-When: closed (a start): `on_reply` gets
  // each reply on the inbox (the one after the commit, the one when the run
  // closed, in whichever order they come) until it returns false. Ok then;
  // kDeadlineExceeded if `timeout` passed first (after at least one reply:
  // the run was still open).
  Status PublishAndAwaitClose(const std::string& subject, const std::string& data,
                              milliseconds timeout,
                              const std::function<bool(const Message&)>& on_reply);
  // Core-NATS request/reply with a protobuf binary body.
  Result<Message> Request(const std::string& subject, const std::string& data,
                          milliseconds timeout);
  // Scatter/gather: a core-NATS request on `subject` with a fresh reply inbox,
  // then every reply until none came for `quiet` after the last one, or `max`
  // passed since the request (the first reply may take up to `max`). kUnavailable
  // if NATS reports no responders; an empty list if nobody answered in time.
  Result<std::vector<Message>> Gather(const std::string& subject, const std::string& data,
                                      milliseconds quiet, milliseconds max);
  // Calls `on_message` for each message on `subject` until it returns false, or
  // `timeout` passes (0 = no limit; then an ok Status).
  Status Subscribe(const std::string& subject, milliseconds timeout,
                   const std::function<bool(const Message&)>& on_message);

 private:
  Client(natsConnection* nc, jsCtx* js) : nc_(nc), js_(js) {}
  Result<PublishAck> PublishMsg(natsMsg* msg, milliseconds timeout);
  Status PublishAndWait(const std::string& subject, const std::string& data, milliseconds timeout,
                        bool until_closed, const std::function<bool(const Message&)>& on_reply);

  natsConnection* nc_;
  jsCtx* js_;
};

// Decodes a reply into `out`: JSON mapping when `msg.json`, protobuf binary otherwise.
Status Decode(const Message& msg, google::protobuf::Message& out);

}  // namespace aion::cli
