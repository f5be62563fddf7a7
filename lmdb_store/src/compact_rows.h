// Compact stored forms of history events and dedupe entries (schema 2; see
// lmdb_store/README.md, "Compact rows").
//
// A compact value is one marker byte (0x00, which no protobuf encoding starts
// with: field number 0 is invalid) and the message without what the row
// implies: a history event of a workflow's current run without its run id
// (the run id of the latest WorkflowStarted at or before it), a dedupe entry
// without its key (the row's key). Values without the marker are messages in
// full, as schema 1 wrote every row. Pure functions; safe from any thread.
#pragma once

#include <google/protobuf/message_lite.h>

#include <cstddef>
#include <string_view>

#include "aion/engine/history.h"
#include "aion/engine/store.h"

namespace aion::lmdb_compact {

// Whether `event`, appended together with `record`, is stored compact: it
// belongs to the record's current run and follows that run's WorkflowStarted
// (which stays in full, so every compact event has one before it).
bool ImpliesRunId(const HistoryEvent& event, const WorkflowRecord& record);

std::size_t CompactSize(const google::protobuf::MessageLite& message);
// Writes the marker and `message` into `out`, which holds CompactSize bytes.
bool WriteCompact(const google::protobuf::MessageLite& message, char* out, std::size_t size);
// The message bytes of a stored value in either form; `compact` says which.
std::string_view MessageBytes(std::string_view value, bool& compact);

}  // namespace aion::lmdb_compact
