#include "aion/bus/event_format.h"

namespace aion::bus {

Result<EventFormat> ParseEventFormat(std::string_view name) {
  if (name == "protobuf") return EventFormat::kProtobuf;
  if (name == "json") return EventFormat::kJson;
  return InvalidArgument("event format '" + SanitizeUtf8(name.substr(0, 64)) +
                         "' is not one of json, protobuf");
}

std::string EncodeEvent(const google::protobuf::Message& message, EventFormat format) {
  return EncodeMessage(message, format == EventFormat::kJson);
}

Headers EventHeaders(EventFormat format) {
  return {{std::string(kContentTypeHeader),
           std::string(format == EventFormat::kJson ? kJsonContentType : kProtobufContentType)}};
}

}  // namespace aion::bus
