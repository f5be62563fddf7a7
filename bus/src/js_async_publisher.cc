#include "js_async_publisher.h"

#include "nats_util.h"

namespace aion::bus {

Result<std::unique_ptr<JsAsyncPublisher>> JsAsyncPublisher::Create(
    NatsConnection& conn, int max_in_flight, std::chrono::milliseconds timeout) {
  std::unique_ptr<JsAsyncPublisher> publisher(new JsAsyncPublisher(nullptr, timeout));
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = timeout.count();
  jo.PublishAsync.MaxPending = max_in_flight;
  jo.PublishAsync.StallWait = timeout.count();
  jo.PublishAsync.ErrHandler = &JsAsyncPublisher::OnError;
  jo.PublishAsync.ErrHandlerClosure = publisher.get();
  natsStatus s = natsConnection_JetStream(&publisher->js_, conn.nc(), &jo);
  if (s != NATS_OK) return NatsStatus(s, "cannot create a JetStream context on " + conn.url());
  return publisher;
}

JsAsyncPublisher::~JsAsyncPublisher() {
  if (js_ == nullptr) return;
  Reclaim(Status::Ok());
  jsCtx_Destroy(js_);
}

Status JsAsyncPublisher::Send(std::size_t index, const std::string& subject, std::string_view data,
                              const Headers& headers, const std::string& msg_id) {
  auto made = MakeMsg(subject, data, headers);
  if (!made.ok()) return made.status();
  jsPubOptions opts;
  jsPubOptions_Init(&opts);
  if (!msg_id.empty()) opts.MsgId = msg_id.c_str();
  natsMsg* msg = made->release();
  natsMsg* const sent = msg;
  {
    // Before the publish: its error PubAck may arrive before the call returns.
    std::lock_guard<std::mutex> g(mu_);
    sent_[sent] = index;
  }
  natsStatus s = js_PublishMsgAsync(js_, &msg, &opts);  // clears `msg` when nats.c took it
  if (s == NATS_OK) return Status::Ok();
  natsMsg_Destroy(msg);
  {
    std::lock_guard<std::mutex> g(mu_);
    sent_.erase(sent);
  }
  Status st = NatsStatus(s, "JetStream publish to '" + subject + "'");
  return Status(StatusCode::kUnavailable, st.message());  // the row is still ours to retry
}

std::map<std::size_t, Status> JsAsyncPublisher::Wait() {
  natsStatus s = Complete();
  if (s != NATS_OK) {
    Reclaim(NatsStatus(s, "no PubAck within " + std::to_string(timeout_.count()) + " ms"));
    // An error callback already running for a message Reclaim could not
    // take back still counts as pending: let it finish before reading.
    Complete();
  }
  std::lock_guard<std::mutex> g(mu_);
  sent_.clear();
  return std::exchange(failed_, {});
}

natsStatus JsAsyncPublisher::Complete() {
  jsPubOptions opts;
  jsPubOptions_Init(&opts);
  opts.MaxWait = timeout_.count();
  return js_PublishAsyncComplete(js_, &opts);
}

void JsAsyncPublisher::Reclaim(const Status& why) {
  natsMsgList pending;
  if (js_PublishAsyncGetPendingList(&pending, js_) != NATS_OK) return;  // none
  {
    std::lock_guard<std::mutex> g(mu_);
    for (int i = 0; i < pending.Count; ++i) {
      Fail(pending.Msgs[i], Status(StatusCode::kUnavailable, why.message()));
    }
  }
  natsMsgList_Destroy(&pending);
}

void JsAsyncPublisher::OnError(jsCtx*, jsPubAckErr* pae, void* closure) {
  auto* self = static_cast<JsAsyncPublisher*>(closure);
  const char* subject = natsMsg_GetSubject(pae->Msg);
  Status st = NatsStatus(pae->Err,
                         "JetStream publish to '" + std::string(subject ? subject : "") +
                             "': " + (pae->ErrText ? pae->ErrText : ""),
                         pae->ErrCode);
  std::lock_guard<std::mutex> g(self->mu_);
  self->Fail(pae->Msg, Status(StatusCode::kUnavailable, st.message()));
}

void JsAsyncPublisher::Fail(natsMsg* msg, Status why) {
  auto it = sent_.find(msg);
  if (it == sent_.end()) return;  // not one of this round's
  failed_.emplace(it->second, std::move(why));
  sent_.erase(it);
}

}  // namespace aion::bus
