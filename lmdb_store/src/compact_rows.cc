#include "compact_rows.h"

#include <string>

namespace aion::lmdb_compact {
namespace {
constexpr char kMarker = '\0';
}  // namespace

bool ImpliesRunId(const HistoryEvent& event, const WorkflowRecord& record) {
  return !event.has_workflow_started() && !event.run_id().empty() &&
         event.run_id() == record.run_id() && record.run_start_seq() > 0 &&
         event.seq() > record.run_start_seq();
}

bool IsCompact(std::string_view value) { return !value.empty() && value[0] == kMarker; }

std::size_t CompactSize(const google::protobuf::MessageLite& message) {
  return 1 + message.ByteSizeLong();
}

bool WriteCompact(const google::protobuf::MessageLite& message, char* out, std::size_t size) {
  if (size < 1) return false;
  out[0] = kMarker;
  return message.SerializeToArray(out + 1, static_cast<int>(size - 1));
}

Status ParseValue(std::string_view value, google::protobuf::MessageLite& message,
                  std::string_view what, bool& compact) {
  compact = IsCompact(value);
  if (compact) value.remove_prefix(1);
  if (!message.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return Internal("stored " + std::string(what) + " does not parse");
  }
  return Status::Ok();
}

}  // namespace aion::lmdb_compact
