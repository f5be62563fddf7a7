// The batches the SIGKILL crash test commits, shared by the child process
// that writes them (lmdb_crash_child) and the test that checks what survived.
//
// Batch n (n >= 1) appends 1-3 events tagged "batch-<n>" to one of three
// workflows, and puts a dedupe key, a timer and an outbox row of its own,
// deleting the previous batch's outbox row. Pure functions.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "aion/engine/store.h"

namespace aion::testing::crash {

constexpr std::uint64_t kWorkflowCount = 3;
constexpr std::size_t kPayloadBytes = 1500;  // makes the map grow within a few rounds

inline std::string WorkflowIdOf(std::uint64_t n) {
  return "crash-" + std::to_string(n % kWorkflowCount);
}
inline std::uint64_t EventCountOf(std::uint64_t n) { return 1 + (n / kWorkflowCount) % 3; }
inline std::string TagOf(std::uint64_t n) { return "batch-" + std::to_string(n); }
inline std::string TimerIdOf(std::uint64_t n) { return "t-" + std::to_string(n); }
inline std::string OutboxKeyOf(std::uint64_t n) {
  char key[32];
  std::snprintf(key, sizeof key, "ob-%012llu", static_cast<unsigned long long>(n));
  return key;
}

// `head` is the current head of WorkflowIdOf(n).
inline WriteBatch CrashBatch(std::uint64_t n, std::uint64_t head) {
  const std::string id = WorkflowIdOf(n);
  AppendOp op;
  op.workflow_id = id;
  op.expected_head = head;
  for (std::uint64_t i = 1; i <= EventCountOf(n); ++i) {
    HistoryEvent& event = op.events.emplace_back();
    event.set_seq(head + i);
    event.set_run_id(TagOf(n));
    auto* signal = event.mutable_signal_received();
    signal->set_name("tick");
    signal->mutable_input()->set_data(std::string(kPayloadBytes, static_cast<char>('a' + n % 26)));
  }
  op.record.set_workflow_id(id);
  op.record.set_run_id(TagOf(n));
  op.record.set_status(records::WORKFLOW_STATUS_RUNNING);
  op.record.set_head_seq(head + EventCountOf(n));

  WriteBatch batch;
  batch.appends.push_back(std::move(op));
  DedupeEntry& dedupe = batch.dedupe_puts.emplace_back();
  dedupe.set_key(TagOf(n));
  dedupe.set_seq(head + EventCountOf(n));
  TimerRow& timer = batch.timer_puts.emplace_back();
  timer.set_fire_at_us(static_cast<Timestamp>(n));
  timer.set_workflow_id(id);
  timer.set_timer_id(TimerIdOf(n));
  OutboxRow& row = batch.outbox_puts.emplace_back();
  row.set_key(OutboxKeyOf(n));
  row.set_workflow_id(id);
  if (n > 1) batch.outbox_deletes.push_back(OutboxKeyOf(n - 1));
  return batch;
}

}  // namespace aion::testing::crash
