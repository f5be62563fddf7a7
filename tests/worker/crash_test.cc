// The durable core under SIGKILL (DESIGN §3, §4): hundreds of timer_signal
// workflows in flight against a real aion-worker process, whose signals are
// published by a sender thread at random times while the worker is killed
// with SIGKILL and restarted on the same data dir several times. At the end
// every workflow completed exactly once, with its own signal, and its history
// is exactly [WorkflowStarted, TimerStarted, TimerFired, SignalReceived,
// WorkflowCompleted] in a valid order with seqs 1..5; AION_EVENTS holds
// exactly one `completed` (and one `started`) lifecycle event per workflow.
//
// Environment (for reproducing a failure): AION_CRASH_SEED, AION_CRASH_WORKFLOWS,
// AION_CRASH_WINDOW_S (signal window, seconds), AION_CRASH_KILLS.
#define BOOST_TEST_MODULE crash
#include <algorithm>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>

#include "worker/worker_harness.h"

namespace aion::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

long EnvOr(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v == nullptr || *v == '\0' ? fallback : std::strtol(v, nullptr, 10);
}

double Seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

struct Flow {
  int index = 0;
  std::string id;
  int sleep_ms = 0;
  json signal_input;
  bool json_encoding = false;     // JSON or protobuf binary on the wire
  milliseconds start_at{0};       // after the window opens
  milliseconds signal_at{0};      // after the window opens; sent once the start was answered
  milliseconds duplicate_at{-1};  // a second, identical signal (same request id), if >= 0
};

std::string StartRequestId(const Flow& f) { return "start-" + std::to_string(f.index); }
std::string SignalRequestId(const Flow& f) { return "sig-" + std::to_string(f.index); }

std::pair<std::string, bus::Headers> StartMessage(const Flow& f, const std::string& reply_to) {
  const json input = {{"sleep_ms", f.sleep_ms}, {"signal", "go"}};
  bus::Headers headers;
  headers["Aion-Reply-To"] = reply_to;
  if (f.json_encoding) {
    headers["Content-Type"] = "application/json";
    return {
        json{{"workflow_type", "timer_signal"}, {"input", input}, {"request_id", StartRequestId(f)}}
            .dump(),
        headers};
  }
  wire::StartWorkflow start;
  start.set_workflow_type("timer_signal");
  bus::ValueFromJson(input, start.mutable_input());
  start.set_request_id(StartRequestId(f));
  return {start.SerializeAsString(), headers};
}

std::pair<std::string, bus::Headers> SignalMessage(const Flow& f) {
  bus::Headers headers;
  if (f.json_encoding) {
    headers["Content-Type"] = "application/json";
    return {
        json{{"name", "go"}, {"input", f.signal_input}, {"request_id", SignalRequestId(f)}}.dump(),
        headers};
  }
  wire::SignalWorkflow signal;
  signal.set_name("go");
  bus::ValueFromJson(f.signal_input, signal.mutable_input());
  signal.set_request_id(SignalRequestId(f));
  return {signal.SerializeAsString(), headers};
}

// Checks one workflow's history; returns "" or what is wrong. Sets
// *signal_first when the signal was recorded before the timer fired.
std::string CheckHistory(const Flow& f, const wire::HistoryReply& h, const std::string& run_id,
                         bool* signal_first) {
  if (h.has_error()) return "history error " + h.error().code() + ": " + h.error().message();
  std::vector<history::HistoryEvent> ev(h.events().begin(), h.events().end());
  const std::string text = HistoryText(ev);
  if (ev.size() != 5) return "history has " + std::to_string(ev.size()) + " events: " + text;
  std::map<std::string, int> at;  // event name -> index
  for (int i = 0; i < 5; ++i) {
    if (ev[i].seq() != static_cast<std::uint64_t>(i + 1)) return "seqs not 1..5: " + text;
    if (ev[i].run_id() != run_id) return "event " + std::to_string(i + 1) + " of another run";
    if (!at.emplace(EventName(ev[i]), i).second)
      return "duplicated " + EventName(ev[i]) + ": " + text;
  }
  for (const char* name :
       {"WorkflowStarted", "TimerStarted", "TimerFired", "SignalReceived", "WorkflowCompleted"}) {
    if (!at.count(name)) return std::string("missing ") + name + ": " + text;
  }
  if (at["WorkflowStarted"] != 0 || at["WorkflowCompleted"] != 4) return "bad order: " + text;
  if (at["TimerStarted"] > at["TimerFired"]) return "timer fired before it started: " + text;
  const auto& started = ev[0].workflow_started();
  if (started.request_id() != StartRequestId(f)) return "start request id " + started.request_id();
  const auto& timer_started = ev[at["TimerStarted"]];
  const auto& timer_fired = ev[at["TimerFired"]];
  if (timer_started.timer_started().timer_id() != timer_fired.timer_fired().timer_id()) {
    return "TimerFired names another timer: " + text;
  }
  if (timer_started.caused_by() != 1) return "TimerStarted not caused by the start: " + text;
  const auto& signal = ev[at["SignalReceived"]];
  if (signal.signal_received().name() != "go")
    return "signal named " + signal.signal_received().name();
  if (signal.signal_received().request_id() != SignalRequestId(f)) {
    return "signal request id " + signal.signal_received().request_id();
  }
  auto input = ParseJsonPayload(signal.signal_received().input());
  if (!input.ok() || *input != f.signal_input) return "SignalReceived carries another input";
  // The completion answers whichever of the timer and the signal came last.
  const std::uint64_t last_input = std::max(timer_fired.seq(), signal.seq());
  if (ev[4].caused_by() != last_input) {
    return "WorkflowCompleted caused_by " + std::to_string(ev[4].caused_by()) + ", expected " +
           std::to_string(last_input) + ": " + text;
  }
  auto output = ParseJsonPayload(ev[4].workflow_completed().output());
  const json expected = {{"slept_ms", f.sleep_ms}, {"signal", f.signal_input}};
  if (!output.ok() || *output != expected) return "recorded output differs";
  *signal_first = signal.seq() < timer_fired.seq();
  return "";
}

BOOST_AUTO_TEST_CASE(workflows_survive_sigkill_of_the_worker) {
  const auto test_start = SteadyClock::now();
  const unsigned seed = static_cast<unsigned>(EnvOr("AION_CRASH_SEED", std::random_device{}()));
  const int workflows = static_cast<int>(EnvOr("AION_CRASH_WORKFLOWS", 240));
  const milliseconds window(std::max(10L, EnvOr("AION_CRASH_WINDOW_S", 30)) * 1000);
  const int kill_count = static_cast<int>(std::max(1L, EnvOr("AION_CRASH_KILLS", 5)));
  BOOST_TEST_MESSAGE("crash test: seed " << seed << ", " << workflows << " workflows, window "
                                         << window.count() << " ms, " << kill_count << " kills");
  std::cerr << "crash test seed " << seed << " (AION_CRASH_SEED to repeat)\n";
  std::mt19937 rng(seed);
  auto uniform = [&rng](long lo, long hi) {
    return std::uniform_int_distribution<long>(lo, std::max(lo, hi))(rng);
  };

  // The kills: one at a random moment of each slice of the window.
  std::vector<milliseconds> kill_at;
  const long slice = (window.count() - 1000) / kill_count;
  for (int k = 0; k < kill_count; ++k) {
    kill_at.push_back(milliseconds(500 + k * slice + uniform(0, slice - 300)));
  }
  // The workflows: starts spread over the window so that starts, timers
  // (200-3000 ms) and signals overlap each other and the kills; a third of
  // them start or get their signal just before a kill, so that messages are
  // in flight (fetched, not yet committed or acked) when the worker dies.
  std::vector<Flow> flows(static_cast<std::size_t>(workflows));
  for (int i = 0; i < workflows; ++i) {
    Flow& f = flows[static_cast<std::size_t>(i)];
    f.index = i;
    f.id = "crash-" + std::to_string(i);
    f.sleep_ms = static_cast<int>(uniform(200, 3000));
    f.signal_input = {{"i", i}, {"token", std::to_string(uniform(0, 1'000'000'000))}};
    f.json_encoding = (i % 2) == 0;
    const milliseconds kill = kill_at[static_cast<std::size_t>(uniform(0, kill_count - 1))];
    switch (uniform(0, 5)) {
      case 0:  // started just before a kill
        f.start_at = milliseconds(std::max(0L, kill.count() - uniform(0, 150)));
        f.signal_at = f.start_at + milliseconds(uniform(0, 4000));
        break;
      case 1:  // signalled just before a kill
        f.start_at = milliseconds(uniform(0, std::max(0L, kill.count() - 1000)));
        f.signal_at = std::max(f.start_at, milliseconds(kill.count() - uniform(0, 150)));
        break;
      default:
        f.start_at = milliseconds(uniform(0, window.count() - 5000));
        f.signal_at = f.start_at + milliseconds(uniform(0, 4000));
        break;
    }
    if (uniform(0, 7) == 0) f.duplicate_at = f.signal_at + milliseconds(uniform(0, 5000));
  }

  WorkerHarness h;
  int kills = 0;
  int graceful_stops = 0;
  std::vector<double> restart_seconds;
  auto crash_and_restart = [&](milliseconds downtime) {
    h.worker().Kill();
    ++kills;
    BOOST_TEST_MESSAGE("kill #" << kills << " at " << Seconds(SteadyClock::now() - test_start)
                                << " s (" << h.worker().last_exit() << "), down for "
                                << downtime.count() << " ms");
    std::this_thread::sleep_for(downtime);  // a crash lasts a while: timers fall due meanwhile
    const auto t = SteadyClock::now();
    Status restarted = h.worker().Restart();
    BOOST_REQUIRE_MESSAGE(restarted.ok(), "restart #" << kills << ": " << restarted.ToString());
    restart_seconds.push_back(Seconds(SteadyClock::now() - t));
  };

  // The sender thread follows the schedule: it publishes each start (with a
  // request id and Aion-Reply-To) at its time and re-publishes it while no
  // reply came (the reply, or the start itself, may die with a worker: the
  // request id makes the retry idempotent); it publishes a workflow's signal
  // (JetStream, with a request id, retried until the PubAck) at its time but
  // never before the start was answered, since a signal to an id not yet
  // started is refused with not_found by design. The main thread kills.
  struct SendState {
    bool start_published = false;
    bool started = false;  // the start was answered
    SteadyClock::time_point last_start;
    bool signal_sent = false;
    bool duplicate_sent = false;
  };
  std::vector<SendState> state(flows.size());
  std::atomic<int> signals_sent{0}, start_publishes{0}, publish_retries{0};
  std::string sender_error;  // set by the sender thread before it ends
  const auto window_start = SteadyClock::now();
  std::thread sender([&] {
    try {
      NatsCollector replies(h.client(), "_INBOX.crash-start.>");
      std::vector<std::size_t> by_start(flows.size());
      for (std::size_t i = 0; i < flows.size(); ++i) by_start[i] = i;
      std::sort(by_start.begin(), by_start.end(), [&](std::size_t a, std::size_t b) {
        return flows[a].start_at < flows[b].start_at;
      });
      std::size_t next_start = 0;
      auto publish_start = [&](std::size_t i) {
        auto [data, headers] = StartMessage(flows[i], "_INBOX.crash-start." + std::to_string(i));
        publish_retries +=
            JsPublishRetry(h.client(), "aion.wf." + flows[i].id + ".start", data, headers) - 1;
        ++start_publishes;
        state[i].start_published = true;
        state[i].last_start = SteadyClock::now();
      };
      auto publish_signal = [&](std::size_t i) {
        auto [data, headers] = SignalMessage(flows[i]);
        publish_retries +=
            JsPublishRetry(h.client(), "aion.wf." + flows[i].id + ".signal", data, headers) - 1;
        ++signals_sent;
      };
      std::size_t done = 0;  // flows whose signal (and duplicate) went out
      const auto give_up = window_start + window + 120s;
      while (done < flows.size()) {
        const auto now = SteadyClock::now();
        if (now > give_up) {
          sender_error = "sender: " + std::to_string(flows.size() - done) +
                         " workflows still unsignalled (starts never answered?)";
          return;
        }
        while (next_start < by_start.size() &&
               window_start + flows[by_start[next_start]].start_at <= now) {
          publish_start(by_start[next_start++]);
        }
        while (auto msg = replies.Next(2ms)) {
          const std::string subject = natsMsg_GetSubject(msg.get());
          const std::size_t i = std::stoul(subject.substr(subject.rfind('.') + 1));
          const Flow& f = flows.at(i);
          std::string error;
          if (f.json_encoding) {
            json j = json::parse(Body(msg.get()), nullptr, false);
            if (j.is_discarded() || j.contains("error")) error = Body(msg.get());
          } else {
            wire::IngressReply reply;
            if (!reply.ParseFromString(Body(msg.get()))) error = "undecodable reply";
            if (reply.has_error()) error = reply.error().code() + ": " + reply.error().message();
          }
          if (!error.empty()) {
            sender_error = f.id + ": start answered with " + error;
            return;
          }
          state[i].started = true;
        }
        for (std::size_t i = 0; i < flows.size(); ++i) {
          const Flow& f = flows[i];
          SendState& st = state[i];
          if (st.start_published && !st.started && SteadyClock::now() - st.last_start > 3s) {
            publish_start(i);  // lost with a killed worker: again, same request id
          }
          if (!st.started) continue;
          const bool wants_duplicate = f.duplicate_at.count() >= 0;
          if (!st.signal_sent && window_start + f.signal_at <= SteadyClock::now()) {
            publish_signal(i);
            st.signal_sent = true;
            if (!wants_duplicate) ++done;
          } else if (st.signal_sent && wants_duplicate && !st.duplicate_sent &&
                     window_start + f.duplicate_at <= SteadyClock::now()) {
            publish_signal(i);  // an identical retry: same request id
            st.duplicate_sent = true;
            ++done;
          }
        }
      }
    } catch (const std::exception& e) {
      sender_error = std::string("sender: ") + e.what();
    }
  });
  // Every kill but one is followed by a restart after a random downtime; one
  // kill hits the restarted worker again while it recovers. Once, half-way
  // between two kills, the worker is instead stopped gracefully (SIGTERM:
  // drain, exit 0) under the same load and restarted.
  const std::size_t double_kill = static_cast<std::size_t>(uniform(0, kill_count - 1));
  const std::size_t graceful_after = static_cast<std::size_t>(uniform(0, kill_count - 1));
  for (std::size_t k = 0; k < kill_at.size(); ++k) {
    std::this_thread::sleep_until(window_start + kill_at[k]);  // a schedule, not a wait for state
    crash_and_restart(milliseconds(uniform(0, 1500)));
    if (k == double_kill) {
      std::this_thread::sleep_for(milliseconds(uniform(0, 100)));
      crash_and_restart(milliseconds(uniform(0, 200)));
    }
    if (k == graceful_after) {
      const milliseconds next = k + 1 < kill_at.size() ? kill_at[k + 1] : window;
      std::this_thread::sleep_until(window_start + (kill_at[k] + next) / 2);
      BOOST_TEST_MESSAGE("SIGTERM at " << Seconds(SteadyClock::now() - test_start) << " s");
      Status drained = h.worker().Terminate();
      BOOST_CHECK_MESSAGE(drained.ok(), "graceful stop under load: " << drained.ToString());
      ++graceful_stops;
      Status restarted = h.worker().Restart();
      BOOST_REQUIRE_MESSAGE(restarted.ok(), "restart after SIGTERM: " << restarted.ToString());
    }
  }
  sender.join();
  BOOST_REQUIRE_MESSAGE(sender_error.empty(), sender_error);
  const auto signals_done = SteadyClock::now();
  std::size_t duplicates = 0;
  for (const Flow& f : flows) duplicates += f.duplicate_at.count() >= 0 ? 1 : 0;
  BOOST_REQUIRE_EQUAL(static_cast<std::size_t>(signals_sent.load()), flows.size() + duplicates);

  // Phase 3: every workflow completes (messages the killed workers fetched
  // but never acked come back after the consumer's ack wait).
  std::set<std::string> open;
  for (const Flow& f : flows) open.insert(f.id);
  const auto deadline = SteadyClock::now() + 120s;
  while (!open.empty() && SteadyClock::now() < deadline) {
    for (auto it = open.begin(); it != open.end();) {
      wire::DescribeReply d;
      if (TryAsk(h.client(), h.subjects().Request(*it, bus::ApiOp::kDescribe),
                 wire::DescribeRequest{}, &d, 5s) &&
          d.status() == "completed") {
        it = open.erase(it);
      } else {
        ++it;
      }
    }
    if (!open.empty()) std::this_thread::sleep_for(200ms);
  }
  const auto all_closed = SteadyClock::now();
  if (!open.empty()) {
    int shown = 0;
    for (const std::string& id : open) {
      if (++shown > 10) break;
      wire::DescribeReply d = h.Describe(id);
      wire::HistoryReply hist = h.History(id);
      std::vector<history::HistoryEvent> ev(hist.events().begin(), hist.events().end());
      BOOST_ERROR(id << " still " << d.status() << " (" << d.error().code() << d.parked_error()
                     << "): " << HistoryText(ev));
    }
  }
  BOOST_REQUIRE_MESSAGE(open.empty(), open.size() << " workflows did not complete within 120 s");

  // Every workflow completed exactly once, with its own signal.
  int signal_first = 0;
  int failures = 0;
  for (const Flow& f : flows) {
    wire::ResultReply r = h.Result(f.id, 5s);
    std::string problem;
    if (r.has_error()) {
      problem = "result error " + r.error().code() + ": " + r.error().message();
    } else if (r.status() != "completed") {
      problem = "result status " + r.status() + " " + r.failure();
    } else if (bus::JsonFromValue(r.output()) !=
               json({{"slept_ms", f.sleep_ms}, {"signal", f.signal_input}})) {
      problem = "result output " + bus::JsonFromValue(r.output()).dump();
    } else {
      bool first = false;
      problem = CheckHistory(f, h.History(f.id), r.run_id(), &first);
      signal_first += first ? 1 : 0;
    }
    if (!problem.empty() && ++failures <= 20) BOOST_ERROR(f.id << ": " << problem);
  }
  BOOST_CHECK_EQUAL(failures, 0);

  // Exactly one `completed` and one `started` lifecycle event per workflow.
  std::map<std::string, std::uint64_t> completed, started;
  BOOST_CHECK(WaitFor(
      [&] {
        StreamCount(h.client(), std::string(bus::kEventsStream),
                    "aion.evt.timer_signal.*.completed", &completed);
        return completed.size() >= flows.size();
      },
      30s));
  StreamCount(h.client(), std::string(bus::kEventsStream), "aion.evt.timer_signal.*.completed",
              &completed);
  StreamCount(h.client(), std::string(bus::kEventsStream), "aion.evt.timer_signal.*.started",
              &started);
  BOOST_CHECK_EQUAL(completed.size(), flows.size());
  BOOST_CHECK_EQUAL(started.size(), flows.size());
  int event_failures = 0;
  for (const Flow& f : flows) {
    const std::uint64_t c = completed["aion.evt.timer_signal." + f.id + ".completed"];
    const std::uint64_t s = started["aion.evt.timer_signal." + f.id + ".started"];
    if ((c != 1 || s != 1) && ++event_failures <= 20) {
      BOOST_ERROR(f.id << ": " << c << " completed and " << s << " started lifecycle events");
    }
  }
  BOOST_CHECK_EQUAL(event_failures, 0);
  BOOST_CHECK_EQUAL(StreamCount(h.client(), std::string(bus::kEventsStream)), 2 * flows.size());
  BOOST_CHECK_EQUAL(StreamCount(h.client(), std::string(bus::kDlqStream)), 0u);

  Status stopped = h.worker().Terminate();
  BOOST_CHECK_MESSAGE(stopped.ok(), stopped.ToString());

  std::string restarts;
  for (double r : restart_seconds)
    restarts += (restarts.empty() ? "" : ", ") + std::to_string(r).substr(0, 4);
  auto secs = [](SteadyClock::duration d) { return std::to_string(Seconds(d)).substr(0, 5); };
  const std::string summary =
      "crash test summary: " + std::to_string(workflows) + " workflows, " +
      std::to_string(start_publishes.load()) + " start publishes (" +
      std::to_string(start_publishes.load() - workflows) + " re-sent after a kill), " +
      std::to_string(signals_sent.load()) + " signals (" + std::to_string(duplicates) +
      " duplicates), " + std::to_string(publish_retries.load()) + " publish retries, " +
      std::to_string(kills) + " SIGKILLs (restart s: " + restarts + "), " +
      std::to_string(graceful_stops) + " SIGTERM, " + std::to_string(signal_first) +
      " signals recorded before the timer fired; schedule " + secs(signals_done - window_start) +
      " s, drain " + secs(all_closed - signals_done) + " s, total " +
      secs(SteadyClock::now() - test_start) + " s, seed " + std::to_string(seed);
  BOOST_TEST_MESSAGE(summary);
  std::cerr << summary << "\n";
  BOOST_CHECK_GE(kills, 3);
}

}  // namespace
}  // namespace aion::testing
