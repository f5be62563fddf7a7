#include "aion/bus/outbox_publisher.h"

#include <spdlog/spdlog.h>

#include "aion/bus/codec.h"
#include "nats_util.h"

namespace aion::bus {
namespace {
constexpr std::int64_t kHeaderRoom = 1024;  // the Nats-Msg-Id header and protocol overhead
constexpr std::size_t kMaxFailureBytes = 4096;
}  // namespace

NatsOutboxSink::NatsOutboxSink(NatsConnection& conn, Subjects subjects)
    : conn_(conn), subjects_(std::move(subjects)) {}

Status NatsOutboxSink::Publish(const OutboxRow& row) {
  auto message = LifecycleFromRow(row, subjects_);
  if (!message.ok()) {
    spdlog::error("dropping outbox row that cannot be published: {}", message.status().message());
    return Status::Ok();
  }
  std::string data = message->event.SerializeAsString();
  if (static_cast<std::int64_t>(data.size()) > conn_.max_payload() - kHeaderRoom) {
    // Never publishable as is, and later rows wait behind it: send the event
    // without its payload rather than block the outbox.
    message->event.clear_input();
    message->event.clear_output();
    if (message->event.failure().size() > kMaxFailureBytes) {
      message->event.set_failure(SanitizeUtf8(message->event.failure().substr(0, kMaxFailureBytes)));
    }
    message->event.set_payload_omitted(true);
    data = message->event.SerializeAsString();
  }
  return JsPublish(conn_, message->subject, data, {}, row.key());
}

}  // namespace aion::bus
