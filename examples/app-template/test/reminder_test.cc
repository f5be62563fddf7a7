// Unit tests of the reminder workflow on Aion's test kit: an in-process
// engine whose clock skips ahead whenever every run waits on a timer, so a
// reminder due in 30 days completes in milliseconds. No NATS, no disk.
#include "reminder.h"

#include <aion/testing/test_environment.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>

namespace {

int failures = 0;

void Check(bool ok, const std::string& what) {
  std::cout << (ok ? "ok    " : "FAIL  ") << what << "\n";
  if (!ok) ++failures;
}

// The answer of the query "state", or "" if the query failed.
aion::Json State(aion::testing::TestEnvironment& env, const std::string& id) {
  auto state = env.Query(id, "state");
  return state.ok() ? *state : aion::Json("");
}

// The run's output object, or {} if it did not complete with one.
aion::Json Output(const aion::Result<aion::Outcome>& outcome) {
  if (!outcome.ok() || outcome->status != aion::records::WORKFLOW_STATUS_COMPLETED) {
    return aion::Json::object();
  }
  auto output = aion::ParseJsonPayload(outcome->output);
  return output.ok() && output->is_object() ? *output : aion::Json::object();
}

constexpr long long kThirtyDaysMs = 30LL * 24 * 3600 * 1000;

struct App {
  App() { reminder::Register(workflows, activities); }
  aion::WorkflowRegistry workflows;
  aion::ActivityRegistry activities;
};

// Due in 30 days, acknowledged once it asks: the timer, the activity and
// the signal in one run, with the activity mocked.
void AcknowledgedAfterThirtyDays() {
  App app;
  aion::testing::TestEnvironment env(app.workflows, &app.activities);
  Check(env.MockActivity("compose",
                         [](aion::ActivityContext&, aion::Json in) {
                           return "mocked reminder for " + in.value("to", std::string());
                         })
            .ok(),
        "mock the compose activity");
  const aion::Timestamp started = env.Now();
  aion::Json input = {{"to", "ana"}, {"delay_ms", kThirtyDaysMs}};
  Check(env.Start("r-1", "reminder", input).ok(), "start");
  Check(State(env, "r-1") == "waiting", "waits on its timer");

  // Moves the virtual clock 30 days on; the timer fires on the way.
  Check(env.Sleep(std::chrono::hours(24 * 30)).ok(), "sleep 30 days");
  Check(State(env, "r-1") == "awaiting ack", "asks for an ack");
  Check(env.Signal("r-1", "ack", {{"by", "ana"}}).ok(), "signal ack");

  const aion::Json result = Output(env.AwaitResult("r-1", std::chrono::seconds(10)));
  Check(!result.empty(), "completes");
  Check(result.value("acknowledged", false), "acknowledged");
  Check(result.value("text", "") == "mocked reminder for ana", "text from the mocked activity");
  const aion::Json ack = result.value("ack", aion::Json());
  Check(ack.is_object() && ack.value("by", "") == "ana", "the ack's input");
  Check(env.Now() - started >= kThirtyDaysMs * 1000, "30 virtual days passed");
}

// Nobody acknowledges: the ack deadline passes in virtual time, the real
// compose activity runs, and the history tells the story.
void UnacknowledgedTimesOut() {
  App app;
  aion::testing::TestEnvironment env(app.workflows, &app.activities);
  aion::Json input = {{"to", "bo"}, {"delay_ms", 1000}, {"ack_timeout_ms", 3600000}};
  Check(env.Start("r-2", "reminder", input).ok(), "start");
  const aion::Json result = Output(env.AwaitResult("r-2", std::chrono::seconds(10)));
  Check(!result.empty(), "completes");
  Check(result.value("acknowledged", true) == false, "not acknowledged");
  Check(result.value("text", "") == "Reminder for bo: it is time.", "text from the real activity");
  auto history = env.History("r-2");
  Check(history.ok() && history->size() >= 8, "history recorded");
}

}  // namespace

int main() {
  AcknowledgedAfterThirtyDays();
  UnacknowledgedTimesOut();
  std::cout << (failures == 0 ? "all passed" : std::to_string(failures) + " failed") << "\n";
  return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
