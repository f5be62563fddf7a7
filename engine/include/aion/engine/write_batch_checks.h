// The checks of a WriteBatch that need no stored state (ids, keys, seqs,
// record heads), shared by every Store implementation so they refuse the same
// batches with the same kInvalidArgument. Pure; safe from any thread.
#pragma once

#include <cstddef>
#include <limits>
#include <string_view>

#include "aion/engine/store.h"

namespace aion {

// Non-empty and without NUL, so `id + 0x00 + ...` keys stay unambiguous.
bool IsStorableWorkflowId(std::string_view id);

// kInvalidArgument naming the first offending op or row. `max_key_size`
// bounds the keys a store derives from ids, timer ids and row keys.
Status CheckWriteBatchShape(const WriteBatch& batch,
                            std::size_t max_key_size = std::numeric_limits<std::size_t>::max());

}  // namespace aion
