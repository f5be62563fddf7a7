// Ingress: pulls each owned partition's inbox from JetStream into the engine,
// acking only after the engine committed (DESIGN §3, §4.2, §4.9, §4.10).
//
// One fetch thread per owned partition pulls batches from its durable consumer
// "in-<p>", decodes them and hands the valid ones to Engine::Submit. The
// engine's callback (writer thread, after the commit) acks and answers them.
// Bad input is Term'ed, dead-lettered to <prefix>.dlq.<kind> and answered; a
// failed commit is never acked and pauses that partition. Borrows the
// connection and the engine, which must outlive it. Start/Stop from one
// owning thread; everything else runs on Ingress's own threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "aion/bus/codec.h"
#include "aion/bus/event_format.h"
#include "aion/bus/nats_connection.h"
#include "aion/engine/engine.h"

namespace aion::bus {

struct IngressOptions {
  std::vector<std::uint32_t> partitions;       // the partitions this worker owns
  std::string stream_epoch;                    // StreamsInfo::in_epoch (dedupe keys)
  int max_batch = 256;                         // messages per fetch and per Submit
  int max_inflight_batches = 4;                // submitted, not yet committed, per partition
  std::chrono::milliseconds idle_wait{500};    // long poll while the inbox is empty
  std::chrono::milliseconds nak_delay{1000};   // redelivery delay of uncommitted messages
  std::chrono::milliseconds max_pause{30000};  // backoff ceiling while commits fail
  // A message refused with an unexpected error (internal, ...) is retried;
  // on this delivery it is dead-lettered instead, so it cannot loop forever.
  std::uint64_t poison_deliveries = 5;
  std::chrono::milliseconds drain_timeout{10000};  // Stop: wait for in-flight commits
  // Supervision of each partition's consumer loop: failed fetches (and an
  // exception in the loop) back off from 250 ms, doubling up to
  // max_fetch_backoff; after rebind_after failures in a row, or when an idle
  // partition finds its consumer gone (checked every consumer_check), the
  // loop is restarted: `repair` runs (the worker passes EnsureStreams, which
  // recreates a deleted consumer), then it binds to the consumer again.
  std::chrono::milliseconds max_fetch_backoff{5000};
  int rebind_after = 4;
  std::chrono::milliseconds consumer_check{5000};
  std::function<Status()> repair;  // null: only rebind
  // The body of dead letters on aion.dlq.<kind> (Content-Type says which).
  EventFormat dead_letters = EventFormat::kProtobuf;
};

// Counters for tests and monitoring; monotonic.
struct IngressStats {
  std::uint64_t fetched = 0;
  std::uint64_t acked = 0;
  std::uint64_t dead_lettered = 0;
  std::uint64_t nacked = 0;    // not committed, redelivered later
  std::uint64_t pauses = 0;    // times a partition stopped fetching for backpressure
  std::uint64_t restarts = 0;  // consumer loops restarted by supervision
};

class Ingress {
 public:
  // Binds to the partitions' consumers (EnsureStreams must have run) and
  // starts fetching. kUnavailable if a consumer cannot be bound.
  static Result<std::unique_ptr<Ingress>> Start(NatsConnection& conn, Engine& engine, Codec codec,
                                                IngressOptions options);
  ~Ingress();  // Stop()
  Ingress(const Ingress&) = delete;
  Ingress& operator=(const Ingress&) = delete;

  // Stops fetching and joins the fetch threads; submitted batches still
  // complete. Idempotent.
  void StopFetching();
  // StopFetching, then waits (up to drain_timeout) for the callbacks of
  // submitted batches. Messages whose commit never reported are left unacked
  // and will be redelivered. Idempotent.
  void Stop();

  IngressStats stats() const;

 private:
  struct Impl;
  explicit Ingress(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace aion::bus
