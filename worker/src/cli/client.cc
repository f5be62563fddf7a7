#include "client.h"

#include <google/protobuf/util/json_util.h>

#include "aion/bus/codec.h"
#include "aion/bus/reply_when.h"

namespace aion::cli {
namespace {

using Clock = std::chrono::steady_clock;
using MsgPtr = std::unique_ptr<natsMsg, decltype(&natsMsg_Destroy)>;
using SubPtr = std::unique_ptr<natsSubscription, decltype(&natsSubscription_Destroy)>;

std::string Seconds(milliseconds d) {
  if (d.count() % 1000 != 0) return std::to_string(d.count()) + "ms";
  return std::to_string(d.count() / 1000) + "s";
}

// nats.c keeps the detail of the last error per thread; the status text alone is vague.
Status FromNats(natsStatus s, const std::string& what, milliseconds timeout) {
  if (s == NATS_TIMEOUT) {
    return {StatusCode::kDeadlineExceeded, what + ": no answer within " + Seconds(timeout)};
  }
  if (s == NATS_NO_RESPONDERS) return Unavailable(what + ": no responders");
  const char* detail = nats_GetLastError(nullptr);
  std::string text = natsStatus_GetText(s);
  if (detail != nullptr && *detail != '\0' && text != detail)
    text += std::string(" (") + detail + ")";
  return Unavailable(what + ": " + text);
}

milliseconds Remaining(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
  return std::max(left, milliseconds(1));
}

Message ToMessage(natsMsg* msg) {
  Message out;
  out.subject = natsMsg_GetSubject(msg);
  out.data.assign(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
  const char* type = nullptr;
  out.json = natsMsgHeader_Get(msg, bus::kContentTypeHeader.data(), &type) == NATS_OK &&
             type != nullptr && std::string_view(type).starts_with(bus::kJsonContentType);
  return out;
}

Result<MsgPtr> NewMsg(const std::string& subject, const std::string& data) {
  natsMsg* msg = nullptr;
  natsStatus s =
      natsMsg_Create(&msg, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
  if (s != NATS_OK) return InvalidArgument("cannot build a message for '" + subject + "'");
  return MsgPtr(msg, &natsMsg_Destroy);
}

}  // namespace

Result<std::unique_ptr<Client>> Client::Connect(const std::string& url) {
  if (nats_Open(-1) != NATS_OK) return Internal("cannot initialise the nats.c library");
  natsOptions* opts = nullptr;
  natsConnection* nc = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s == NATS_OK) s = natsOptions_SetURL(opts, url.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 3000);
  if (s == NATS_OK) s = natsOptions_SetAllowReconnect(opts, false);  // one short command
  if (s == NATS_OK) s = natsOptions_SetName(opts, "aion-cli");
  if (s == NATS_OK) s = natsConnection_Connect(&nc, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) {
    nats_Close();
    return FromNats(s, "cannot connect to NATS at " + url, milliseconds(3000));
  }
  jsCtx* js = nullptr;
  s = natsConnection_JetStream(&js, nc, nullptr);
  if (s != NATS_OK) {
    natsConnection_Destroy(nc);
    nats_Close();
    return FromNats(s, "cannot use JetStream", milliseconds(0));
  }
  return std::unique_ptr<Client>(new Client(nc, js));
}

Client::~Client() {
  jsCtx_Destroy(js_);
  natsConnection_Destroy(nc_);
  nats_Close();
}

Result<PublishAck> Client::PublishMsg(natsMsg* msg, milliseconds timeout) {
  jsPubOptions opts;
  jsPubOptions_Init(&opts);
  opts.MaxWait = timeout.count();
  jsPubAck* ack = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const std::string subject = natsMsg_GetSubject(msg);
  natsStatus s = js_PublishMsg(&ack, js_, msg, &opts, &jerr);
  if (s == NATS_NO_RESPONDERS) {
    return Unavailable("no JetStream stream stores '" + subject +
                       "' (is aion-worker running against this NATS server?)");
  }
  if (s != NATS_OK) return FromNats(s, "JetStream publish to '" + subject + "'", timeout);
  PublishAck out{ack->Stream != nullptr ? ack->Stream : "", ack->Sequence, ack->Duplicate};
  jsPubAck_Destroy(ack);
  return out;
}

Result<PublishAck> Client::Publish(const std::string& subject, const std::string& data, bool json,
                                   milliseconds timeout) {
  auto msg = NewMsg(subject, data);
  if (!msg.ok()) return msg.status();
  if (json) {
    natsMsgHeader_Set(msg->get(), bus::kContentTypeHeader.data(), bus::kJsonContentType.data());
  }
  return PublishMsg(msg->get(), timeout);
}

Result<Message> Client::PublishAndAwaitReply(const std::string& subject, const std::string& data,
                                             milliseconds timeout) {
  Result<Message> got = Internal("no reply");
  Status s = PublishAndWait(subject, data, timeout, false, [&](const Message& m) {
    got = m;
    return false;
  });
  if (!s.ok()) return s;
  return got;
}

Status Client::PublishAndAwaitClose(const std::string& subject, const std::string& data,
                                    milliseconds timeout,
                                    const std::function<bool(const Message&)>& on_reply) {
  return PublishAndWait(subject, data, timeout, true, on_reply);
}

Status Client::PublishAndWait(const std::string& subject, const std::string& data,
                              milliseconds timeout, bool until_closed,
                              const std::function<bool(const Message&)>& on_reply) {
  const auto deadline = Clock::now() + timeout;
  natsInbox* inbox = nullptr;
  if (natsInbox_Create(&inbox) != NATS_OK) return Internal("cannot create a reply inbox");
  std::unique_ptr<natsInbox, decltype(&natsInbox_Destroy)> inbox_owner(inbox, &natsInbox_Destroy);
  // Subscribe before publishing so the reply cannot arrive before anyone listens.
  natsSubscription* raw_sub = nullptr;
  natsStatus s = natsConnection_SubscribeSync(&raw_sub, nc_, inbox);
  if (s != NATS_OK) return FromNats(s, "subscribe to the reply inbox", timeout);
  SubPtr sub(raw_sub, &natsSubscription_Destroy);

  auto msg = NewMsg(subject, data);
  if (!msg.ok()) return msg.status();
  natsMsgHeader_Set(msg->get(), bus::kReplyToHeader.data(), inbox);
  if (until_closed) natsMsgHeader_Set(msg->get(), bus::kReplyWhenHeader.data(), "closed");
  auto ack = PublishMsg(msg->get(), Remaining(deadline));
  if (!ack.ok()) return ack.status();

  for (int replies = 0;; ++replies) {
    natsMsg* reply = nullptr;
    s = natsSubscription_NextMsg(&reply, sub.get(), Remaining(deadline).count());
    if (s == NATS_TIMEOUT && replies > 0) {
      return Status(StatusCode::kDeadlineExceeded,
                    "the run was still open after " + Seconds(timeout));
    }
    if (s == NATS_TIMEOUT) {
      return Status(StatusCode::kDeadlineExceeded,
                    "JetStream stored the message (stream " + ack->stream + " seq " +
                        std::to_string(ack->sequence) + ") but no worker answered within " +
                        Seconds(timeout) +
                        "; it will be processed when a worker owns its partition");
    }
    if (s != NATS_OK) return FromNats(s, "waiting for the worker's reply", timeout);
    MsgPtr owned(reply, &natsMsg_Destroy);
    if (!on_reply(ToMessage(reply))) return Status::Ok();
  }
}

Result<Message> Client::Request(const std::string& subject, const std::string& data,
                                milliseconds timeout) {
  auto msg = NewMsg(subject, data);
  if (!msg.ok()) return msg.status();
  natsMsg* reply = nullptr;
  natsStatus s = natsConnection_RequestMsg(&reply, nc_, msg->get(), timeout.count());
  if (s == NATS_NO_RESPONDERS) {
    return Unavailable("no worker serves '" + subject + "' (is aion-worker running?)");
  }
  if (s != NATS_OK) return FromNats(s, "request to '" + subject + "'", timeout);
  MsgPtr owned(reply, &natsMsg_Destroy);
  return ToMessage(reply);
}

Result<std::vector<Message>> Client::Gather(const std::string& subject, const std::string& data,
                                            milliseconds quiet, milliseconds max) {
  const auto deadline = Clock::now() + max;
  natsInbox* inbox = nullptr;
  if (natsInbox_Create(&inbox) != NATS_OK) return Internal("cannot create a reply inbox");
  std::unique_ptr<natsInbox, decltype(&natsInbox_Destroy)> inbox_owner(inbox, &natsInbox_Destroy);
  natsSubscription* raw_sub = nullptr;
  natsStatus s = natsConnection_SubscribeSync(&raw_sub, nc_, inbox);
  if (s != NATS_OK) return FromNats(s, "subscribe to the reply inbox", max);
  SubPtr sub(raw_sub, &natsSubscription_Destroy);
  s = natsConnection_PublishRequest(nc_, subject.c_str(), inbox, data.data(),
                                    static_cast<int>(data.size()));
  if (s != NATS_OK) return FromNats(s, "request to '" + subject + "'", max);
  std::vector<Message> replies;
  while (Clock::now() < deadline) {
    const milliseconds wait =
        replies.empty() ? Remaining(deadline) : std::min(quiet, Remaining(deadline));
    natsMsg* raw = nullptr;
    s = natsSubscription_NextMsg(&raw, sub.get(), wait.count());
    if (s == NATS_TIMEOUT) break;
    if (s != NATS_OK) return FromNats(s, "waiting for replies on '" + subject + "'", max);
    MsgPtr owned(raw, &natsMsg_Destroy);
    if (natsMsg_IsNoResponders(raw)) {
      if (replies.empty()) {
        return Unavailable("no worker serves '" + subject + "' (is aion-worker running?)");
      }
      continue;
    }
    replies.push_back(ToMessage(raw));
  }
  return replies;
}

Status Client::Subscribe(const std::string& subject, milliseconds timeout,
                         const std::function<bool(const Message&)>& on_message) {
  natsSubscription* raw_sub = nullptr;
  natsStatus s = natsConnection_SubscribeSync(&raw_sub, nc_, subject.c_str());
  if (s != NATS_OK) return FromNats(s, "subscribe to '" + subject + "'", timeout);
  SubPtr sub(raw_sub, &natsSubscription_Destroy);
  const bool forever = timeout.count() == 0;
  const auto deadline = Clock::now() + timeout;
  while (forever || Clock::now() < deadline) {
    natsMsg* raw = nullptr;
    const int64_t wait = forever ? 3'600'000 : Remaining(deadline).count();
    s = natsSubscription_NextMsg(&raw, sub.get(), wait);
    if (s == NATS_TIMEOUT) continue;
    if (s != NATS_OK) return FromNats(s, "subscription to '" + subject + "'", timeout);
    MsgPtr owned(raw, &natsMsg_Destroy);
    if (!on_message(ToMessage(raw))) break;
  }
  return Status::Ok();
}

Status Decode(const Message& msg, google::protobuf::Message& out) {
  if (msg.json) {
    google::protobuf::util::JsonParseOptions opts;
    opts.ignore_unknown_fields = true;  // a newer worker may add fields
    auto s = google::protobuf::util::JsonStringToMessage(msg.data, &out, opts);
    if (!s.ok()) {
      return Internal("cannot read the JSON reply on " + msg.subject + ": " + s.ToString());
    }
    return Status::Ok();
  }
  if (!out.ParseFromString(msg.data)) {
    return Internal("cannot decode the reply on " + msg.subject + " as " + out.GetTypeName());
  }
  return Status::Ok();
}

}  // namespace aion::cli
