// Recorded histories read back from JSON: the document `aion --json history
// <id>` prints ({"events":[...]}: the protobuf JSON mapping of each event,
// snake_case names, 64-bit integers as strings, payloads inlined as plain
// JSON values), one such document per file or several. Pure functions; safe
// from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "aion/engine/status.h"
#include "aion/engine/store.h"

namespace aion::testing {

// The workflow id replay uses when a document does not name one.
inline constexpr std::string_view kDefaultReplayWorkflowId = "replayed";

struct RecordedHistory {
  // From an optional top-level "workflow_id" (the CLI does not print it;
  // add it when the code derives names from its workflow id).
  std::string workflow_id{kDefaultReplayWorkflowId};
  std::vector<HistoryEvent> events;  // seq 1, 2, ...; the first is WorkflowStarted
  std::string source;                // where it came from, for reports ("line 2")
};

// One document. kInvalidArgument naming the event and field for anything
// malformed: not JSON, no "events" array, an unknown field, an event without
// attributes, seqs not 1, 2, 3..., a history not starting with WorkflowStarted.
Result<RecordedHistory> ParseHistoryJson(std::string_view text);
// A file's text: one document, a JSON array of documents, or JSON lines (one
// document per non-empty line). kInvalidArgument as above, naming the entry.
Result<std::vector<RecordedHistory>> ParseHistories(std::string_view text);
// ParseHistories of a file's contents; kNotFound if it cannot be read.
Result<std::vector<RecordedHistory>> ReadHistoryFile(const std::string& path);

}  // namespace aion::testing
