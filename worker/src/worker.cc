#include "aion/worker/worker.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <numeric>
#include <set>

#include "aion/bus/api_server.h"
#include "aion/bus/ingress.h"
#include "aion/bus/mapping_check.h"
#include "aion/bus/nats_connection.h"
#include "aion/bus/outbox_publisher.h"
#include "aion/bus/streams.h"
#include "aion/lmdb_store/lmdb_store.h"
#include "data_dir_lock.h"

namespace aion::worker {
namespace {

namespace fs = std::filesystem;

Result<std::uint32_t> ParseNumber(std::string_view text, std::string_view spec) {
  std::uint32_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return InvalidArgument("partitions '" + std::string(spec) + "': '" + std::string(text) +
                           "' is not a number (expected e.g. 0-3,7)");
  }
  return n;
}

Status AddRange(std::string_view item, std::string_view spec, std::uint32_t count,
                std::set<std::uint32_t>* out) {
  const auto dash = item.find('-');
  auto lo = ParseNumber(item.substr(0, dash), spec);
  if (!lo.ok()) return lo.status();
  auto hi = dash == std::string_view::npos ? lo : ParseNumber(item.substr(dash + 1), spec);
  if (!hi.ok()) return hi.status();
  if (*lo > *hi) return InvalidArgument("partitions '" + std::string(spec) + "': empty range");
  if (*hi >= count) {
    return InvalidArgument("partitions '" + std::string(spec) + "': partition " +
                           std::to_string(*hi) + " is out of range (P = " + std::to_string(count) +
                           ", so 0-" + std::to_string(count - 1) + ")");
  }
  for (std::uint32_t p = *lo; p <= *hi; ++p) out->insert(p);
  return Status::Ok();
}

Status PrepareDataDir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir / "lmdb", ec);
  if (ec) return InvalidArgument("cannot use data dir '" + dir.string() + "': " + ec.message());
  if (access((dir / "lmdb").c_str(), R_OK | W_OK | X_OK) != 0) {
    return InvalidArgument("cannot use data dir '" + dir.string() + "': not writable");
  }
  return Status::Ok();
}

template <typename T>
Status Assign(Result<T> result, T* out) {
  if (!result.ok()) return result.status();
  *out = std::move(*result);
  return Status::Ok();
}

// Registrations that failed, or none at all, are startup errors: a worker
// without its types would dead-letter every start it is sent.
Status ValidateRegistries(const WorkerOptions& options) {
  if (options.workflows != nullptr && !options.workflows->status().ok()) {
    return InvalidArgument("workflow registration failed: " +
                           options.workflows->status().message());
  }
  if (options.activities != nullptr && !options.activities->status().ok()) {
    return InvalidArgument("activity registration failed: " +
                           options.activities->status().message());
  }
  if (options.workflows == nullptr || options.workflows->empty()) {
    return InvalidArgument(
        "no workflow types registered: register at least one (registries.workflows.workflow("
        "\"name\", &Fn)) before the worker starts");
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<std::uint32_t>> ParsePartitions(std::string_view spec, std::uint32_t count) {
  std::set<std::uint32_t> owned;
  std::size_t start = 0;
  while (start <= spec.size()) {
    const auto comma = spec.find(',', start);
    const auto item = spec.substr(start, comma == std::string_view::npos ? comma : comma - start);
    AION_RETURN_IF_ERROR(AddRange(item, spec, count, &owned));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return std::vector<std::uint32_t>(owned.begin(), owned.end());
}

struct Worker::Impl {
  Status Open();

  WorkerOptions options;
  std::unique_ptr<DataDirLock> lock;  // held while `lmdb` is open
  std::unique_ptr<LmdbStore> lmdb;
  std::unique_ptr<bus::NatsConnection> conn;
  std::unique_ptr<bus::NatsOutboxSink> sink;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<bus::ApiServer> api;
  std::unique_ptr<bus::Ingress> ingress;
  bool shut_down = false;
};

// Order matters: the engine's recovery republishes the outbox, so NATS comes
// first; ingress comes last, once everything it feeds is ready.
Status Worker::Impl::Open() {
  Store* store = options.store;
  if (store == nullptr) {
    AION_RETURN_IF_ERROR(PrepareDataDir(options.data_dir));
    AION_RETURN_IF_ERROR(Assign(DataDirLock::Acquire(options.data_dir), &lock));
    LmdbStoreOptions lmdb_options;
    lmdb_options.directory = options.data_dir / "lmdb";
    AION_RETURN_IF_ERROR(Assign(LmdbStore::Open(lmdb_options), &lmdb));
    store = lmdb.get();
  }
  bus::NatsConnectionOptions conn_options;
  conn_options.url = options.nats_url;
  conn_options.name = "aion-worker";
  AION_RETURN_IF_ERROR(Assign(bus::NatsConnection::Connect(conn_options), &conn));
  const bus::Subjects subjects(options.prefix);
  bus::CodecOptions codec_options;
  codec_options.partitions = options.partition_count;
  const bus::Codec codec(subjects, codec_options);
  bus::StreamsOptions streams_options;
  streams_options.partitions = options.partition_count;
  bus::StreamsInfo streams;
  AION_RETURN_IF_ERROR(Assign(bus::EnsureStreams(*conn, subjects, streams_options), &streams));
  if (options.check_nats_mappings) {
    AION_RETURN_IF_ERROR(bus::CheckNatsMappings(
        *conn, subjects, {options.partition_count, options.mapping_check_timeout}));
  }
  sink = std::make_unique<bus::NatsOutboxSink>(*conn, subjects, options.partition_count,
                                               options.event_format);
  EngineOptions engine_options;
  engine_options.store = store;
  engine_options.registry = options.workflows;
  engine_options.outbox = sink.get();
  engine_options.partition_count = options.partition_count;
  engine_options.executor_threads = options.executor_threads;
  engine_options.activities = options.activities;
  engine_options.activity_threads = options.activity_threads;
  engine_options.max_resident_runs = options.max_resident_runs;
  AION_RETURN_IF_ERROR(Assign(Engine::Open(engine_options), &engine));
  bus::ApiServerOptions api_options;
  api_options.partitions = options.partitions;
  AION_RETURN_IF_ERROR(Assign(bus::ApiServer::Start(*conn, *engine, codec, api_options), &api));
  bus::IngressOptions ingress_options;
  ingress_options.partitions = options.partitions;
  ingress_options.stream_epoch = streams.in_epoch;
  ingress_options.dead_letters = options.event_format;
  // A consumer loop restarted by supervision first recreates what is missing.
  ingress_options.repair = [c = conn.get(), subjects, streams_options] {
    return bus::EnsureStreams(*c, subjects, streams_options).status();
  };
  return Assign(bus::Ingress::Start(*conn, *engine, codec, ingress_options), &ingress);
}

Result<std::unique_ptr<Worker>> Worker::Start(WorkerOptions options) {
  AION_RETURN_IF_ERROR(ValidateRegistries(options));
  AION_RETURN_IF_ERROR(bus::ValidatePrefix(options.prefix));
  if (options.partition_count == 0) return InvalidArgument("the partition count must be >= 1");
  if (options.executor_threads < 1 || options.activity_threads < 1) {
    return InvalidArgument("executor and activity threads must be at least 1");
  }
  if (options.store == nullptr && options.data_dir.empty()) {
    return InvalidArgument("no data dir given (--data or AION_DATA_DIR)");
  }
  if (options.partitions.empty()) {
    options.partitions.resize(options.partition_count);
    std::iota(options.partitions.begin(), options.partitions.end(), 0u);
  }
  for (std::uint32_t p : options.partitions) {
    if (p >= options.partition_count) {
      return InvalidArgument("partition " + std::to_string(p) + " is out of range (P = " +
                             std::to_string(options.partition_count) + ")");
    }
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  std::unique_ptr<Worker> worker(new Worker(std::move(impl)));
  AION_RETURN_IF_ERROR(worker->impl_->Open());  // on error ~Worker undoes what opened
  spdlog::info("worker ready: {} partition(s) of {}, NATS {}", worker->partitions().size(),
               worker->impl_->options.partition_count, worker->impl_->options.nats_url);
  return worker;
}

Worker::Worker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Worker::~Worker() { Shutdown(); }

void Worker::Shutdown() {
  Impl& w = *impl_;
  if (w.shut_down) return;
  w.shut_down = true;
  if (w.ingress) w.ingress->StopFetching();
  if (w.api) w.api->Stop();
  if (w.engine) w.engine->Shutdown();
  if (w.ingress) w.ingress->Stop();
  const bool was_running = w.ingress != nullptr;
  if (w.conn) {
    Status flushed = w.conn->Flush(std::chrono::seconds(2));  // the last acks and replies
    if (!flushed.ok()) spdlog::warn("final flush to NATS: {}", flushed.ToString());
  }
  w.ingress.reset();
  w.api.reset();
  w.engine.reset();
  w.sink.reset();
  w.conn.reset();
  w.lmdb.reset();
  w.lock.reset();
  if (was_running) spdlog::info("worker stopped");
}

const std::vector<std::uint32_t>& Worker::partitions() const { return impl_->options.partitions; }

Engine& Worker::engine() { return *impl_->engine; }

}  // namespace aion::worker
