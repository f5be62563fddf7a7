#include "aion/engine/history.h"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace aion {

using Case = HistoryEvent::AttributesCase;

std::string DescribeEvent(const HistoryEvent& e) {
  switch (e.attributes_case()) {
    case Case::kWorkflowStarted:
      return "WorkflowStarted(type=" + e.workflow_started().workflow_type() + ")";
    case Case::kWorkflowCompleted:
      return "WorkflowCompleted";
    case Case::kWorkflowFailed:
      return "WorkflowFailed(" + e.workflow_failed().message() + ")";
    case Case::kTimerStarted:
      return "TimerStarted(id=" + e.timer_started().timer_id() +
             ", fire_at_us=" + std::to_string(e.timer_started().fire_at_us()) + ")";
    case Case::kTimerFired:
      return "TimerFired(id=" + e.timer_fired().timer_id() + ")";
    case Case::kTimerCancelled:
      return "TimerCancelled(id=" + e.timer_cancelled().timer_id() + ")";
    case Case::kSignalReceived:
      return "SignalReceived(name=" + e.signal_received().name() + ")";
    case Case::kActivityScheduled:
      return "ActivityScheduled(id=" + e.activity_scheduled().activity_id() +
             ", type=" + e.activity_scheduled().activity_type() + ")";
    case Case::kActivityStarted:
      return "ActivityStarted(id=" + e.activity_started().activity_id() +
             ", attempt=" + std::to_string(e.activity_started().attempt()) + ")";
    case Case::kActivityCompleted:
      return "ActivityCompleted(id=" + e.activity_completed().activity_id() +
             ", attempt=" + std::to_string(e.activity_completed().attempt()) + ")";
    case Case::kActivityFailed:
      return "ActivityFailed(id=" + e.activity_failed().activity_id() +
             ", attempt=" + std::to_string(e.activity_failed().attempt()) +
             (e.activity_failed().retry_at_us() > 0 ? ", will retry" : ", final") + ")";
    case Case::kActivityTimedOut:
      return "ActivityTimedOut(id=" + e.activity_timed_out().activity_id() +
             ", attempt=" + std::to_string(e.activity_timed_out().attempt()) + ", " +
             TimeoutKindName(e.activity_timed_out().kind()) +
             (e.activity_timed_out().retry_at_us() > 0 ? ", will retry" : ", final") + ")";
    case Case::kActivityCancelRequested:
      return "ActivityCancelRequested(id=" + e.activity_cancel_requested().activity_id() + ")";
    case Case::kWorkflowCancelRequested:
      return "WorkflowCancelRequested";
    case Case::kWorkflowCancelled:
      return "WorkflowCancelled";
    case Case::kWorkflowTerminated:
      return std::string(e.workflow_terminated().timed_out() ? "WorkflowTerminated(timed out)"
                                                             : "WorkflowTerminated");
    case Case::kSideEffectRecorded:
      return "SideEffectRecorded(id=" + e.side_effect_recorded().side_effect_id() + ")";
    case Case::kWorkflowContinuedAsNew:
      return "WorkflowContinuedAsNew";
    case Case::kPatchMarker:
      return "PatchMarker(id=" + e.patch_marker().patch_id() + ")";
    case Case::kChildWorkflowScheduled:
      return "ChildWorkflowScheduled(ref=" + e.child_workflow_scheduled().child_ref() +
             ", id=" + e.child_workflow_scheduled().workflow_id() +
             ", type=" + e.child_workflow_scheduled().workflow_type() + ")";
    case Case::kChildWorkflowCancelRequested:
      return "ChildWorkflowCancelRequested(ref=" + e.child_workflow_cancel_requested().child_ref() +
             ")";
    case Case::kChildWorkflowClosed:
      return "ChildWorkflowClosed(ref=" + e.child_workflow_closed().child_ref() +
             ", status=" + ChildStatusName(e.child_workflow_closed().status()) + ")";
    case Case::ATTRIBUTES_NOT_SET:
      break;
  }
  return "UnknownEvent";
}

bool IsInputEvent(const HistoryEvent& e) {
  switch (e.attributes_case()) {
    case Case::kWorkflowStarted:
    case Case::kSignalReceived:
    case Case::kTimerFired:
    case Case::kActivityStarted:
    case Case::kActivityCompleted:
    case Case::kActivityFailed:
    case Case::kActivityTimedOut:
    case Case::kWorkflowCancelRequested:
    case Case::kWorkflowTerminated:
    case Case::kChildWorkflowClosed:
      return true;
    default:
      return false;
  }
}

bool IsEngineRecorded(const HistoryEvent& e) { return IsInputEvent(e) || e.caused_by() == 0; }

bool IsTerminalEvent(const HistoryEvent& e) {
  const Case c = e.attributes_case();
  return c == Case::kWorkflowCompleted || c == Case::kWorkflowFailed ||
         c == Case::kWorkflowCancelled || c == Case::kWorkflowTerminated ||
         c == Case::kWorkflowContinuedAsNew;
}

WorkflowStatus StatusOfTerminal(const HistoryEvent& e) {
  switch (e.attributes_case()) {
    case Case::kWorkflowCompleted:
      return records::WORKFLOW_STATUS_COMPLETED;
    case Case::kWorkflowFailed:
      return records::WORKFLOW_STATUS_FAILED;
    case Case::kWorkflowCancelled:
      return records::WORKFLOW_STATUS_CANCELLED;
    case Case::kWorkflowTerminated:
      return e.workflow_terminated().timed_out() ? records::WORKFLOW_STATUS_TIMED_OUT
                                                 : records::WORKFLOW_STATUS_TERMINATED;
    case Case::kWorkflowContinuedAsNew:
      return records::WORKFLOW_STATUS_CONTINUED_AS_NEW;
    default:
      return records::WORKFLOW_STATUS_UNSPECIFIED;
  }
}

std::string TerminalMessage(const HistoryEvent& e) {
  switch (e.attributes_case()) {
    case Case::kWorkflowFailed:
      return e.workflow_failed().message();
    case Case::kWorkflowCancelled:
      return e.workflow_cancelled().message();
    case Case::kWorkflowTerminated:
      return e.workflow_terminated().reason();
    default:
      return "";
  }
}

std::string TimeoutKindName(history::TimeoutKind kind) {
  switch (kind) {
    case history::TIMEOUT_KIND_START_TO_CLOSE:
      return "start_to_close";
    case history::TIMEOUT_KIND_SCHEDULE_TO_CLOSE:
      return "schedule_to_close";
    case history::TIMEOUT_KIND_HEARTBEAT:
      return "heartbeat";
    default:
      return "unknown";
  }
}

std::string ChildStatusName(history::ChildStatus status) {
  switch (status) {
    case history::CHILD_STATUS_COMPLETED:
      return "completed";
    case history::CHILD_STATUS_FAILED:
      return "failed";
    case history::CHILD_STATUS_CANCELLED:
      return "cancelled";
    case history::CHILD_STATUS_TERMINATED:
      return "terminated";
    case history::CHILD_STATUS_TIMED_OUT:
      return "timed_out";
    case history::CHILD_STATUS_START_FAILED:
      return "start_failed";
    default:
      return "unknown";
  }
}

history::ChildStatus ChildStatusOf(WorkflowStatus closed) {
  switch (closed) {
    case records::WORKFLOW_STATUS_COMPLETED:
      return history::CHILD_STATUS_COMPLETED;
    case records::WORKFLOW_STATUS_FAILED:
      return history::CHILD_STATUS_FAILED;
    case records::WORKFLOW_STATUS_CANCELLED:
      return history::CHILD_STATUS_CANCELLED;
    case records::WORKFLOW_STATUS_TERMINATED:
      return history::CHILD_STATUS_TERMINATED;
    case records::WORKFLOW_STATUS_TIMED_OUT:
      return history::CHILD_STATUS_TIMED_OUT;
    default:
      return history::CHILD_STATUS_UNSPECIFIED;
  }
}

WorkflowStatus StatusFromHistory(const std::vector<HistoryEvent>& history) {
  WorkflowStatus status = records::WORKFLOW_STATUS_UNSPECIFIED;
  for (const HistoryEvent& e : history) {
    if (e.has_workflow_started()) status = records::WORKFLOW_STATUS_RUNNING;
    if (IsTerminalEvent(e)) status = StatusOfTerminal(e);
  }
  return status;
}

std::string WorkflowStatusName(WorkflowStatus status) {
  constexpr std::string_view kPrefix = "WORKFLOW_STATUS_";
  std::string name = records::WorkflowStatus_Name(status);
  if (name.rfind(kPrefix, 0) == 0) name.erase(0, kPrefix.size());
  if (name.empty()) return "unknown";
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return name;
}

}  // namespace aion
