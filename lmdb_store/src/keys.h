// Key encodings of the LMDB databases (see lmdb_store/README.md).
//
// Every multi-byte integer is big-endian so that LMDB's byte-wise key order is
// the numeric order. Workflow ids never contain NUL (callers check), so the
// 0x00 separator keeps `id + 0x00 + ...` keys of different ids apart.
// Pure functions; safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "aion/engine/store.h"

namespace aion::lmdb_keys {

void AppendUint64(std::string& out, std::uint64_t value);
std::uint64_t ReadUint64(std::string_view bytes);  // the first 8 bytes
std::string EncodeUint32(std::uint32_t value);
std::uint32_t DecodeUint32(std::string_view bytes);  // the first 4 bytes
// Maps int64 to uint64 so that unsigned order equals signed order.
std::uint64_t BiasSigned(std::int64_t value);
std::int64_t UnbiasSigned(std::uint64_t value);

// history: id + 0x00 + seq.
std::string HistoryPrefix(std::string_view workflow_id);
std::string HistoryKey(std::string_view workflow_id, std::uint64_t seq);
// by_status: status byte + id.
std::string StatusKey(WorkflowStatus status, std::string_view workflow_id);
// timers: biased fire_at_us + id + 0x00 + timer_id.
std::string TimerKey(const TimerRow& row);
Timestamp TimerKeyFireAt(std::string_view key);

}  // namespace aion::lmdb_keys
