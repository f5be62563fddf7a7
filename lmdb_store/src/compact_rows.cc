#include "compact_rows.h"

namespace aion::lmdb_compact {
namespace {
constexpr char kMarker = '\0';
}  // namespace

bool ImpliesRunId(const HistoryEvent& event, const WorkflowRecord& record) {
  return !event.has_workflow_started() && !event.run_id().empty() &&
         event.run_id() == record.run_id() && record.run_start_seq() > 0 &&
         event.seq() > record.run_start_seq();
}

std::size_t CompactSize(const google::protobuf::MessageLite& message) {
  return 1 + message.ByteSizeLong();
}

bool WriteCompact(const google::protobuf::MessageLite& message, char* out, std::size_t size) {
  if (size < 1) return false;
  out[0] = kMarker;
  return message.SerializeToArray(out + 1, static_cast<int>(size - 1));
}

std::string_view MessageBytes(std::string_view value, bool& compact) {
  compact = !value.empty() && value[0] == kMarker;
  return compact ? value.substr(1) : value;
}

}  // namespace aion::lmdb_compact
