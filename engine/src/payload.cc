#include "aion/engine/payload.h"

namespace aion {

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned n = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += {kAlphabet[(n >> 18) & 63], kAlphabet[(n >> 12) & 63], kAlphabet[(n >> 6) & 63],
            kAlphabet[n & 63]};
  }
  if (i + 1 == in.size()) {
    const unsigned n = static_cast<unsigned char>(in[i]) << 16;
    out += {kAlphabet[(n >> 18) & 63], kAlphabet[(n >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const unsigned n =
        (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += {kAlphabet[(n >> 18) & 63], kAlphabet[(n >> 12) & 63], kAlphabet[(n >> 6) & 63], '='};
  }
  return out;
}

Payload JsonPayload(const Json& value) {
  Payload p;
  p.set_data(value.dump());
  p.set_encoding(std::string(kJsonEncoding));
  return p;
}

Result<Json> ParseJsonPayload(const Payload& payload) {
  if (payload.data().empty()) return Json(nullptr);
  if (!payload.encoding().empty() && payload.encoding() != kJsonEncoding) {
    return InvalidArgument("payload encoding is '" + payload.encoding() + "', expected json/plain");
  }
  Json j = Json::parse(payload.data(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument("payload is not valid JSON");
  return j;
}

std::string PayloadToDisplay(const Payload& payload) {
  auto j = ParseJsonPayload(payload);
  if (j.ok()) return j->dump();
  return Json{{"base64", Base64(payload.data())}}.dump();
}

}  // namespace aion
