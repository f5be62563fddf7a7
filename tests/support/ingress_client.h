// Ingress messages (start, signal, cancel, ...) sent the way a careful client
// sends them: a JetStream publish to aion.wf.<id>.<kind> with header
// Aion-Reply-To, re-published (same bytes, so the same request id) until the
// worker answers after its commit. A worker killed with the message in flight
// is then harmless: the request id makes the retry idempotent. Header-only
// (needs aion::bus); one owner thread per call.
#pragma once

#include <google/protobuf/util/json_util.h>
#include <nats/nats.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>

#include "aion/bus/codec.h"
#include "aion/bus/nats_connection.h"
#include "aion/wire.pb.h"
#include "support/nats_test_server.h"

namespace aion::testing {

// A reply body (protobuf binary, or its JSON mapping when `json`) as an
// IngressReply; nullopt if it decodes as neither.
inline std::optional<wire::IngressReply> DecodeIngressReply(const std::string& body, bool json) {
  wire::IngressReply reply;
  if (json) {
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    if (!google::protobuf::util::JsonStringToMessage(body, &reply, options).ok()) {
      return std::nullopt;
    }
  } else if (!reply.ParseFromString(body)) {
    return std::nullopt;
  }
  return reply;
}

struct IngressAnswer {
  wire::IngressReply reply;  // as the worker answered
  int publishes = 0;         // 1 + re-publishes
};

// Publishes `data` (JSON when `json`, else protobuf binary) to `subject`
// with Aion-Reply-To and waits for the answer, re-publishing every `resend`
// while none came; throws std::runtime_error after `limit` (or when the
// reply does not decode). The reply's error, if any, is the caller's to check.
inline IngressAnswer AskIngress(bus::NatsConnection& conn, const std::string& subject,
                                const std::string& data, bool json,
                                std::chrono::milliseconds resend = std::chrono::seconds(5),
                                std::chrono::milliseconds limit = std::chrono::seconds(90)) {
  static std::atomic<std::uint64_t> counter{0};
  const std::string inbox = "_INBOX.aion-test-ingress." + std::to_string(getpid()) + "." +
                            std::to_string(counter.fetch_add(1));
  NatsCollector replies(conn, inbox);
  bus::Headers headers;
  headers["Aion-Reply-To"] = inbox;
  if (json) headers["Content-Type"] = "application/json";
  const auto deadline = std::chrono::steady_clock::now() + limit;
  IngressAnswer answer;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds(0)) {
      throw std::runtime_error("no answer to " + subject + " within " +
                               std::to_string(limit.count()) + " ms (" +
                               std::to_string(answer.publishes) + " publishes)");
    }
    auto msg = MakeNatsMsg(subject, data, headers);
    jsPubOptions opts;
    jsPubOptions_Init(&opts);
    opts.MaxWait = 2000;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    if (js_PublishMsg(nullptr, conn.js(), msg.get(), &opts, &jerr) == NATS_OK) ++answer.publishes;
    if (auto reply = replies.Next(std::min(resend, left))) {
      auto decoded = DecodeIngressReply(Body(reply.get()), json);
      if (!decoded) throw std::runtime_error("undecodable answer to " + subject);
      answer.reply = std::move(*decoded);
      return answer;
    }
  }
}

}  // namespace aion::testing
