#include "aion/bus/streams.h"

#include <spdlog/spdlog.h>

#include <cstring>
#include <memory>
#include <vector>

#include "aion/engine/ids.h"

namespace aion::bus {
namespace {

using std::chrono::nanoseconds;

struct StreamInfoDeleter {
  void operator()(jsStreamInfo* si) const { jsStreamInfo_Destroy(si); }
};
using StreamInfoPtr = std::unique_ptr<jsStreamInfo, StreamInfoDeleter>;

struct ConsumerInfoDeleter {
  void operator()(jsConsumerInfo* ci) const { jsConsumerInfo_Destroy(ci); }
};
using ConsumerInfoPtr = std::unique_ptr<jsConsumerInfo, ConsumerInfoDeleter>;

constexpr std::string_view kPartitionsKey = "partitions=";

std::string InDescription(std::uint32_t partitions) {
  return "Aion inbox; " + std::string(kPartitionsKey) + std::to_string(partitions) +
         " (fixed at creation)";
}

// P as recorded in AION_IN's description, or -1.
long long RecordedPartitions(const char* description) {
  if (description == nullptr) return -1;
  const char* at = std::strstr(description, kPartitionsKey.data());
  if (at == nullptr) return -1;
  char* end = nullptr;
  long long p = std::strtoll(at + kPartitionsKey.size(), &end, 10);
  return end == at + kPartitionsKey.size() ? -1 : p;
}

Status CheckInStream(const jsStreamInfo& si, std::uint32_t partitions) {
  long long recorded = RecordedPartitions(si.Config != nullptr ? si.Config->Description : nullptr);
  if (recorded < 0) {
    return InvalidArgument(std::string(kInStream) +
                           " exists but records no partition count in its description; it was "
                           "not created by Aion (delete it or use another NATS account)");
  }
  if (recorded != partitions) {
    return InvalidArgument(std::string(kInStream) + " was created with " +
                           std::to_string(recorded) +
                           " partitions but this worker is configured "
                           "with " +
                           std::to_string(partitions) +
                           "; P is fixed when the streams are created (use --partition-count " +
                           std::to_string(recorded) + ")");
  }
  return Status::Ok();
}

// Creates the stream, or checks and updates it if it exists. Returns its info.
Result<StreamInfoPtr> AddOrUpdateStream(jsCtx* js, jsStreamConfig& cfg, std::uint32_t partitions) {
  jsStreamInfo* raw = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&raw, js, cfg.Name, nullptr, &jerr);
  StreamInfoPtr existing(raw);
  raw = nullptr;
  if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
    s = js_AddStream(&raw, js, &cfg, nullptr, &jerr);
    if (s != NATS_OK) return NatsStatus(s, std::string("cannot create stream ") + cfg.Name, jerr);
    spdlog::info("created stream {}", cfg.Name);
    return StreamInfoPtr(raw);
  }
  if (s != NATS_OK) return NatsStatus(s, std::string("cannot read stream ") + cfg.Name, jerr);
  if (std::string_view(cfg.Name) == kInStream) {
    AION_RETURN_IF_ERROR(CheckInStream(*existing, partitions));
  }
  s = js_UpdateStream(&raw, js, &cfg, nullptr, &jerr);
  if (s != NATS_OK) return NatsStatus(s, std::string("cannot update stream ") + cfg.Name, jerr);
  return StreamInfoPtr(raw);
}

// Creates or updates the durable pull consumer `cc` on `stream_name`.
Status EnsureConsumerConfig(jsCtx* js, std::string_view stream_name, const std::string& name,
                            jsConsumerConfig& cc) {
  jsConsumerInfo* raw = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const std::string stream(stream_name);
  natsStatus s = js_GetConsumerInfo(&raw, js, stream.c_str(), name.c_str(), nullptr, &jerr);
  ConsumerInfoPtr existing(raw);
  raw = nullptr;
  if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) {
    s = js_AddConsumer(&raw, js, stream.c_str(), &cc, nullptr, &jerr);
  } else if (s == NATS_OK) {
    s = js_UpdateConsumer(&raw, js, stream.c_str(), &cc, nullptr, &jerr);
  }
  ConsumerInfoPtr done(raw);
  if (s != NATS_OK) return NatsStatus(s, "cannot create or update consumer " + name, jerr);
  return Status::Ok();
}

// A durable pull consumer of every message on `filter`, acked one by one.
// `name` and `filter` must outlive the config.
jsConsumerConfig PullConsumerConfig(const std::string& name, const char* description,
                                    const std::string& filter, std::chrono::seconds ack_wait,
                                    std::int64_t max_ack_pending) {
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = name.c_str();
  cc.Description = description;
  cc.DeliverPolicy = js_DeliverAll;
  cc.AckPolicy = js_AckExplicit;
  cc.ReplayPolicy = js_ReplayInstant;
  cc.AckWait = nanoseconds(ack_wait).count();
  cc.FilterSubject = filter.c_str();
  cc.MaxAckPending = max_ack_pending;
  return cc;
}

Status EnsureConsumer(jsCtx* js, const std::string& name, const std::string& filter,
                      const StreamsOptions& options) {
  jsConsumerConfig cc = PullConsumerConfig(name, "Aion partition inbox", filter, options.ack_wait,
                                           options.max_ack_pending);
  return EnsureConsumerConfig(js, kInStream, name, cc);
}

void BaseConfig(jsStreamConfig& cfg, const char* name, const char** subject,
                const StreamsOptions& options) {
  jsStreamConfig_Init(&cfg);
  cfg.Name = name;
  cfg.Subjects = subject;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Replicas = options.replicas;
  cfg.Duplicates = nanoseconds(options.duplicate_window).count();
}

}  // namespace

std::string ConsumerName(std::uint32_t partition) { return "in-" + std::to_string(partition); }

std::string TaskConsumerName(std::string_view task_queue) {
  return "task-" + std::string(task_queue);
}

Status EnsureTaskConsumer(NatsConnection& conn, const Subjects& subjects,
                          std::string_view task_queue, const TaskConsumerOptions& options) {
  AION_RETURN_IF_ERROR(ValidateName("task queue", task_queue));
  const std::string name = TaskConsumerName(task_queue);
  const std::string filter = subjects.Task(task_queue);
  jsConsumerConfig cc = PullConsumerConfig(name, "Aion activity task queue", filter,
                                           options.ack_wait, options.max_ack_pending);
  cc.MaxDeliver = options.max_deliver;
  return EnsureConsumerConfig(conn.js(), kTasksStream, name, cc);
}

Result<StreamsInfo> EnsureStreams(NatsConnection& conn, const Subjects& subjects,
                                  const StreamsOptions& options) {
  if (options.partitions == 0) return InvalidArgument("the partition count must be at least 1");
  const std::string in_name(kInStream), evt_name(kEventsStream), dlq_name(kDlqStream),
      tasks_name(kTasksStream);
  const std::string in_subject = subjects.InboxAll(), evt_subject = subjects.EventsAll(),
                    dlq_subject = subjects.DlqAll(), tasks_subject = subjects.TasksAll();
  const std::string description = InDescription(options.partitions);
  const char* in_subjects[] = {in_subject.c_str()};
  const char* evt_subjects[] = {evt_subject.c_str()};
  const char* dlq_subjects[] = {dlq_subject.c_str()};
  const char* tasks_subjects[] = {tasks_subject.c_str()};

  jsStreamConfig in;
  BaseConfig(in, in_name.c_str(), in_subjects, options);
  in.Description = description.c_str();
  in.Retention = js_WorkQueuePolicy;
  auto in_info = AddOrUpdateStream(conn.js(), in, options.partitions);
  if (!in_info.ok()) return in_info.status();

  jsStreamConfig evt;
  BaseConfig(evt, evt_name.c_str(), evt_subjects, options);
  evt.Description = "Aion lifecycle events";
  evt.Retention = js_LimitsPolicy;
  evt.MaxAge = nanoseconds(options.events_max_age).count();
  evt.MaxBytes = options.events_max_bytes;
  auto evt_info = AddOrUpdateStream(conn.js(), evt, options.partitions);
  if (!evt_info.ok()) return evt_info.status();

  jsStreamConfig dlq;
  BaseConfig(dlq, dlq_name.c_str(), dlq_subjects, options);
  dlq.Description = "Aion rejected input with its reason";
  dlq.Retention = js_LimitsPolicy;
  dlq.MaxAge = nanoseconds(options.dlq_max_age).count();
  dlq.MaxBytes = options.dlq_max_bytes;
  auto dlq_info = AddOrUpdateStream(conn.js(), dlq, options.partitions);
  if (!dlq_info.ok()) return dlq_info.status();

  // Activity tasks: one subject per queue, each read by its queue's durable
  // consumer; <prefix>.task.<queue>.cancel (core NATS) is not captured.
  jsStreamConfig tasks;
  BaseConfig(tasks, tasks_name.c_str(), tasks_subjects, options);
  tasks.Description = "Aion activity tasks, one subject per task queue";
  tasks.Retention = js_WorkQueuePolicy;
  auto tasks_info = AddOrUpdateStream(conn.js(), tasks, options.partitions);
  if (!tasks_info.ok()) return tasks_info.status();

  for (std::uint32_t p = 0; p < options.partitions; ++p) {
    AION_RETURN_IF_ERROR(
        EnsureConsumer(conn.js(), ConsumerName(p), subjects.InboxFilter(p), options));
  }
  return StreamsInfo{options.partitions, std::to_string((*in_info)->Created)};
}

}  // namespace aion::bus
