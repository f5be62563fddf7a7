#include "nats_util.h"

namespace aion::bus {

WireMessage ToWire(natsMsg* msg) {
  WireMessage out;
  out.subject = natsMsg_GetSubject(msg);
  const char* data = natsMsg_GetData(msg);
  if (data != nullptr) out.data.assign(data, static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
  const char** keys = nullptr;
  int count = 0;
  if (natsMsgHeader_Keys(msg, &keys, &count) == NATS_OK) {
    for (int i = 0; i < count; ++i) {
      const char* value = nullptr;
      if (natsMsgHeader_Get(msg, keys[i], &value) == NATS_OK && value != nullptr) {
        out.headers.emplace(keys[i], value);
      }
    }
    free(static_cast<void*>(keys));  // the array is ours; the strings belong to the message
  }
  return out;
}

Headers ReplyHeaders(bool json) {
  if (!json) return {};
  return {{std::string(kContentTypeHeader), std::string(kJsonContentType)}};
}

Result<MsgPtr> MakeMsg(const std::string& subject, std::string_view data, const Headers& headers) {
  natsMsg* raw = nullptr;
  natsStatus s =
      natsMsg_Create(&raw, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
  if (s != NATS_OK) return NatsStatus(s, "cannot build a message for '" + subject + "'");
  MsgPtr msg(raw);
  for (const auto& [key, value] : headers) {
    s = natsMsgHeader_Set(msg.get(), key.c_str(), value.c_str());
    if (s != NATS_OK) return NatsStatus(s, "cannot set header '" + key + "'");
  }
  return msg;
}

Status CorePublish(NatsConnection& conn, const std::string& subject, std::string_view data,
                   const Headers& headers) {
  auto msg = MakeMsg(subject, data, headers);
  if (!msg.ok()) return msg.status();
  natsStatus s = natsConnection_PublishMsg(conn.nc(), msg->get());
  if (s != NATS_OK) return NatsStatus(s, "publish to '" + subject + "'");
  return Status::Ok();
}

Status JsPublish(NatsConnection& conn, const std::string& subject, std::string_view data,
                 const Headers& headers, const std::string& msg_id) {
  auto msg = MakeMsg(subject, data, headers);
  if (!msg.ok()) return msg.status();
  jsPubOptions opts;
  jsPubOptions_Init(&opts);
  if (!msg_id.empty()) opts.MsgId = msg_id.c_str();
  jsPubAck* ack = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_PublishMsg(&ack, conn.js(), msg->get(), &opts, &jerr);
  jsPubAck_Destroy(ack);
  if (s != NATS_OK) {
    Status st = NatsStatus(s, "JetStream publish to '" + subject + "'", jerr);
    // Whatever went wrong, the row or message is still ours to retry.
    return Status(StatusCode::kUnavailable, st.message());
  }
  return Status::Ok();
}

}  // namespace aion::bus
