// Outbox positions: an outbox row's key is its commit position, 20 decimal
// digits, so reading the outbox in key order reads it in commit order (and,
// per workflow, in seq order). The writer numbers rows; OpenOutboxPositions
// runs once at engine open, before anything else commits.
#pragma once

#include <cstdint>
#include <string>

#include "aion/engine/status.h"
#include "aion/engine/store.h"

namespace aion {

// `n` as 20 decimal digits, zero-padded, so that the strings sort like the
// numbers: outbox positions, and the seqs in msg ids.
std::string TwentyDigits(std::uint64_t n);

// The key of the row at `position`.
inline std::string OutboxPositionKey(std::uint64_t position) { return TwentyDigits(position); }

// Prepares `store`'s outbox for positions and returns the position after its
// last row (0 when empty). Rows keyed the way of earlier versions
// (`<workflow id>/<seq>`, which sorts after every position) are re-keyed
// after the existing positions, in their old key order, keeping the old key
// as their msg_id: they are still published first, in order. Errors: those
// of the store's reads and commit; the engine must not open then.
Result<std::uint64_t> OpenOutboxPositions(Store& store);

}  // namespace aion
