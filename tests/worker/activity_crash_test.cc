// The durable core under SIGKILL, with activities (DESIGN §3, §4; design
// notes "Activities"): order sagas (reserve, charge, signal `approve`, ship)
// with local activities (task queue "") and remote ones (queue "orders"),
// steps_signal workflows (echo steps, local or on queue "echo"),
// timer_signal workflows and fanout parents (3 steps_signal children each,
// without the signal, in whatever partitions their ids fall) run against a real aion-worker process
// and a real Node.js activity worker (examples/activity-worker-node). Starts and signals go in over
// JetStream with request ids and Aion-Reply-To and are re-sent until answered. Meanwhile the
// aion-worker is SIGKILLed and restarted on the same data dir several times (once right after a
// restart), and the Node worker is SIGKILLed too: briefly, and once for longer than the saga's
// start-to-close (10 s), so that attempts time out and are retried (the Node
// worker's task consumer has a 15 s ack wait, longer than that).
//
// At the end every workflow completed exactly once with the expected output:
// one WorkflowStarted and one terminal event (WorkflowCompleted, last) per
// id, seqs 1..n of one run, one SignalReceived; every ActivityScheduled has
// ActivityStarted attempts 1..n, each attempt but the last ended by a retried
// failure or timeout and the last by exactly one ActivityCompleted; describe
// shows nothing parked; AION_EVENTS holds exactly one `started` and one
// `completed` lifecycle event per id; nothing was dead-lettered. A fanout
// parent saw each child start once and close once (completed), its output
// lists the children's outputs, and each child's history names the parent. At least one
// remote attempt was retried (the outage).
//
// Environment (to reproduce or stretch it): AION_ACRASH_SEED,
// AION_ACRASH_ORDERS (60: half local, half remote), AION_ACRASH_STEPS (16),
// AION_ACRASH_TIMERS (20), AION_ACRASH_FANOUTS (8), AION_ACRASH_WINDOW_S (36), AION_ACRASH_KILLS
// (4, aion-worker), AION_ACRASH_NODE_KILLS (2 short ones, plus the long outage).
#define BOOST_TEST_MODULE activity_crash
#include <algorithm>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <exception>
#include <nlohmann/json.hpp>
#include <random>

#include "aion/engine/payload.h"
#include "support/activity_history.h"
#include "support/ingress_client.h"
#include "support/node_worker_process.h"
#include "worker/worker_harness.h"

namespace aion::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Events = std::vector<history::HistoryEvent>;

long EnvOr(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v == nullptr || *v == '\0' ? fallback : std::strtol(v, nullptr, 10);
}

double Seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

json PayloadJson(const history::Payload& p) {
  auto j = ParseJsonPayload(p);
  return j.ok() ? *j : json("<undecodable payload>");
}

bool StartsWith(const json& v, const std::string& prefix) {
  return v.is_string() && v.get<std::string>().rfind(prefix, 0) == 0;
}

enum class Kind { kOrderLocal, kOrderRemote, kStepsLocal, kStepsRemote, kTimer, kFanout };
constexpr int kFanoutChildren = 3;

struct Flow {
  int index = 0;
  Kind kind = Kind::kTimer;
  std::string id;
  std::string type;  // workflow type
  json input;
  std::string signal;  // its name
  json signal_input;
  int steps = 0;                 // steps_signal; fanout: of each child
  bool children_remote = false;  // fanout: the children's echo steps run on queue "echo"
  int sleep_ms = 0;              // timer_signal
  milliseconds start_at{0};      // after the window opens
  milliseconds signal_at{0};     // after the window opens; sent once the start was answered
  bool remote() const { return kind == Kind::kOrderRemote || kind == Kind::kStepsRemote; }
  bool order() const { return kind == Kind::kOrderLocal || kind == Kind::kOrderRemote; }
  std::string queue() const {
    if (kind == Kind::kOrderRemote) return "orders";
    if (kind == Kind::kStepsRemote) return "echo";
    return "";
  }
  std::string child_id(int k) const { return id + "-" + std::to_string(k); }
};

std::string StartRequestId(const Flow& f) { return "start-" + std::to_string(f.index); }
std::string SignalRequestId(const Flow& f) { return "sig-" + std::to_string(f.index); }

std::string StartBody(const Flow& f) {
  return json{{"workflow_type", f.type}, {"input", f.input}, {"request_id", StartRequestId(f)}}
      .dump();
}
std::string SignalBody(const Flow& f) {
  return json{{"name", f.signal}, {"input", f.signal_input}, {"request_id", SignalRequestId(f)}}
      .dump();
}

// Counts over all histories, for the summary and the retry check.
struct Tally {
  int activities = 0;
  int remote_retried = 0;  // remote activities with more than one attempt
  int local_retried = 0;
  int timed_out = 0;  // ActivityTimedOut events
};

// A fanout parent: each child scheduled once (ids <id>-1..3) and closed
// once, completed; its output lists what each child returned.
std::string CheckFanoutParent(const Flow& f, const Events& ev, const json& out) {
  std::map<std::string, int> scheduled, closed;
  for (const auto& e : ev) {
    if (e.has_child_workflow_scheduled()) {
      const auto& c = e.child_workflow_scheduled();
      if (c.workflow_type() != "steps_signal") return "child of type " + c.workflow_type();
      if (c.workflow_id() != f.child_id(std::stoi(c.child_ref())))
        return "child id " + c.workflow_id();
      ++scheduled[c.child_ref()];
    }
    if (e.has_child_workflow_closed()) {
      const auto& c = e.child_workflow_closed();
      if (c.status() != history::CHILD_STATUS_COMPLETED) return "child closed " + c.failure();
      ++closed[c.child_ref()];
    }
  }
  for (int k = 1; k <= kFanoutChildren; ++k) {
    const std::string ref = std::to_string(k);
    if (scheduled[ref] != 1 || closed[ref] != 1) {
      return "child " + ref + " scheduled " + std::to_string(scheduled[ref]) + "x, closed " +
             std::to_string(closed[ref]) + "x: " + HistoryText(ev);
    }
  }
  const json each = {{"steps", f.steps}, {"approved_by", nullptr}};
  if (out != json({{"results", json::array({each, each, each})}}))
    return "fanout output " + out.dump();
  return "";
}

// A child of a fanout parent: one run, completed, naming its parent, with
// its echo steps each completed once after attempts 1..n.
std::string CheckFanoutChild(const Flow& parent, const Events& ev, Tally* tally) {
  const std::string text = HistoryText(ev);
  if (ev.empty() || !ev.front().has_workflow_started()) return "no start: " + text;
  if (std::string p = CheckSingleClosedRun(ev, ev.front().run_id()); !p.empty()) {
    return p + ": " + text;
  }
  if (!ev.back().has_workflow_completed()) return "does not end completed: " + text;
  if (ev.front().workflow_started().parent().workflow_id() != parent.id) {
    return "parent '" + ev.front().workflow_started().parent().workflow_id() + "'";
  }
  std::map<std::string, ActivitySummary> by_id;
  if (std::string p = CheckActivityAttempts(ev, true, &by_id); !p.empty()) return p + ": " + text;
  if (by_id.size() != static_cast<std::size_t>(parent.steps)) return "steps: " + text;
  for (const auto& [aid, a] : by_id) {
    ++tally->activities;
    if (a.outcome != "completed") return a.type + " ended " + a.outcome + ": " + text;
    if (a.task_queue != (parent.children_remote ? "echo" : "")) return "queue " + a.task_queue;
    if (a.attempts > 1) ++(parent.children_remote ? tally->remote_retried : tally->local_retried);
  }
  return "";
}

// Checks one closed workflow; returns "" or what is wrong.
std::string CheckFlow(const Flow& f, const wire::ResultReply& r, const Events& ev, Tally* tally) {
  if (r.has_error()) return "result error " + r.error().code() + ": " + r.error().message();
  if (r.status() != "completed") return "status " + r.status() + " " + r.failure();
  const std::string text = HistoryText(ev);
  if (std::string p = CheckSingleClosedRun(ev, r.run_id()); !p.empty()) return p + ": " + text;
  if (!ev.back().has_workflow_completed()) return "does not end completed: " + text;
  const auto& started = ev.front().workflow_started();
  if (started.request_id() != StartRequestId(f)) return "start request id " + started.request_id();
  if (started.workflow_type() != f.type) return "workflow type " + started.workflow_type();
  int signals = 0;
  for (const auto& e : ev) {
    if (!e.has_signal_received()) continue;
    ++signals;
    const auto& s = e.signal_received();
    if (s.name() != f.signal || s.request_id() != SignalRequestId(f) ||
        PayloadJson(s.input()) != f.signal_input) {
      return "unexpected signal at seq " + std::to_string(e.seq()) + ": " + text;
    }
  }
  const int expected_signals = f.signal.empty() ? 0 : 1;
  if (signals != expected_signals) {
    return std::to_string(signals) + " SignalReceived events: " + text;
  }

  std::map<std::string, ActivitySummary> by_id;
  if (std::string p = CheckActivityAttempts(ev, true, &by_id); !p.empty()) return p + ": " + text;
  std::vector<ActivitySummary> acts;
  for (auto& [id, a] : by_id) acts.push_back(a);
  std::sort(acts.begin(), acts.end(),
            [](const auto& a, const auto& b) { return a.scheduled_seq < b.scheduled_seq; });
  for (const auto& a : acts) {
    ++tally->activities;
    if (a.outcome != "completed") return a.type + " ended " + a.outcome + ": " + text;
    if (a.task_queue != f.queue()) return a.type + " on task queue '" + a.task_queue + "'";
    if (a.attempts > 1) ++(f.remote() ? tally->remote_retried : tally->local_retried);
  }
  for (const auto& e : ev) tally->timed_out += e.has_activity_timed_out() ? 1 : 0;

  json out = bus::JsonFromValue(r.output());
  auto recorded = PayloadJson(ev.back().workflow_completed().output());
  if (recorded != out) return "result output differs from the recorded one";
  if (f.order()) {
    if (acts.size() != 3 || acts[0].type != "reserve" || acts[1].type != "charge" ||
        acts[2].type != "ship") {
      return "order activities are not reserve, charge, ship: " + text;
    }
    json hold = PayloadJson(acts[0].result), charge = PayloadJson(acts[1].result),
         shipment = PayloadJson(acts[2].result);
    if (!out.is_object() || !hold.is_object() || !charge.is_object() || !shipment.is_object()) {
      return "order output or receipts are not objects: " + out.dump();
    }
    const bool ok =
        out["status"] == "shipped" && out["approved_by"] == f.signal_input &&
        out["reservation"] == hold && out["charge"] == charge && out["shipment"] == shipment &&
        StartsWith(hold["reservation_id"], "res-") && hold["sku"] == f.input.at("sku") &&
        hold["qty"] == f.input.at("qty") && StartsWith(charge["charge_id"], "ch-") &&
        charge["amount"] == f.input.at("amount") && StartsWith(shipment["shipment_id"], "shp-") &&
        shipment["reservation_id"] == hold["reservation_id"] &&
        shipment["sku"] == f.input.at("sku") && shipment["qty"] == f.input.at("qty");
    if (!ok) return "order output " + out.dump();
  } else if (f.kind == Kind::kStepsLocal || f.kind == Kind::kStepsRemote) {
    if (acts.size() != static_cast<std::size_t>(f.steps)) return "steps: " + text;
    for (int i = 0; i < f.steps; ++i) {
      if (acts[i].type != "echo" || PayloadJson(acts[i].result) != json({{"step", i}})) {
        return "step " + std::to_string(i) + " echoed " + PayloadJson(acts[i].result).dump();
      }
    }
    if (out != json({{"steps", f.steps}, {"approved_by", f.signal_input}})) {
      return "steps output " + out.dump();
    }
  } else if (f.kind == Kind::kFanout) {
    return CheckFanoutParent(f, ev, out);
  } else {
    if (!acts.empty()) return "timer_signal with activities: " + text;
    if (out != json({{"slept_ms", f.sleep_ms}, {"signal", f.signal_input}})) {
      return "timer output " + out.dump();
    }
  }
  return "";
}

BOOST_AUTO_TEST_CASE(activities_survive_sigkill_of_both_workers) {
  const auto test_start = SteadyClock::now();
  const unsigned seed = static_cast<unsigned>(EnvOr("AION_ACRASH_SEED", std::random_device{}()));
  const int orders = static_cast<int>(EnvOr("AION_ACRASH_ORDERS", 60));
  const int steps_flows = static_cast<int>(EnvOr("AION_ACRASH_STEPS", 16));
  const int timers = static_cast<int>(EnvOr("AION_ACRASH_TIMERS", 20));
  const int fanouts = static_cast<int>(EnvOr("AION_ACRASH_FANOUTS", 8));
  const milliseconds window(std::max(30L, EnvOr("AION_ACRASH_WINDOW_S", 36)) * 1000);
  const int kill_count = static_cast<int>(std::max(1L, EnvOr("AION_ACRASH_KILLS", 4)));
  const int node_kills = static_cast<int>(std::max(0L, EnvOr("AION_ACRASH_NODE_KILLS", 2)));
  std::cerr << "activity crash test seed " << seed << " (AION_ACRASH_SEED to repeat)\n";
  BOOST_TEST_MESSAGE("activity crash test: seed "
                     << seed << ", " << orders << " orders, " << steps_flows << " steps_signal, "
                     << timers << " timer_signal, " << fanouts << " fanout, window "
                     << window.count() << " ms, " << kill_count << " kills");
  std::mt19937 rng(seed);
  auto uniform = [&rng](long lo, long hi) {
    return std::uniform_int_distribution<long>(lo, std::max(lo, hi))(rng);
  };

  // The Node worker's long outage: longer than the saga's start-to-close
  // (10 s), so remote attempts handed out meanwhile time out and are retried.
  const milliseconds outage_at(window.count() * 35 / 100);
  const milliseconds outage(14000);

  // The aion-worker kills: one at a random moment of each slice of the window.
  std::vector<milliseconds> kill_at;
  const long slice = (window.count() - 2000) / kill_count;
  for (int k = 0; k < kill_count; ++k) {
    kill_at.push_back(milliseconds(1000 + k * slice + uniform(0, slice - 500)));
  }

  // The workflows, starts spread over the window (all but the last 8 s); a
  // quarter start, and another quarter get their signal, just before a
  // kill, so that messages are in flight when the worker dies.
  std::vector<Flow> flows;
  auto add = [&](Kind kind) {
    Flow f;
    f.index = static_cast<int>(flows.size());
    f.kind = kind;
    f.id = "acrash-" + std::to_string(f.index);
    f.start_at = milliseconds(uniform(0, window.count() - 8000));
    f.signal_input = {{"i", f.index}, {"token", std::to_string(uniform(0, 1'000'000'000))}};
    switch (kind) {
      case Kind::kOrderLocal:
      case Kind::kOrderRemote:
        f.type = "order";
        f.signal = "approve";
        f.input = {{"sku", "sku-" + std::to_string(uniform(1, 9))},
                   {"qty", uniform(1, 5)},
                   {"amount", uniform(1, 500)},
                   {"card", "visa-" + std::to_string(f.index)},
                   {"approval_timeout_ms", 600000},
                   {"task_queue", f.queue()}};
        break;
      case Kind::kStepsLocal:
      case Kind::kStepsRemote:
        f.type = "steps_signal";
        f.signal = "approve";
        f.steps = static_cast<int>(uniform(2, 6));
        f.input = {{"steps", f.steps}, {"remote", kind == Kind::kStepsRemote}};
        break;
      case Kind::kTimer:
        f.type = "timer_signal";
        f.signal = "go";
        f.sleep_ms = static_cast<int>(uniform(200, 3000));
        f.input = {{"sleep_ms", f.sleep_ms}, {"signal", "go"}};
        break;
      case Kind::kFanout:
        f.type = "fanout";
        f.steps = static_cast<int>(uniform(1, 3));
        f.children_remote = f.index % 2 == 0;
        f.input = {
            {"children", kFanoutChildren},
            {"type", "steps_signal"},
            {"input", {{"steps", f.steps}, {"remote", f.children_remote}, {"approval", false}}}};
        break;
    }
    f.signal_at = f.start_at + milliseconds(uniform(0, 6000));
    const milliseconds kill = kill_at[static_cast<std::size_t>(uniform(0, kill_count - 1))];
    switch (uniform(0, 3)) {
      case 0:
        f.start_at = milliseconds(std::max(0L, kill.count() - uniform(0, 150)));
        f.signal_at = f.start_at + milliseconds(uniform(0, 6000));
        break;
      case 1:
        f.start_at = milliseconds(uniform(0, std::max(0L, kill.count() - 1000)));
        f.signal_at = std::max(f.start_at, milliseconds(kill.count() - uniform(0, 150)));
        break;
      default:
        break;
    }
    flows.push_back(std::move(f));
  };
  for (int i = 0; i < orders; ++i) add(i % 2 == 0 ? Kind::kOrderLocal : Kind::kOrderRemote);
  for (int i = 0; i < steps_flows; ++i) add(i % 2 == 0 ? Kind::kStepsLocal : Kind::kStepsRemote);
  for (int i = 0; i < timers; ++i) add(Kind::kTimer);
  for (int i = 0; i < fanouts; ++i) add(Kind::kFanout);
  // A few remote orders start just as the outage begins: their reserve task
  // waits longer than start-to-close.
  int forced = 0;
  for (Flow& f : flows) {
    if (f.kind != Kind::kOrderRemote || forced >= 4) continue;
    f.start_at = outage_at + milliseconds(uniform(0, 800));
    f.signal_at = f.start_at + milliseconds(uniform(0, 6000));
    ++forced;
  }

  // The kill schedule, run by the main thread (the processes die with the
  // thread that started them).
  enum class Action { kKillWorker, kKillNode, kStartNode };
  struct Step {
    milliseconds at;
    Action action;
    milliseconds downtime{0};  // kKillWorker: restart after this long
  };
  std::vector<Step> schedule;
  const int double_kill = static_cast<int>(uniform(0, kill_count - 1));
  for (int k = 0; k < kill_count; ++k) {
    const milliseconds at = kill_at[static_cast<std::size_t>(k)];
    schedule.push_back({at, Action::kKillWorker, milliseconds(uniform(0, 1500))});
    if (k == double_kill) {  // the restarted worker dies again while it recovers
      schedule.push_back(
          {at + milliseconds(1), Action::kKillWorker, milliseconds(uniform(0, 200))});
    }
  }
  schedule.push_back({outage_at, Action::kKillNode});
  schedule.push_back({outage_at + outage, Action::kStartNode});
  for (int k = 0; k < node_kills; ++k) {
    // Outside the outage: in the first third or the last part of the window.
    milliseconds at(
        k % 2 == 0 ? uniform(1000, outage_at.count() - 2000)
                   : uniform(outage_at.count() + outage.count() + 1000, window.count() - 1000));
    schedule.push_back({at, Action::kKillNode});
    schedule.push_back({at + milliseconds(uniform(0, 1000)), Action::kStartNode});
  }
  std::stable_sort(schedule.begin(), schedule.end(),
                   [](const Step& a, const Step& b) { return a.at < b.at; });

  WorkerHarness h;
  NodeWorkerProcess node(NodeWorkerOptions{
      .nats_url = h.url(),
      .queues = {"orders", "echo"},
      .log_dir = h.server().dir() / "node",
      .extra_args = {"--ack-wait-ms", "15000", "--pull-expires-ms", "1000", "--grace-ms", "5000"}});
  {
    Status s = node.Start();
    BOOST_REQUIRE_MESSAGE(s.ok(), "node worker: " << s.ToString());
  }
  struct NodeLogOnFailure {  // the Node worker's log next to the aion-worker's
    NodeWorkerProcess& node;
    ~NodeLogOnFailure() {
      namespace ut = boost::unit_test;
      if (!ut::results_collector.results(ut::framework::current_test_case().p_id).passed()) {
        std::cerr << "---- node worker stderr (" << node.stderr_file() << ") ----\n"
                  << node.StderrTail(8000) << "\n---- end ----\n";
      }
    }
  } node_log{node};

  // The sender thread: each start at its time (JSON, request id,
  // Aion-Reply-To), re-published every 1.5 s while unanswered; each signal at
  // its time but never before its start was answered (a signal to an id not
  // yet started is refused by design), re-published the same way. Every
  // re-publish carries the same request id: the worker records it once.
  struct SendState {
    bool start_published = false;
    bool started = false;
    bool signal_published = false;
    bool signalled = false;
    SteadyClock::time_point last_start, last_signal;
  };
  std::vector<SendState> state(flows.size());
  std::atomic<int> start_publishes{0}, signal_publishes{0}, duplicates{0};
  std::string sender_error;
  const auto window_start = SteadyClock::now();
  std::thread sender([&] {
    try {
      NatsCollector replies(h.client(), "_INBOX.acrash.>");
      bus::Headers headers = {{"Content-Type", "application/json"}};
      auto publish = [&](const std::string& kind, std::size_t i, const std::string& body) {
        headers["Aion-Reply-To"] = "_INBOX.acrash." + kind + "." + std::to_string(i);
        JsPublishRetry(h.client(), "aion.wf." + flows[i].id + "." + kind, body, headers);
      };
      std::size_t done = 0;
      const auto give_up = window_start + window + 150s;
      while (done < flows.size()) {
        const auto now = SteadyClock::now();
        if (now > give_up) {
          sender_error = "sender: " + std::to_string(flows.size() - done) +
                         " workflows without an answered signal";
          return;
        }
        while (auto msg = replies.Next(2ms)) {
          const std::string subject = natsMsg_GetSubject(msg.get());
          const std::size_t dot = subject.rfind('.');
          const std::size_t i = std::stoul(subject.substr(dot + 1));
          const std::string kind = subject.substr(14, dot - 14);  // after "_INBOX.acrash."
          auto reply = DecodeIngressReply(Body(msg.get()), true);
          if (!reply || reply->has_error()) {
            sender_error = flows.at(i).id + ": " + kind + " answered with " + Body(msg.get());
            return;
          }
          duplicates += reply->duplicate() ? 1 : 0;
          if (kind == "start") {
            state.at(i).started = true;
          } else if (!state.at(i).signalled) {
            state.at(i).signalled = true;
            ++done;
          }
        }
        for (std::size_t i = 0; i < flows.size(); ++i) {
          const Flow& f = flows[i];
          SendState& st = state[i];
          const auto t = SteadyClock::now();
          if (!st.start_published && window_start + f.start_at <= t) {
            publish("start", i, StartBody(f));
            ++start_publishes;
            st.start_published = true;
            st.last_start = t;
          } else if (st.start_published && !st.started && t - st.last_start > 1500ms) {
            publish("start", i, StartBody(f));  // lost with a killed worker?
            ++start_publishes;
            st.last_start = t;
          }
          if (!st.started) continue;
          if (f.signal.empty()) {  // a fanout: nothing to signal
            if (!st.signalled) {
              st.signalled = true;
              ++done;
            }
            continue;
          }
          if (!st.signal_published && window_start + f.signal_at <= t) {
            publish("signal", i, SignalBody(f));
            ++signal_publishes;
            st.signal_published = true;
            st.last_signal = t;
          } else if (st.signal_published && !st.signalled && t - st.last_signal > 1500ms) {
            publish("signal", i, SignalBody(f));
            ++signal_publishes;
            st.last_signal = t;
          }
        }
      }
    } catch (const std::exception& e) {
      sender_error = std::string("sender: ") + e.what();
    }
  });

  int worker_kills = 0, node_kill_count = 0;
  std::vector<double> restart_seconds;
  for (const Step& step : schedule) {
    std::this_thread::sleep_until(window_start + step.at);
    const double at = Seconds(SteadyClock::now() - window_start);
    switch (step.action) {
      case Action::kKillWorker: {
        h.worker().Kill();
        ++worker_kills;
        BOOST_TEST_MESSAGE("aion-worker kill #" << worker_kills << " at " << at << " s, down "
                                                << step.downtime.count() << " ms");
        std::this_thread::sleep_for(step.downtime);
        const auto t = SteadyClock::now();
        Status s = h.worker().Restart();
        BOOST_REQUIRE_MESSAGE(s.ok(),
                              "aion-worker restart #" << worker_kills << ": " << s.ToString());
        restart_seconds.push_back(Seconds(SteadyClock::now() - t));
        break;
      }
      case Action::kKillNode:
        if (node.Alive()) {
          node.Kill();
          ++node_kill_count;
          BOOST_TEST_MESSAGE("node worker kill at " << at << " s");
        }
        break;
      case Action::kStartNode:
        if (!node.Alive()) {
          Status s = node.Start();
          BOOST_REQUIRE_MESSAGE(s.ok(), "node worker restart: " << s.ToString());
          BOOST_TEST_MESSAGE("node worker back at " << at << " s");
        }
        break;
    }
  }
  if (!node.Alive()) {
    Status s = node.Start();
    BOOST_REQUIRE_MESSAGE(s.ok(), "node worker restart: " << s.ToString());
  }
  sender.join();
  BOOST_REQUIRE_MESSAGE(sender_error.empty(), sender_error);
  const auto signals_done = SteadyClock::now();

  // Every workflow closes (messages and tasks the killed processes had
  // fetched come back after their ack waits; timed-out attempts are retried).
  std::set<std::size_t> open;
  for (std::size_t i = 0; i < flows.size(); ++i) open.insert(i);
  const auto deadline = SteadyClock::now() + 150s;
  while (!open.empty() && SteadyClock::now() < deadline) {
    for (auto it = open.begin(); it != open.end();) {
      wire::DescribeReply d;
      if (TryAsk(h.client(), h.subjects().Request(flows[*it].id, bus::ApiOp::kDescribe),
                 wire::DescribeRequest{}, &d, 5s) &&
          !d.has_error() && d.status() != "running" && !d.status().empty()) {
        it = open.erase(it);
      } else {
        ++it;
      }
    }
    if (!open.empty()) std::this_thread::sleep_for(250ms);
  }
  const auto all_closed = SteadyClock::now();
  int shown = 0;
  for (std::size_t i : open) {
    if (++shown > 10) break;
    wire::DescribeReply d = h.Describe(flows[i].id);
    wire::HistoryReply hist = h.History(flows[i].id);
    Events ev(hist.events().begin(), hist.events().end());
    std::string pending;
    for (const auto& a : d.pending_activities()) {
      pending += " " + a.activity_type() + "#" + std::to_string(a.attempt()) + " " + a.state() +
                 " " + a.last_failure();
    }
    BOOST_ERROR(flows[i].id << " still " << d.status() << " (" << d.error().code()
                            << d.parked_error() << ") pending:" << pending << " "
                            << HistoryText(ev));
  }
  BOOST_REQUIRE_MESSAGE(open.empty(), open.size() << " workflows did not close within 150 s");

  // Every workflow completed exactly once with the expected output and a
  // clean history; nothing is parked.
  Tally tally;
  int failures = 0;
  for (const Flow& f : flows) {
    wire::ResultReply r = h.Result(f.id, 5s);
    wire::HistoryReply hist = h.History(f.id);
    std::string problem;
    if (hist.has_error()) {
      problem = "history error " + hist.error().message();
    } else {
      problem = CheckFlow(f, r, Events(hist.events().begin(), hist.events().end()), &tally);
    }
    wire::DescribeReply d = h.Describe(f.id);
    if (problem.empty() && !d.parked_error().empty()) problem = "parked: " + d.parked_error();
    if (problem.empty() && d.status() != "completed") problem = "describe says " + d.status();
    if (!problem.empty() && ++failures <= 20)
      BOOST_ERROR(f.id << " (" << f.type << "): " << problem);
    for (int k = 1; f.kind == Kind::kFanout && k <= kFanoutChildren; ++k) {
      wire::HistoryReply child = h.History(f.child_id(k));
      problem =
          child.has_error()
              ? "history error " + child.error().message()
              : CheckFanoutChild(f, Events(child.events().begin(), child.events().end()), &tally);
      if (!problem.empty() && ++failures <= 20) BOOST_ERROR(f.child_id(k) << ": " << problem);
    }
  }
  BOOST_CHECK_EQUAL(failures, 0);
  BOOST_CHECK_MESSAGE(tally.remote_retried > 0,
                      "no remote activity was retried although the Node worker was down for "
                          << outage.count() << " ms (longer than the saga's start-to-close)");

  // Exactly one `started` and one `completed` lifecycle event per workflow
  // (fanout children included).
  std::vector<std::pair<std::string, std::string>> all_ids;  // type, id
  for (const Flow& f : flows) {
    all_ids.emplace_back(f.type, f.id);
    for (int k = 1; f.kind == Kind::kFanout && k <= kFanoutChildren; ++k) {
      all_ids.emplace_back("steps_signal", f.child_id(k));
    }
  }
  std::map<std::string, std::uint64_t> completed, started;
  const std::string events(bus::kEventsStream);
  BOOST_CHECK(WaitFor(
      [&] {
        StreamCount(h.client(), events, "aion.evt.*.*.completed", &completed);
        return completed.size() >= all_ids.size();
      },
      30s));
  StreamCount(h.client(), events, "aion.evt.*.*.completed", &completed);
  StreamCount(h.client(), events, "aion.evt.*.*.started", &started);
  int event_failures = 0;
  for (const auto& [type, id] : all_ids) {
    const std::string stem = "aion.evt." + type + "." + id + ".";
    const std::uint64_t c = completed[stem + "completed"], s = started[stem + "started"];
    if ((c != 1 || s != 1) && ++event_failures <= 20) {
      BOOST_ERROR(id << ": " << c << " completed and " << s << " started lifecycle events");
    }
  }
  BOOST_CHECK_EQUAL(event_failures, 0);
  BOOST_CHECK_EQUAL(StreamCount(h.client(), events), 2 * all_ids.size());
  BOOST_CHECK_EQUAL(StreamCount(h.client(), std::string(bus::kDlqStream)), 0u);

  Status stopped = h.worker().Terminate();
  BOOST_CHECK_MESSAGE(stopped.ok(), "aion-worker stop: " << stopped.ToString());
  Status node_stopped = node.Terminate();
  BOOST_CHECK_MESSAGE(node_stopped.ok(), "node worker stop: " << node_stopped.ToString());

  std::string restarts;
  for (double r : restart_seconds)
    restarts += (restarts.empty() ? "" : ", ") + std::to_string(r).substr(0, 4);
  auto secs = [](SteadyClock::duration d) { return std::to_string(Seconds(d)).substr(0, 5); };
  const std::string summary =
      "activity crash test summary: " + std::to_string(flows.size()) + " workflows (" +
      std::to_string(orders) + " orders, " + std::to_string(fanouts) + " fanouts of " +
      std::to_string(kFanoutChildren) + " children), " + std::to_string(tally.activities) +
      " activities, " + std::to_string(tally.remote_retried) + " remote and " +
      std::to_string(tally.local_retried) + " local activities retried, " +
      std::to_string(tally.timed_out) + " attempts timed out; " +
      std::to_string(start_publishes.load()) + " start and " +
      std::to_string(signal_publishes.load()) + " signal publishes (" +
      std::to_string(duplicates.load()) + " answered as duplicates); " +
      std::to_string(worker_kills) + " aion-worker SIGKILLs (restart s: " + restarts + "), " +
      std::to_string(node_kill_count) + " node worker SIGKILLs; schedule " +
      secs(signals_done - window_start) + " s, drain " + secs(all_closed - signals_done) +
      " s, total " + secs(SteadyClock::now() - test_start) + " s, seed " + std::to_string(seed);
  BOOST_TEST_MESSAGE(summary);
  std::cerr << summary << "\n";
  BOOST_CHECK_GE(worker_kills, 3);
  BOOST_CHECK_GE(node_kill_count, 2);
}

}  // namespace
}  // namespace aion::testing
