#include "aion/bus/outbox_publisher.h"

#include <spdlog/spdlog.h>

#include "aion/bus/codec.h"
#include "nats_util.h"

namespace aion::bus {

NatsOutboxSink::NatsOutboxSink(NatsConnection& conn, Subjects subjects)
    : conn_(conn), subjects_(std::move(subjects)) {}

Status NatsOutboxSink::Publish(const OutboxRow& row) {
  auto message = LifecycleFromRow(row, subjects_);
  if (!message.ok()) {
    spdlog::error("dropping outbox row that cannot be published: {}", message.status().message());
    return Status::Ok();
  }
  const std::string data = message->event.SerializeAsString();
  return JsPublish(conn_, message->subject, data, {}, row.key());
}

}  // namespace aion::bus
