// bench_activity_worker: a C++ activity worker process for the benchmarks
// (nats.c + aion::bus's EnsureTaskConsumer). It pulls tasks of the given
// queues from AION_TASKS (batches of up to 128), answers the order saga's
// activities (reserve, charge, ship, release, refund) and echo at once, and
// publishes each result as JSON to the task's result_subject (JetStream,
// Nats-Msg-Id per attempt); it acks a batch's tasks after their results'
// PubAcks. Runs until SIGTERM/SIGINT.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <iostream>
#include <sstream>
#include <thread>

#include "aion/bus/streams.h"
#include "aion/bus/subjects.h"
#include "bench_common.h"

namespace ab = aion::bench;
using aion::Json;

namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop = true; }

Json Field(const Json& o, const char* key) {
  return o.is_object() && o.contains(key) ? o.at(key) : Json(nullptr);
}

Json RunActivity(const std::string& type, const Json& in, const std::string& wf) {
  if (type == "reserve")
    return Json{
        {"reservation_id", "res-" + wf}, {"sku", Field(in, "sku")}, {"qty", Field(in, "qty")}};
  if (type == "charge") return Json{{"charge_id", "ch-" + wf}, {"amount", Field(in, "amount")}};
  if (type == "ship")
    return Json{{"shipment_id", "shp-" + wf}, {"reservation_id", Field(in, "reservation_id")}};
  return in;  // echo, release, refund
}

natsSubscription* Bind(aion::bus::NatsConnection& conn, const std::string& queue) {
  aion::bus::Subjects subjects;
  auto ok = aion::bus::EnsureTaskConsumer(conn, subjects, queue);
  if (!ok.ok()) throw std::runtime_error(ok.ToString());
  const std::string consumer = aion::bus::TaskConsumerName(queue);
  const std::string filter = "aion.task." + queue;
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = "AION_TASKS";
  so.Consumer = consumer.c_str();
  so.ManualAck = true;
  natsSubscription* sub = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (js_PullSubscribe(&sub, conn.js(), filter.c_str(), consumer.c_str(), nullptr, &so, &jerr) !=
      NATS_OK) {
    throw std::runtime_error("cannot bind to " + consumer);
  }
  return sub;
}

// Answers one task: publishes its result; false if the task is unreadable.
bool Answer(ab::AsyncPublisher& pub, natsMsg* msg) {
  Json task = Json::parse(natsMsg_GetData(msg), natsMsg_GetData(msg) + natsMsg_GetDataLength(msg),
                          nullptr, false);
  if (!task.is_object() || !task.contains("result_subject")) return false;
  const std::string wf = task.value("workflow_id", "");
  const Json result{{"run_id", task["run_id"]},
                    {"activity_id", task["activity_id"]},
                    {"attempt", task["attempt"]},
                    {"output", RunActivity(task.value("activity_type", ""), task["input"], wf)}};
  std::ostringstream msg_id;
  msg_id << "result:" << wf << ":" << task["run_id"].get<std::string>() << ":"
         << task["activity_id"].get<std::string>() << ":" << task["attempt"].dump();
  pub.Publish(task["result_subject"].get<std::string>(), result.dump(),
              {{"Content-Type", "application/json"}, {"Nats-Msg-Id", msg_id.str()}});
  return true;
}

void Serve(aion::bus::NatsConnection& conn, natsSubscription* sub) {
  ab::AsyncPublisher pub(conn, 4096);
  while (!g_stop) {
    jsFetchRequest req;
    jsFetchRequest_Init(&req);
    req.Batch = 128;
    req.NoWait = true;
    req.Expires = 200'000'000;  // 200 ms: check g_stop that often when idle
    natsMsgList list{};
    if (natsSubscription_FetchRequest(&list, sub, &req) != NATS_OK) continue;
    std::vector<bool> answered(static_cast<std::size_t>(list.Count));
    for (int i = 0; i < list.Count; ++i) answered[i] = Answer(pub, list.Msgs[i]);
    pub.Complete();
    for (int i = 0; i < list.Count; ++i) {
      if (answered[i]) {
        natsMsg_Ack(list.Msgs[i], nullptr);
      } else {
        natsMsg_Term(list.Msgs[i], nullptr);
      }
    }
    natsMsgList_Destroy(&list);
  }
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"C++ activity worker for the benchmarks"};
  std::string url;
  std::string queue = "orders";
  app.add_option("--nats", url, "NATS URL")->required();
  app.add_option("--queue", queue, "task queue");
  CLI11_PARSE(app, argc, argv);
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  auto conn = ab::Connect(url, "bench-activity-worker");
  natsSubscription* sub = Bind(*conn, queue);
  std::cerr << "bench_activity_worker: serving queue " << queue << "\n";
  Serve(*conn, sub);
  natsSubscription_Destroy(sub);
  return 0;
}

int main(int argc, char** argv) { return aion::bench::Guard(argc, argv, &Main); }
