#include "aion/engine/ids.h"

#include <cstdio>
#include <random>

namespace aion {
namespace {
bool IsTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == ':' || c == '=' || c == '@' || c == '+' || c == '-';
}
}  // namespace

Status ValidateName(std::string_view what, std::string_view name) {
  if (name.empty()) return InvalidArgument(std::string(what) + " is empty");
  if (name.size() > kMaxWorkflowIdLength) {
    return InvalidArgument(std::string(what) + " is longer than 128 characters");
  }
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!IsTokenChar(name[i])) {
      char buf[96];
      std::snprintf(buf, sizeof buf, " has invalid character 0x%02x at offset %zu",
                    static_cast<unsigned char>(name[i]), i);
      return InvalidArgument(std::string(what) + " '" + std::string(name.substr(0, 40)) + "'" +
                             buf + " (allowed: A-Z a-z 0-9 _ : = @ + -)");
    }
  }
  return Status::Ok();
}

Status ValidateWorkflowId(std::string_view id) { return ValidateName("workflow id", id); }

std::uint32_t Fnv1a32(std::string_view bytes) {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

std::uint64_t Fnv1a64(std::string_view bytes) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string NewRunId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

}  // namespace aion
