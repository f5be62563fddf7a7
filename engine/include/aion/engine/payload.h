// Payload helpers: workflow inputs and outputs are bytes plus an encoding.
// JSON ("json/plain") is the default encoding; any JSON value is allowed.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

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
// Standard base64 with padding (as the protobuf JSON mapping writes bytes).
std::string Base64(std::string_view bytes);
// The payload as JSON text for display; binary payloads as {"base64": "..."}.
std::string PayloadToDisplay(const Payload& payload);

// Thrown into workflow code when a received payload does not convert to the
// type the code asked for. Escaping the workflow, it fails the run.
class PayloadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

// A payload as T: Payload as is, Json parsed, anything else through
// nlohmann::json's from_json. Throws PayloadError.
template <typename T>
T FromPayload(const Payload& p) {
  if constexpr (std::is_same_v<T, Payload>) {
    return p;
  } else {
    auto j = ParseJsonPayload(p);
    if (!j.ok()) throw PayloadError(j.status().message());
    if constexpr (std::is_same_v<T, Json>) {
      return std::move(*j);
    } else {
      try {
        return j->template get<T>();
      } catch (const std::exception& e) {
        throw PayloadError(std::string("payload does not convert: ") + e.what());
      }
    }
  }
}

template <typename T>
Payload ToPayload(const T& v) {
  if constexpr (std::is_same_v<T, Payload>) {
    return v;
  } else {
    return JsonPayload(Json(v));
  }
}

}  // namespace detail

}  // namespace aion
