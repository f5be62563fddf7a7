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
    case Case::ATTRIBUTES_NOT_SET:
      break;
  }
  return "UnknownEvent";
}

bool IsInputEvent(const HistoryEvent& e) {
  const Case c = e.attributes_case();
  return c == Case::kWorkflowStarted || c == Case::kSignalReceived || c == Case::kTimerFired;
}

bool IsTerminalEvent(const HistoryEvent& e) {
  const Case c = e.attributes_case();
  return c == Case::kWorkflowCompleted || c == Case::kWorkflowFailed;
}

WorkflowStatus StatusFromHistory(const std::vector<HistoryEvent>& history) {
  WorkflowStatus status = records::WORKFLOW_STATUS_UNSPECIFIED;
  for (const HistoryEvent& e : history) {
    switch (e.attributes_case()) {
      case Case::kWorkflowStarted:
        status = records::WORKFLOW_STATUS_RUNNING;
        break;
      case Case::kWorkflowCompleted:
        status = records::WORKFLOW_STATUS_COMPLETED;
        break;
      case Case::kWorkflowFailed:
        status = records::WORKFLOW_STATUS_FAILED;
        break;
      default:
        break;
    }
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
