// NatsPipeline: the bus wired to an in-process Engine, as a worker wires it
// (store -> engine with the NATS outbox sink -> streams -> ingress + API), on
// a MemoryStore unless another Store is given, with the reference workflows
// and the reference local activities (so activity workflows run). Header-only;
// one owner thread.
#pragma once

#include <functional>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "aion/bus/api_server.h"
#include "aion/bus/ingress.h"
#include "aion/bus/outbox_publisher.h"
#include "aion/bus/streams.h"
#include "aion/engine/engine.h"
#include "aion/engine/memory_store.h"
#include "aion/examples/reference_workflows.h"

namespace aion::testing {

struct NatsPipelineOptions {
  std::uint32_t partitions = 16;
  std::vector<std::uint32_t> owned;  // empty: all partitions
  Store* store = nullptr;            // null: the pipeline's own MemoryStore
  bus::StreamsOptions streams;       // `partitions` is filled in
  bus::IngressOptions ingress;       // `partitions` and `stream_epoch` are filled in
  bus::ApiServerOptions api;         // `partitions` is filled in
  // Registers more workflows beside the reference ones (test-only types).
  std::function<void(WorkflowRegistry&)> register_workflows;
};

class NatsPipeline {
 public:
  NatsPipeline(const std::string& url, NatsPipelineOptions options = {}) {
    Check(examples::RegisterReferenceWorkflows(registry_));
    Check(examples::RegisterReferenceActivities(activities_));
    if (options.register_workflows) options.register_workflows(registry_);
    bus::NatsConnectionOptions conn_options;
    conn_options.url = url;
    conn_options.name = "aion-pipeline";
    conn_ = Take(bus::NatsConnection::Connect(conn_options));
    bus::Subjects subjects;
    bus::Codec codec(subjects, bus::CodecOptions{.partitions = options.partitions});
    options.streams.partitions = options.partitions;
    auto streams = Take(bus::EnsureStreams(*conn_, subjects, options.streams));
    sink_ = std::make_unique<bus::NatsOutboxSink>(*conn_, subjects, options.partitions);
    EngineOptions engine_options;
    engine_options.store = options.store != nullptr ? options.store : &memory_;
    engine_options.registry = &registry_;
    engine_options.outbox = sink_.get();
    engine_options.partition_count = options.partitions;
    engine_options.activities = &activities_;
    engine_ = Take(Engine::Open(engine_options));
    std::vector<std::uint32_t> owned = options.owned;
    if (owned.empty()) {
      owned.resize(options.partitions);
      std::iota(owned.begin(), owned.end(), 0u);
    }
    options.api.partitions = owned;
    api_ = Take(bus::ApiServer::Start(*conn_, *engine_, codec, options.api));
    options.ingress.partitions = owned;
    options.ingress.stream_epoch = streams.in_epoch;
    ingress_ = Take(bus::Ingress::Start(*conn_, *engine_, codec, options.ingress));
  }
  ~NatsPipeline() { Shutdown(); }

  // The worker's graceful drain: stop fetching and serving, let the engine
  // finish the commit in flight (its callbacks ack), then stop the rest.
  void Shutdown() {
    if (ingress_) ingress_->StopFetching();
    if (api_) api_->Stop();
    if (engine_) engine_->Shutdown();
    if (ingress_) ingress_->Stop();
  }

  Engine& engine() { return *engine_; }
  MemoryStore& memory_store() { return memory_; }
  bus::Ingress& ingress() { return *ingress_; }
  bus::NatsConnection& conn() { return *conn_; }

 private:
  static void Check(const Status& s) {
    if (!s.ok()) throw std::runtime_error(s.ToString());
  }
  template <typename T>
  static T Take(Result<T> r) {
    Check(r.status());
    return std::move(*r);
  }

  MemoryStore memory_;
  WorkflowRegistry registry_;
  ActivityRegistry activities_;
  std::unique_ptr<bus::NatsConnection> conn_;
  std::unique_ptr<bus::NatsOutboxSink> sink_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<bus::ApiServer> api_;
  std::unique_ptr<bus::Ingress> ingress_;
};

}  // namespace aion::testing
