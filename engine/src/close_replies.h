// Close replies: a start with header Aion-Reply-When: closed asks to be
// answered on its Aion-Reply-To when its run closes. The subject is kept in
// the workflow record (durable, so a worker restart between start and close
// loses nothing) and answered through the outbox from the commit that closes
// the run, so the answer leaves only from committed state (at least once).
//
// Contract:
// - AddCloseReply keeps at most kMaxCloseReplies per record; a subject
//   already there is not added twice; false when the reply was not kept.
// - CloseReplyRow builds the (unkeyed) outbox row answering `reply` with
//   the terminal event `terminal` (seq and run id set); msg_id is
//   `<id>/<terminal seq>/reply/<n>`.
// - TakeCloseReplies returns the rows answering every reply of `rec` and
//   clears them; the caller keys and stores them in the same commit.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "aion/engine/history.h"
#include "aion/engine/store.h"

namespace aion {

inline constexpr std::size_t kMaxCloseReplies = 16;

bool AddCloseReply(WorkflowRecord& rec, const std::string& subject, bool json);

OutboxRow CloseReplyRow(const WorkflowRecord& rec, const records::CloseReply& reply,
                        const HistoryEvent& terminal, std::size_t n);

std::vector<OutboxRow> TakeCloseReplies(WorkflowRecord& rec, const HistoryEvent& terminal);

}  // namespace aion
