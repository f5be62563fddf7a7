#include "aion/testing/replayer.h"

#include "aion/engine/engine.h"
#include "aion/engine/history.h"
#include "aion/engine/ids.h"
#include "aion/engine/memory_store.h"

namespace aion::testing {
namespace {

// A query no workflow answers: asking it makes the engine rebuild the run by
// replay and answer only after it caught up (or parked it).
constexpr const char* kProbeQuery = "aion-replay-probe";
constexpr std::uint32_t kPartitions = 16;

// The record a worker would hold after `events` (the history up to the end
// of the run that starts at `events[run_start]`).
WorkflowRecord RecordOf(const std::string& workflow_id, const std::vector<HistoryEvent>& events,
                        std::size_t run_start) {
  const HistoryEvent& started = events[run_start];
  WorkflowRecord rec;
  rec.set_workflow_id(workflow_id);
  rec.set_workflow_type(started.workflow_started().workflow_type());
  rec.set_code_version(started.workflow_started().code_version());
  rec.set_run_id(started.run_id());
  rec.set_status(StatusFromHistory(events));
  rec.set_head_seq(events.back().seq());
  rec.set_run_start_seq(started.seq());
  rec.set_start_time_us(started.recorded_at_us());
  if (IsTerminalEvent(events.back())) rec.set_close_time_us(events.back().recorded_at_us());
  rec.set_partition(PartitionOf(workflow_id, kPartitions));
  return rec;
}

// Splits "nondeterminism at seq N: history has X, workflow code issued Y"
// (the engine's parked error) into the report's fields.
void FillNondeterminism(const std::string& parked, ReplayReport& report) {
  const std::string at = "at seq ", has = ": history has ", issued = ", workflow code issued ";
  const auto a = parked.find(at);
  const auto h = parked.find(has, a == std::string::npos ? 0 : a);
  const auto i = parked.rfind(issued);
  if (a == std::string::npos || h == std::string::npos || i == std::string::npos || i < h) return;
  report.seq = std::stoull(parked.substr(a + at.size(), h - a - at.size()));
  report.recorded = parked.substr(h + has.size(), i - h - has.size());
  report.issued = parked.substr(i + issued.size());
}

// "code_name: message" (Status::ToString) back into a Status.
Status StatusOfParked(const std::string& parked) {
  const auto colon = parked.find(": ");
  if (colon == std::string::npos) return Internal(parked);
  return Status{StatusCodeFromName(parked.substr(0, colon)), parked.substr(colon + 2)};
}

}  // namespace

std::string FormatReport(const ReplayReport& report) {
  std::string text = report.workflow_id;
  if (!report.source.empty()) text += " (" + report.source + ")";
  if (report.ok()) return text + ": ok";
  text += ": run " + report.run_id + ": ";
  if (report.status.code() == StatusCode::kNondeterminism && report.seq != 0) {
    return text + "nondeterminism at seq " + std::to_string(report.seq) + ": recorded " +
           report.recorded + "; issued " + report.issued;
  }
  return text + report.status.ToString();
}

Replayer::Replayer(const WorkflowRegistry& registry, ReplayOptions options)
    : registry_(registry), options_(options) {}

std::vector<ReplayReport> Replayer::ReplayAll(const std::vector<RecordedHistory>& histories) const {
  std::vector<ReplayReport> out;
  out.reserve(histories.size());
  for (const RecordedHistory& h : histories) out.push_back(Replay(h));
  return out;
}

Result<std::vector<ReplayReport>> Replayer::ReplayFile(const std::string& path) const {
  auto histories = ReadHistoryFile(path);
  if (!histories.ok()) return histories.status();
  return ReplayAll(*histories);
}

ReplayReport Replayer::Replay(const RecordedHistory& history) const {
  ReplayReport report;
  report.workflow_id = history.workflow_id;
  report.source = history.source;
  std::vector<HistoryEvent> prefix;
  for (std::size_t i = 0; i < history.events.size(); ++i) {
    prefix.push_back(history.events[i]);
    const bool run_ends =
        i + 1 == history.events.size() || history.events[i + 1].has_workflow_started();
    if (!run_ends) continue;
    std::size_t run_start = prefix.size() - 1;
    while (!prefix[run_start].has_workflow_started()) --run_start;
    report.run_id = prefix[run_start].run_id();
    report.status = ReplayRun(history.workflow_id, prefix, run_start, report);
    if (!report.ok()) return report;
  }
  return report;
}

Status Replayer::ReplayRun(const std::string& workflow_id, const std::vector<HistoryEvent>& events,
                           std::size_t run_start, ReplayReport& report) const {
  MemoryStore store;
  WriteBatch batch;
  batch.appends.push_back(
      AppendOp{workflow_id, 0, events, RecordOf(workflow_id, events, run_start)});
  if (Status s = store.Commit(batch); !s.ok()) {
    return InvalidArgument("history does not load: " + s.message());
  }
  // A clock that never moves: no timer of the scratch store fires.
  ManualClock clock(events.back().recorded_at_us());
  auto engine = Engine::Open({.store = &store,
                              .registry = &registry_,
                              .clock = &clock,
                              .partition_count = kPartitions,
                              .executor_threads = 1,
                              .activity_threads = 1});
  if (!engine.ok()) return engine.status();
  auto answer = (*engine)->Query(workflow_id, kProbeQuery, Payload(), options_.timeout);
  const StatusCode code = answer.status().code();
  if (answer.ok() || code == StatusCode::kUnknownQuery || code == StatusCode::kNotRunning) {
    return Status::Ok();  // caught up with every recorded command
  }
  if (code == StatusCode::kQueryTimeout) {
    return Status{
        StatusCode::kDeadlineExceeded,
        "replay did not finish within " + std::to_string(options_.timeout.count()) + " ms"};
  }
  auto described = (*engine)->Describe(workflow_id);
  if (code != StatusCode::kUnavailable || !described.ok() || described->parked_error.empty()) {
    return answer.status();
  }
  Status parked = StatusOfParked(described->parked_error);
  if (parked.code() == StatusCode::kNondeterminism) FillNondeterminism(parked.message(), report);
  return parked;
}

}  // namespace aion::testing
