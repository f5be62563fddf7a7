// The reference workflows with remote activities, end to end through real
// processes: a nats-server, one `aion-worker` (the workflows) and the Node.js
// activity worker of examples/activity-worker-node serving task queues
// `orders` and `echo` (the activities). Starts, signals and cancels go in
// over JetStream as JSON with request ids; results, histories and describe
// come back over request/reply. Every activity of these runs is served by
// the Node worker: its log must name each attempt the engine recorded.
//
// Cases: the order saga approved and shipped; a declined card compensated
// (release) and failed with the activity's message; steps_signal with five
// remote echo steps; a waiting order cancelled (refund + release, then
// cancelled). Retries of remote activities are covered by
// tests/worker/activity_crash_test.cc (its Node worker outage times attempts out).
#define BOOST_TEST_MODULE node_e2e
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>
#include <optional>

#include "aion/engine/payload.h"
#include "support/activity_history.h"
#include "support/ingress_client.h"
#include "support/node_worker_process.h"
#include "worker/worker_harness.h"

namespace aion::testing {
namespace {

using nlohmann::json;
using Events = std::vector<history::HistoryEvent>;

json PayloadJson(const history::Payload& p) {
  auto j = ParseJsonPayload(p);
  return j.ok() ? *j : json("<undecodable payload>");
}

bool StartsWith(const json& v, const std::string& prefix) {
  return v.is_string() && v.get<std::string>().rfind(prefix, 0) == 0;
}

// aion-worker + Node worker (queues orders, echo) on one nats-server.
class Fixture {
 public:
  Fixture()
      : node_(NodeWorkerOptions{.nats_url = h_.url(),
                                .queues = {"orders", "echo"},
                                .log_dir = h_.server().dir() / "node",
                                .extra_args = {"--ack-wait-ms", "15000", "--pull-expires-ms",
                                               "1000", "--grace-ms", "5000"}}) {
    Status s = node_.Start();
    BOOST_REQUIRE_MESSAGE(s.ok(), "node worker: " << s.ToString());
  }
  ~Fixture() {
    namespace ut = boost::unit_test;
    const bool passed =
        ut::results_collector.results(ut::framework::current_test_case().p_id).passed();
    Status stopped = node_.Terminate();
    if (!stopped.ok()) BOOST_ERROR("node worker stop: " << stopped.ToString());
    if (!passed || !stopped.ok()) {
      std::cerr << "---- node worker stderr (" << node_.stderr_file() << ") ----\n"
                << node_.StderrTail(8000) << "\n---- end ----\n";
    }
  }

  WorkerHarness& h() { return h_; }
  NodeWorkerProcess& node() { return node_; }

  // A JSON ingress message to aion.wf.<id>.<kind>; requires a clean answer.
  wire::IngressReply Send(const std::string& id, const std::string& kind, const json& body) {
    IngressAnswer a = AskIngress(h_.client(), "aion.wf." + id + "." + kind, body.dump(), true);
    BOOST_REQUIRE_MESSAGE(!a.reply.has_error(), kind << " " << id << ": " << a.reply.error().code()
                                                     << " " << a.reply.error().message());
    return a.reply;
  }

  std::string Start(const std::string& id, const std::string& type, const json& input) {
    wire::IngressReply r = Send(
        id, "start", {{"workflow_type", type}, {"input", input}, {"request_id", "start-" + id}});
    BOOST_REQUIRE(!r.run_id().empty());
    return r.run_id();
  }

  Events History(const std::string& id) {
    wire::HistoryReply r = h_.History(id);
    BOOST_REQUIRE_MESSAGE(!r.has_error(), "history " << id << ": " << r.error().message());
    return Events(r.events().begin(), r.events().end());
  }

  // Waits until the history holds `count` ActivityCompleted events of `type`.
  void AwaitCompleted(const std::string& id, const std::string& type, int count = 1) {
    const bool done = WaitFor(
        [&] {
          std::map<std::string, ActivitySummary> acts;
          CheckActivityAttempts(History(id), false, &acts);
          int n = 0;
          for (const auto& [aid, a] : acts) n += a.type == type && a.outcome == "completed";
          return n >= count;
        },
        30s);
    BOOST_REQUIRE_MESSAGE(done, id << ": no " << count << " completed " << type
                                   << " activities within 30 s: " << HistoryText(History(id)));
  }

  // The run closed with `status`; its history is one clean run whose
  // activities all ended (attempts numbered 1..n, one final outcome each),
  // and describe shows nothing parked. Returns the activities by schedule order.
  std::vector<ActivitySummary> Closed(const std::string& id, const std::string& run_id,
                                      const std::string& status, wire::ResultReply* result) {
    *result = h_.Result(id, 30s);
    BOOST_REQUIRE_MESSAGE(!result->has_error(), "result " << id << ": " << result->error().code()
                                                          << " " << result->error().message());
    BOOST_TEST(result->status() == status,
               id << " " << result->status() << " " << result->failure());
    BOOST_TEST(result->run_id() == run_id);
    const Events ev = History(id);
    BOOST_TEST_CONTEXT(id << " history " << HistoryText(ev)) {
      BOOST_TEST(CheckSingleClosedRun(ev, run_id) == "");
      std::map<std::string, ActivitySummary> acts;
      BOOST_TEST(CheckActivityAttempts(ev, true, &acts) == "");
      wire::DescribeReply d = h_.Describe(id);
      BOOST_TEST(d.status() == status);
      BOOST_TEST(d.parked_error() == "");
      BOOST_TEST(d.pending_activities_size() == 0);
      BOOST_TEST(d.pending_timers_size() == 0);
      // Every timer ended in one fire or cancel (invariant 8).
      std::map<std::string, int> timers;
      for (const auto& e : ev) {
        if (e.has_timer_started()) ++timers[e.timer_started().timer_id()];
        if (e.has_timer_fired()) --timers[e.timer_fired().timer_id()];
        if (e.has_timer_cancelled()) --timers[e.timer_cancelled().timer_id()];
      }
      for (const auto& [timer, open] : timers) BOOST_TEST(open == 0, "timer " << timer);
      std::vector<ActivitySummary> ordered;
      for (auto& [aid, a] : acts) ordered.push_back(a);
      std::sort(ordered.begin(), ordered.end(),
                [](const auto& a, const auto& b) { return a.scheduled_seq < b.scheduled_seq; });
      // The Node worker ran (and logged) every attempt the engine recorded.
      for (const auto& e : ev) {
        if (!e.has_activity_started()) continue;
        const std::string name = id + "/" + run_id + "/" + e.activity_started().activity_id() +
                                 "#" + std::to_string(e.activity_started().attempt()) + " ";
        BOOST_TEST(WaitFor([&] { return node_.Stderr().find(name) != std::string::npos; }, 5s),
                   "the node worker never logged " << name);
      }
      return ordered;
    }
    return {};
  }

 private:
  WorkerHarness h_;
  NodeWorkerProcess node_;
};

// The types of `acts`, in schedule order.
std::vector<std::string> Types(const std::vector<ActivitySummary>& acts) {
  std::vector<std::string> out;
  for (const auto& a : acts) out.push_back(a.type);
  return out;
}

void ExpectRemoteFirstTry(const std::vector<ActivitySummary>& acts, const std::string& queue) {
  for (const auto& a : acts) {
    BOOST_TEST_CONTEXT(a.type) {
      BOOST_TEST(a.task_queue == queue);
      BOOST_TEST(a.attempts == 1u);
      BOOST_TEST(a.retried == 0u);
    }
  }
}

const json kOrder = {{"sku", "A1"},
                     {"qty", 2},
                     {"amount", 30},
                     {"card", "visa"},
                     {"approval_timeout_ms", 60000},
                     {"task_queue", "orders"}};

BOOST_FIXTURE_TEST_CASE(order_saga_runs_its_activities_on_the_node_worker, Fixture) {
  const std::string id = "e2e-order-ok";
  const std::string run_id = Start(id, "order", kOrder);
  // The same start again (same request id) is recognised, nothing new happens.
  wire::IngressReply again = Send(
      id, "start", {{"workflow_type", "order"}, {"input", kOrder}, {"request_id", "start-" + id}});
  BOOST_TEST(again.duplicate());
  BOOST_TEST(again.run_id() == run_id);
  AwaitCompleted(id, "charge");  // now it waits for approval
  BOOST_TEST(h().Describe(id).status() == "running");
  Send(id, "signal", {{"name", "approve"}, {"input", {{"by", "ana"}}}, {"request_id", "ok-1"}});

  wire::ResultReply result;
  const auto acts = Closed(id, run_id, "completed", &result);
  BOOST_TEST(Types(acts) == (std::vector<std::string>{"reserve", "charge", "ship"}),
             boost::test_tools::per_element());
  ExpectRemoteFirstTry(acts, "orders");
  BOOST_REQUIRE_EQUAL(acts.size(), 3u);
  for (const auto& a : acts) BOOST_TEST(a.outcome == "completed", a.type);

  json out = bus::JsonFromValue(result.output());
  BOOST_TEST_CONTEXT("output " << out.dump()) {
    BOOST_TEST(out["status"] == "shipped");
    BOOST_TEST(out["approved_by"] == json({{"by", "ana"}}));
    BOOST_TEST(out["reservation"] == PayloadJson(acts[0].result));
    BOOST_TEST(out["charge"] == PayloadJson(acts[1].result));
    BOOST_TEST(out["shipment"] == PayloadJson(acts[2].result));
    BOOST_TEST(StartsWith(out["reservation"]["reservation_id"], "res-"));
    BOOST_TEST(out["reservation"]["sku"] == "A1");
    BOOST_TEST(out["reservation"]["qty"] == 2);
    BOOST_TEST(StartsWith(out["charge"]["charge_id"], "ch-"));
    BOOST_TEST(out["charge"]["amount"] == 30);
    BOOST_TEST(StartsWith(out["shipment"]["shipment_id"], "shp-"));
    BOOST_TEST(out["shipment"]["reservation_id"] == out["reservation"]["reservation_id"]);
    BOOST_TEST(out["shipment"]["sku"] == "A1");
    BOOST_TEST(out["shipment"]["qty"] == 2);
  }
  // Exactly one approval recorded.
  int approvals = 0;
  for (const auto& e : History(id)) approvals += e.has_signal_received();
  BOOST_TEST(approvals == 1);
}

BOOST_FIXTURE_TEST_CASE(declined_card_is_compensated_remotely_and_fails_the_run, Fixture) {
  const std::string id = "e2e-order-declined";
  json order = kOrder;
  order["card"] = "declined";
  const std::string run_id = Start(id, "order", order);

  wire::ResultReply result;
  const auto acts = Closed(id, run_id, "failed", &result);
  BOOST_TEST(result.failure().find("card declined") != std::string::npos, result.failure());
  BOOST_TEST(Types(acts) == (std::vector<std::string>{"reserve", "charge", "release"}),
             boost::test_tools::per_element());
  ExpectRemoteFirstTry(acts, "orders");
  BOOST_REQUIRE_EQUAL(acts.size(), 3u);
  BOOST_TEST(acts[0].outcome == "completed");
  BOOST_TEST(acts[1].outcome == "failed");  // non-retryable: one attempt, final
  BOOST_TEST(acts[1].failure.error_type() == "CardDeclined");
  BOOST_TEST(acts[1].failure.non_retryable());
  BOOST_TEST(acts[1].failure.message() == "card declined");
  BOOST_TEST(acts[2].outcome == "completed");
  BOOST_TEST(PayloadJson(acts[2].result) ==
             json({{"released", PayloadJson(acts[0].result)["reservation_id"]}}));
  const Events ev = History(id);
  BOOST_REQUIRE(ev.back().has_workflow_failed());
  BOOST_TEST(ev.back().workflow_failed().message() == "card declined");
  // The release's input is the reservation it undoes.
  for (const auto& e : ev) {
    if (e.has_activity_scheduled() && e.activity_scheduled().activity_type() == "release") {
      BOOST_TEST(PayloadJson(e.activity_scheduled().input()) == PayloadJson(acts[0].result));
    }
  }
}

BOOST_FIXTURE_TEST_CASE(steps_signal_runs_five_echo_steps_remotely, Fixture) {
  const std::string id = "e2e-steps";
  const std::string run_id = Start(id, "steps_signal", {{"steps", 5}, {"remote", true}});
  AwaitCompleted(id, "echo", 5);
  BOOST_TEST(h().Describe(id).status() == "running");
  Send(id, "signal", {{"name", "approve"}, {"input", "bo"}, {"request_id", "steps-1"}});

  wire::ResultReply result;
  const auto acts = Closed(id, run_id, "completed", &result);
  BOOST_TEST(bus::JsonFromValue(result.output()) == json({{"steps", 5}, {"approved_by", "bo"}}));
  BOOST_REQUIRE_EQUAL(acts.size(), 5u);
  ExpectRemoteFirstTry(acts, "echo");
  for (std::size_t i = 0; i < acts.size(); ++i) {
    BOOST_TEST(acts[i].type == "echo");
    BOOST_TEST(acts[i].outcome == "completed");
    BOOST_TEST(PayloadJson(acts[i].result) == json({{"step", i}}), "step " << i);
  }
}

BOOST_FIXTURE_TEST_CASE(cancelling_a_waiting_order_refunds_and_releases_remotely, Fixture) {
  const std::string id = "e2e-order-cancel";
  const std::string run_id = Start(id, "order", kOrder);
  AwaitCompleted(id, "charge");
  // Waiting for the approval: its timeout timer is pending, no activity is.
  BOOST_REQUIRE(WaitFor(
      [&] {
        wire::DescribeReply d = h().Describe(id);
        return d.pending_timers_size() == 1 && d.pending_activities_size() == 0;
      },
      10s));
  Send(id, "cancel", {{"reason", "customer changed their mind"}, {"request_id", "cancel-1"}});

  wire::ResultReply result;
  const auto acts = Closed(id, run_id, "cancelled", &result);
  // The failure is the CancelledError the code let through (the run's own
  // message); the reason is recorded with the request.
  BOOST_TEST(result.failure() == "workflow cancelled while waiting for signal 'approve'");
  // Compensation in reverse order: refund the charge, then release the hold.
  BOOST_TEST(Types(acts) == (std::vector<std::string>{"reserve", "charge", "refund", "release"}),
             boost::test_tools::per_element());
  ExpectRemoteFirstTry(acts, "orders");
  BOOST_REQUIRE_EQUAL(acts.size(), 4u);
  for (const auto& a : acts) BOOST_TEST(a.outcome == "completed", a.type);
  BOOST_TEST(PayloadJson(acts[2].result)["charge_id"] == PayloadJson(acts[1].result)["charge_id"]);
  BOOST_TEST(PayloadJson(acts[3].result) ==
             json({{"released", PayloadJson(acts[0].result)["reservation_id"]}}));
  const Events ev = History(id);
  int cancel_requests = 0;
  std::uint64_t cancel_seq = 0;
  for (const auto& e : ev) {
    if (e.has_workflow_cancel_requested()) {
      ++cancel_requests;
      cancel_seq = e.seq();
      BOOST_TEST(e.workflow_cancel_requested().request_id() == "cancel-1");
      BOOST_TEST(e.workflow_cancel_requested().reason() == "customer changed their mind");
    }
    if (e.has_signal_received()) BOOST_ERROR("no signal was sent, yet: " << HistoryText(ev));
  }
  BOOST_TEST(cancel_requests == 1);
  BOOST_TEST(cancel_seq < acts[2].scheduled_seq, "the refund answers the cancel request");
  BOOST_TEST(ev.back().has_workflow_cancelled(), HistoryText(ev));
}

}  // namespace
}  // namespace aion::testing
