// The checks of a WriteBatch that need no stored state: ids, keys, seqs,
// record heads, and LMDB's key size limit. Pure; safe from any thread.
#pragma once

#include <cstddef>
#include <string_view>

#include "aion/engine/store.h"

namespace aion::lmdb_checks {

// Non-empty and without NUL, so `id + 0x00 + ...` keys stay unambiguous.
bool IsStorableWorkflowId(std::string_view id);

// kInvalidArgument naming the first offending op or row.
Status CheckBatchShape(const WriteBatch& batch, std::size_t max_key_size);

}  // namespace aion::lmdb_checks
