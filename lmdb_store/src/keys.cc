#include "keys.h"

namespace aion::lmdb_keys {

void AppendUint64(std::string& out, std::uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

std::uint64_t ReadUint64(std::string_view bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  return value;
}

std::string EncodeUint32(std::uint32_t value) {
  std::string out;
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xff));
  }
  return out;
}

std::uint32_t DecodeUint32(std::string_view bytes) {
  std::uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  return value;
}

std::uint64_t BiasSigned(std::int64_t value) {
  return static_cast<std::uint64_t>(value) ^ (std::uint64_t{1} << 63);
}

std::int64_t UnbiasSigned(std::uint64_t value) {
  return static_cast<std::int64_t>(value ^ (std::uint64_t{1} << 63));
}

std::string HistoryPrefix(std::string_view workflow_id) {
  std::string key(workflow_id);
  key.push_back('\0');
  return key;
}

std::string HistoryKey(std::string_view workflow_id, std::uint64_t seq) {
  std::string key = HistoryPrefix(workflow_id);
  AppendUint64(key, seq);
  return key;
}

std::string StatusKey(WorkflowStatus status, std::string_view workflow_id) {
  std::string key(1, static_cast<char>(status));
  key.append(workflow_id);
  return key;
}

std::string TimerKey(const TimerRow& row) {
  std::string key;
  AppendUint64(key, BiasSigned(row.fire_at_us()));
  key.append(row.workflow_id());
  key.push_back('\0');
  key.append(row.timer_id());
  return key;
}

Timestamp TimerKeyFireAt(std::string_view key) { return UnbiasSigned(ReadUint64(key)); }

}  // namespace aion::lmdb_keys
