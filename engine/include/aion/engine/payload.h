// Payload helpers: workflow inputs and outputs are bytes plus an encoding.
// JSON ("json/plain") is the default encoding; any JSON value is allowed.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "aion/engine/status.h"
#include "aion/history.pb.h"

namespace aion {

using history::Payload;
using Json = nlohmann::json;

inline constexpr std::string_view kJsonEncoding = "json/plain";
inline constexpr std::string_view kBinaryEncoding = "binary/plain";

Payload JsonPayload(const Json& value);
// kInvalidArgument if the payload is not JSON-encoded or does not parse.
// An empty payload reads as JSON null.
Result<Json> ParseJsonPayload(const Payload& payload);
// The payload as JSON text for display; binary payloads as {"base64": "..."}.
std::string PayloadToDisplay(const Payload& payload);

}  // namespace aion
