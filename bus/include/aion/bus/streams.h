// EnsureStreams: creates or updates, idempotently, the JetStream streams and
// consumers of the wire contract (DESIGN §5) at worker startup.
//
// AION_IN (work queue, file storage, duplicate window for Nats-Msg-Id) with one
// durable pull consumer "in-<p>" per partition, AION_EVENTS (limits retention,
// bounded), AION_DLQ and AION_TASKS (<prefix>.task.*, work queue, duplicate
// window; its consumers "task-<queue>" are made by the activity workers,
// e.g. with EnsureTaskConsumer). P is recorded in AION_IN's description; a worker
// configured with another P is refused. Safe to call from any thread, and from
// several workers at once (the server serialises the updates).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "aion/bus/nats_connection.h"
#include "aion/bus/subjects.h"
#include "aion/engine/status.h"

namespace aion::bus {

inline constexpr std::string_view kInStream = "AION_IN";
inline constexpr std::string_view kEventsStream = "AION_EVENTS";
inline constexpr std::string_view kDlqStream = "AION_DLQ";
inline constexpr std::string_view kTasksStream = "AION_TASKS";

struct StreamsOptions {
  std::uint32_t partitions = 16;
  int replicas = 1;
  // Nats-Msg-Id dedupe in AION_IN / AION_EVENTS / AION_TASKS
  std::chrono::seconds duplicate_window{120};
  std::chrono::seconds events_max_age{std::chrono::hours(24 * 7)};
  std::int64_t events_max_bytes = std::int64_t{1} << 30;
  std::chrono::seconds dlq_max_age{std::chrono::hours(24 * 30)};
  std::int64_t dlq_max_bytes = std::int64_t{1} << 30;
  std::chrono::seconds ack_wait{30};
  std::int64_t max_ack_pending = 4096;  // per partition consumer
};

// What the workers need to know about the streams once they exist.
struct StreamsInfo {
  std::uint32_t partitions = 0;
  // Identifies this incarnation of AION_IN (its creation time): stream
  // sequences restart if the stream is ever recreated, so dedupe keys built
  // from sequences carry it.
  std::string in_epoch;
};

// The durable consumer name of a partition: "in-<p>".
std::string ConsumerName(std::uint32_t partition);
// The durable consumer name of a task queue: "task-<queue>".
std::string TaskConsumerName(std::string_view task_queue);

// Errors: kInvalidArgument (AION_IN exists with another P, or was not created
// by Aion), kUnavailable (NATS/JetStream unreachable or refusing).
Result<StreamsInfo> EnsureStreams(NatsConnection& conn, const Subjects& subjects,
                                  const StreamsOptions& options);

// The pull consumer an activity worker of `task_queue` reads from: durable
// "task-<queue>" on AION_TASKS, filter <prefix>.task.<queue>, explicit ack.
// Every worker of the queue binds to the same consumer (a work queue allows
// one consumer per subject). ack_wait should exceed the longest time a task
// runs between heartbeats. Creates or updates it; AION_TASKS must exist.
struct TaskConsumerOptions {
  std::chrono::seconds ack_wait{60};
  std::int64_t max_ack_pending = 1024;
  std::int64_t max_deliver = -1;  // -1: unlimited redeliveries
};
Status EnsureTaskConsumer(NatsConnection& conn, const Subjects& subjects,
                          std::string_view task_queue, const TaskConsumerOptions& options = {});

}  // namespace aion::bus
