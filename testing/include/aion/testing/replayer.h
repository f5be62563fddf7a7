// Replayer: runs recorded histories through the current workflow code and
// reports whether the code still issues the recorded commands (DESIGN §4.5),
// so a change can be checked against production histories before it deploys.
// Each run is replayed by a scratch Engine on a MemoryStore (the engine's own
// replay path). The registry is borrowed; Replay may be called from any thread.
// Nothing a replay issues takes effect: the scratch engine has no local
// activities and no outbox sink, so commands issued after the history's last
// event (an open run's next step) are recorded in the scratch store only.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "aion/engine/registry.h"
#include "aion/engine/status.h"
#include "aion/testing/history_json.h"

namespace aion::testing {

struct ReplayOptions {
  // Wall time one run may take to replay before it is reported kDeadlineExceeded.
  std::chrono::milliseconds timeout{10000};
};

struct ReplayReport {
  std::string workflow_id;
  std::string source;  // RecordedHistory::source
  // Ok, or why the history does not replay: kNondeterminism (seq, recorded
  // and issued below), kUnknownWorkflowType (type or code version missing),
  // kDeadlineExceeded, or another engine error.
  Status status;
  std::string run_id;     // the run that failed
  std::uint64_t seq = 0;  // kNondeterminism: the seq of the recorded command
  std::string recorded;   // kNondeterminism: the recorded command, as the engine describes it
  std::string issued;     // kNondeterminism: what the code issued instead
  bool ok() const { return status.ok(); }
};

// "replayed (line 1): ok" or "... nondeterminism at seq 5: recorded ...; issued ...".
std::string FormatReport(const ReplayReport& report);

class Replayer {
 public:
  explicit Replayer(const WorkflowRegistry& registry, ReplayOptions options = {});

  // Replays every run of the history in order; stops at the first that fails.
  ReplayReport Replay(const RecordedHistory& history) const;
  std::vector<ReplayReport> ReplayAll(const std::vector<RecordedHistory>& histories) const;
  // ReadHistoryFile, then ReplayAll; the reading's error if it fails.
  Result<std::vector<ReplayReport>> ReplayFile(const std::string& path) const;

 private:
  // Replays the run starting at events[run_start] (events: the history up
  // to its end); fills the nondeterminism fields of `report`.
  Status ReplayRun(const std::string& workflow_id, const std::vector<HistoryEvent>& events,
                   std::size_t run_start, ReplayReport& report) const;

  const WorkflowRegistry& registry_;
  ReplayOptions options_;
};

}  // namespace aion::testing
