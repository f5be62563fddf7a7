#include "flags.h"

#include "aion/bus/event_format.h"

namespace aion::worker {

void AddFlags(CLI::App& app, Flags& f) {
  app.add_option("--nats", f.nats_url, "NATS server URL")->envname("AION_NATS_URL");
  app.add_option("--data", f.data_dir, "data directory (LMDB under <data>/lmdb)")
      ->envname("AION_DATA_DIR");
  app.add_option("--partitions", f.partitions, "owned partitions, e.g. 0-3,7 (default: all)");
  app.add_option("--partition-count", f.partition_count, "P, fixed when the streams are created")
      ->check(CLI::Range(1u, 4096u));
  app.add_option("--prefix", f.prefix, "subject prefix");
  app.add_option("--log-level", f.log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--executor-threads", f.executor_threads, "threads that run workflow code")
      ->check(CLI::Range(1, 256));
  app.add_option("--activity-threads", f.activity_threads,
                 "threads that run local activities (a bounded pool)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--max-resident-runs", f.max_resident_runs,
                 "idle runs kept in memory; beyond it the least recently used are evicted and "
                 "rebuilt by replay on their next input (0 = no limit)")
      ->capture_default_str();
  app.add_option("--event-format", f.event_format,
                 "body of lifecycle events and dead letters (Content-Type says which)")
      ->check(CLI::IsMember({"protobuf", "json"}))
      ->capture_default_str();
  app.add_flag("--skip-mapping-check", f.skip_mapping_check,
               "do not check at startup that nats-server maps <prefix>.wf and <prefix>.req to "
               "the partitions (for a NATS user that may not subscribe to <prefix>.in/.api)");
  app.add_flag("--dev", f.dev, "start a local nats-server too (data dir default ./aion-dev)");
  app.add_option("--dev-port", f.dev_port, "port of the --dev nats-server (default: any free)");
}

Result<WorkerOptions> ToOptions(const Flags& f) {
  WorkerOptions options;
  options.nats_url = f.nats_url;
  options.data_dir = f.data_dir;
  options.partition_count = f.partition_count;
  options.prefix = f.prefix;
  options.executor_threads = f.executor_threads;
  options.activity_threads = f.activity_threads;
  options.max_resident_runs = f.max_resident_runs;
  options.check_nats_mappings = !f.skip_mapping_check;
  auto events = bus::ParseEventFormat(f.event_format);
  if (!events.ok()) return events.status();
  options.event_format = *events;
  if (!f.partitions.empty()) {
    auto owned = ParsePartitions(f.partitions, f.partition_count);
    if (!owned.ok()) return owned.status();
    options.partitions = *owned;
  }
  return options;
}

}  // namespace aion::worker
