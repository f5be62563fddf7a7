// JsAsyncPublisher: JetStream publishes that do not wait for each PubAck
// (js_PublishMsgAsync), for NatsOutboxSink::PublishBatch. Send() messages
// tagged with the caller's index, then Wait() for their PubAcks: it names the
// indexes the stream did not accept (an error PubAck, or none in time).
// Anything else sent since the last Wait was stored (or dropped by the
// stream as a duplicate of its Nats-Msg-Id).
//
// It owns its own JetStream context, so the PubAcks it waits for are only
// its own. Send and Wait are called from one thread at a time; nats.c calls
// OnError on the connection's PubAck thread, which is why the bookkeeping is
// under mu_.
#pragma once

#include <nats/nats.h>

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "aion/bus/codec.h"
#include "aion/bus/nats_connection.h"

namespace aion::bus {

class JsAsyncPublisher {
 public:
  // At most `max_in_flight` messages await a PubAck (Send blocks up to
  // `timeout` beyond that); Wait waits at most `timeout`.
  static Result<std::unique_ptr<JsAsyncPublisher>> Create(NatsConnection& conn, int max_in_flight,
                                                          std::chrono::milliseconds timeout);
  ~JsAsyncPublisher();
  JsAsyncPublisher(const JsAsyncPublisher&) = delete;
  JsAsyncPublisher& operator=(const JsAsyncPublisher&) = delete;

  // Sends one message; `msg_id` ("" = none) becomes Nats-Msg-Id. An error
  // (kUnavailable, or kInvalidArgument for a bad subject or header) means
  // nats.c did not take it: no PubAck is coming for `index`.
  Status Send(std::size_t index, const std::string& subject, std::string_view data,
              const Headers& headers, const std::string& msg_id);

  // Waits for the PubAcks of everything sent since the last Wait; returns
  // the indexes that were not accepted, each with why (kUnavailable).
  std::map<std::size_t, Status> Wait();

 private:
  JsAsyncPublisher(jsCtx* js, std::chrono::milliseconds timeout) : js_(js), timeout_(timeout) {}
  static void OnError(jsCtx* js, jsPubAckErr* pae, void* closure);
  // Takes back the messages still waiting for a PubAck (their acks are then
  // ignored) and records them as failed with `why`.
  void Reclaim(const Status& why);
  void Fail(natsMsg* msg, Status why);  // requires mu_
  natsStatus Complete();                // js_PublishAsyncComplete within timeout_

  jsCtx* js_;
  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::unordered_map<natsMsg*, std::size_t> sent_;  // guarded by mu_; awaiting a PubAck
  std::map<std::size_t, Status> failed_;            // guarded by mu_
};

}  // namespace aion::bus
