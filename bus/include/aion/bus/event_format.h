// The format of what the worker publishes for consumers of its own:
// lifecycle events (aion.evt.>) and dead letters (aion.dlq.>). Protobuf
// binary by default; JSON (the protobuf JSON mapping, snake_case) for
// consumers without protobuf. Every message says which in Content-Type
// (application/protobuf or application/json).
#pragma once

#include <google/protobuf/message.h>

#include <string>
#include <string_view>

#include "aion/bus/codec.h"

namespace aion::bus {

// Lifecycle events and dead letters: protobuf (default) or JSON, each with
// its Content-Type (application/protobuf or application/json).
enum class EventFormat { kProtobuf, kJson };
inline constexpr std::string_view kProtobufContentType = "application/protobuf";
// "protobuf" / "json"; kInvalidArgument otherwise.
Result<EventFormat> ParseEventFormat(std::string_view name);
// The body of `message` in `format`, and its Content-Type header.
std::string EncodeEvent(const google::protobuf::Message& message, EventFormat format);
Headers EventHeaders(EventFormat format);

}  // namespace aion::bus
