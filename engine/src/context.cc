#include "aion/engine/context.h"

#include <spdlog/spdlog.h>

#include <cstdio>

namespace aion {

std::string Context::uuid() {
  const std::uint64_t hi = (random() & 0xffffffffffff0fffull) | 0x0000000000004000ull;
  const std::uint64_t lo = (random() & 0x3fffffffffffffffull) | 0x8000000000000000ull;
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffull));
  return buf;
}

void WorkflowLogger::info(std::string_view msg) const {
  if (!core_->Replaying()) spdlog::info("[{}] {}", core_->WorkflowId(), msg);
}
void WorkflowLogger::warn(std::string_view msg) const {
  if (!core_->Replaying()) spdlog::warn("[{}] {}", core_->WorkflowId(), msg);
}
void WorkflowLogger::error(std::string_view msg) const {
  if (!core_->Replaying()) spdlog::error("[{}] {}", core_->WorkflowId(), msg);
}

}  // namespace aion
