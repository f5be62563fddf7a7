// bench_raw_nats: the raw JetStream limits on this machine, measured against
// a nats-server started here (127.0.0.1, port chosen at run time, JetStream in
// a temp dir). (1) async publish of N 200-byte messages to a work-queue file
// stream, N / (first publish .. last PubAck); (2) pull-fetch-ack of those N
// messages through 16 durable pull consumers (one thread each, pulls of up to
// 256, natsMsg_Ack), close to the shape of the worker's ingress; (3) publish
// one message at a time, waiting for each PubAck (the outbox relay's shape).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"

namespace ab = aion::bench;

namespace {

constexpr const char* kStream = "BENCH_RAW";

void CreateStream(aion::bus::NatsConnection& conn, const char* name, const char* subject) {
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name;
  const char* subjects[] = {subject};
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Retention = js_WorkQueuePolicy;
  cfg.Storage = js_FileStorage;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (js_AddStream(nullptr, conn.js(), &cfg, nullptr, &jerr) != NATS_OK) {
    throw std::runtime_error("cannot create stream " + std::string(name));
  }
}

natsSubscription* BindConsumer(aion::bus::NatsConnection& conn, int p) {
  const std::string name = "raw-" + std::to_string(p);
  const std::string filter = "raw." + std::to_string(p) + ".>";
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = name.c_str();
  cc.AckPolicy = js_AckExplicit;
  cc.FilterSubject = filter.c_str();
  cc.MaxAckPending = 4096;
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = kStream;
  so.Config = cc;
  so.ManualAck = true;
  natsSubscription* sub = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (js_PullSubscribe(&sub, conn.js(), filter.c_str(), name.c_str(), nullptr, &so, &jerr) !=
      NATS_OK) {
    throw std::runtime_error("cannot bind consumer " + name);
  }
  return sub;
}

double PublishRep(aion::bus::NatsConnection& conn, std::int64_t n, int partitions) {
  ab::AsyncPublisher pub(conn, 4096);
  const std::string body(200, 'x');
  std::vector<std::string> subjects;
  for (int p = 0; p < partitions; ++p) subjects.push_back("raw." + std::to_string(p) + ".m");
  const auto t0 = ab::Clock::now();
  for (std::int64_t i = 0; i < n; ++i) pub.Publish(subjects[i % partitions], body);
  if (pub.Complete() != 0) throw std::runtime_error("some publishes failed");
  return static_cast<double>(n) / ab::Seconds(ab::Clock::now() - t0);
}

// One publish at a time, each waiting for its PubAck (what the worker's
// outbox relay does per row): the serial round-trip limit.
double SyncPublishRep(aion::bus::NatsConnection& conn, std::int64_t n) {
  const std::string body(200, 'x');
  const auto t0 = ab::Clock::now();
  for (std::int64_t i = 0; i < n; ++i) {
    jsErrCode jerr = static_cast<jsErrCode>(0);
    if (js_Publish(nullptr, conn.js(), "rawsync.m", body.data(), static_cast<int>(body.size()),
                   nullptr, &jerr) != NATS_OK) {
      throw std::runtime_error("sync publish failed");
    }
  }
  return static_cast<double>(n) / ab::Seconds(ab::Clock::now() - t0);
}

// Fetches and acks `want` messages from `sub` in batches of up to 256; the
// messages are taken out of the list, acked and destroyed one by one, as the
// worker's ingress does. Each pull asks for no more than is left and waits
// long enough to be filled: libnats 3.4.1 can return more messages than the
// batch (a heap overflow, seen with ASan) when a previous pull expired
// client-side while its messages were still arriving.
void Drain(natsSubscription* sub, std::int64_t want) {
  std::int64_t got = 0;
  while (got < want) {
    jsFetchRequest req;
    jsFetchRequest_Init(&req);
    req.Batch = static_cast<int>(std::min<std::int64_t>(256, want - got));
    req.Expires = 10'000'000'000;  // 10 s
    natsMsgList list{};
    if (natsSubscription_FetchRequest(&list, sub, &req) != NATS_OK) continue;
    std::vector<natsMsg*> msgs(list.Msgs, list.Msgs + std::min(list.Count, req.Batch));
    for (int i = 0; i < list.Count; ++i) list.Msgs[i] = nullptr;
    natsMsgList_Destroy(&list);
    for (natsMsg* m : msgs) {
      natsMsg_Ack(m, nullptr);
      natsMsg_Destroy(m);
    }
    got += static_cast<std::int64_t>(msgs.size());
  }
}

double FetchAckRep(aion::bus::NatsConnection& conn, const std::vector<natsSubscription*>& subs,
                   std::int64_t n) {
  const auto parts = static_cast<std::int64_t>(subs.size());
  const auto t0 = ab::Clock::now();
  std::vector<std::thread> threads;
  for (std::int64_t p = 0; p < parts; ++p) {
    const std::int64_t want = n / parts + (p < n % parts ? 1 : 0);
    threads.emplace_back([&subs, p, want] { Drain(subs[p], want); });
  }
  for (auto& t : threads) t.join();
  natsConnection_Flush(conn.nc());  // the acks are on the wire
  const double rate = static_cast<double>(n) / ab::Seconds(ab::Clock::now() - t0);
  while (ab::StreamMessages(conn, kStream) > 0) std::this_thread::sleep_for(ab::milliseconds(10));
  return rate;
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"raw JetStream publish and fetch-ack throughput"};
  std::int64_t n = 100000;
  int reps = 3, partitions = 16;
  app.add_option("-n,--messages", n, "messages per repetition");
  app.add_option("--reps", reps, "repetitions");
  app.add_option("--partitions", partitions, "pull consumers (one thread each)");
  CLI11_PARSE(app, argc, argv);

  ab::TempDir dir("raw-nats");
  auto server = ab::StartNats(dir.path());
  auto conn = ab::Connect(server->url(), "bench-raw-nats");
  CreateStream(*conn, kStream, "raw.>");
  CreateStream(*conn, "BENCH_RAW_SYNC", "rawsync.>");
  std::vector<natsSubscription*> subs;
  for (int p = 0; p < partitions; ++p) subs.push_back(BindConsumer(*conn, p));

  ab::Figure pub{"js_async_publish_per_s", "1/s"};
  ab::Figure fetch{"js_fetch_ack_per_s", "1/s"};
  ab::Figure sync{"js_sync_publish_per_s", "1/s"};
  for (int r = 0; r < reps; ++r) {
    pub.reps.push_back(PublishRep(*conn, n, partitions));
    fetch.reps.push_back(FetchAckRep(*conn, subs, n));
    sync.reps.push_back(SyncPublishRep(*conn, std::max<std::int64_t>(n / 20, 1000)));
    std::cerr << "rep " << r + 1 << ": sync publish " << sync.reps.back() << "/s, publish "
              << pub.reps.back() << "/s, fetch-ack " << fetch.reps.back() << "/s\n";
  }
  pub.note = std::to_string(n) + " x 200 B, async, file stream";
  fetch.note = std::to_string(n) + " x 200 B, " + std::to_string(partitions) +
               " pull consumers, pulls of up to 256, natsMsg_Ack";
  sync.note = "one 200 B publish at a time, each waiting for its PubAck";
  ab::Emit(pub);
  ab::Emit(fetch);
  ab::Emit(sync);
  for (auto* s : subs) natsSubscription_Destroy(s);
  return 0;
}

int main(int argc, char** argv) { return aion::bench::Guard(argc, argv, &Main); }
