// Child workflows across workers: one real nats-server and two real
// aion-worker processes owning disjoint partitions (0-7 and 8-15, separate
// data dirs, the same P). The parent runs on one worker and its children on
// the other, so every start, result, cancel and terminate between them goes
// through the outbox, JetStream and the other worker's ingress. The parent is
// the reference workflow `fanout`: input {"children":N, "type":T, "input":X,
// "policy":P, "await":B} starts children "<parent id>-1".."<parent id>-N".
#define BOOST_TEST_MODULE child_workflow_e2e
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "support/ingress_client.h"
#include "worker/worker_harness.h"

namespace aion::testing {
namespace {

using nlohmann::json;

constexpr std::uint32_t kSplit = kPartitions / 2;  // worker "low" owns 0-7, "high" 8-15

bool Low(const std::string& id) { return PartitionOf(id, kPartitions) < kSplit; }

std::string ChildId(const std::string& parent, int i) { return parent + "-" + std::to_string(i); }

// A parent id on the low worker whose `children` children are all on the high one.
std::string SplitParentId(const std::string& stem, int children) {
  for (int n = 0;; ++n) {
    const std::string id = stem + "-" + std::to_string(n);
    bool split = Low(id);
    for (int i = 1; split && i <= children; ++i) split = !Low(ChildId(id, i));
    if (split) return id;
  }
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class TwoWorkers {
 public:
  TwoWorkers() : server_(kPartitions), dir_("aion-child-e2e") {
    client_ = server_.Connect("aion-child-e2e-client");
    low_ = StartWorker("low", "0-7", 0);
    high_ = StartWorker("high", "8-15", kSplit);
  }
  ~TwoWorkers() {
    namespace ut = boost::unit_test;
    if (ut::results_collector.results(ut::framework::current_test_case().p_id).passed()) return;
    for (auto* w : {low_.get(), high_.get()}) {
      if (w == nullptr) continue;
      std::cerr << "---- aion-worker log (" << w->log_file() << ") ----\n"
                << w->LogTail(12000) << "\n---- end of log ----\n";
    }
  }

  // Starts `type` as `id` and returns the run id (the start is committed).
  std::string Start(const std::string& id, const std::string& type, const json& input) {
    const json body = {{"workflow_type", type}, {"input", input}, {"request_id", "start-" + id}};
    auto answer = AskIngress(*client_, subjects_.Workflow(id, bus::IngressKind::kStart),
                             body.dump(), /*json=*/true);
    BOOST_REQUIRE_MESSAGE(!answer.reply.has_error(),
                          "start " << id << ": " << answer.reply.error().message());
    return answer.reply.run_id();
  }

  void Signal(const std::string& id, const std::string& name, const json& input) {
    const json body = {{"name", name}, {"input", input}, {"request_id", name + "-" + id}};
    auto answer = AskIngress(*client_, subjects_.Workflow(id, bus::IngressKind::kSignal),
                             body.dump(), /*json=*/true);
    BOOST_REQUIRE_MESSAGE(!answer.reply.has_error(),
                          "signal " << id << ": " << answer.reply.error().message());
  }

  wire::DescribeReply Describe(const std::string& id) {
    wire::DescribeReply reply;
    std::string error;
    BOOST_REQUIRE_MESSAGE(TryAsk(*client_, subjects_.Request(id, bus::ApiOp::kDescribe),
                                 wire::DescribeRequest{}, &reply, 10s, &error),
                          "describe " << id << ": " << error);
    return reply;
  }

  // Waits (on the worker that owns `id`) up to `wait` for the run to close.
  wire::ResultReply Result(const std::string& id, std::chrono::milliseconds wait = 30s) {
    wire::ResultRequest request;
    request.set_timeout_ms(static_cast<std::uint32_t>(wait.count()));
    wire::ResultReply reply;
    std::string error;
    BOOST_REQUIRE_MESSAGE(TryAsk(*client_, subjects_.Request(id, bus::ApiOp::kResult), request,
                                 &reply, wait + 10s, &error),
                          "result " << id << ": " << error);
    BOOST_REQUIRE_MESSAGE(!reply.has_error(), "result " << id << ": " << reply.error().message());
    return reply;
  }

  // Polls describe until `id` exists with `status`.
  bool AwaitStatus(const std::string& id, const std::string& status) {
    return WaitFor(
        [&] {
          wire::DescribeReply d;
          return TryAsk(*client_, subjects_.Request(id, bus::ApiOp::kDescribe),
                        wire::DescribeRequest{}, &d, 2s) &&
                 !d.has_error() && d.status() == status;
        },
        30s);
  }

  ProcessResult Aion(std::vector<std::string> args) {
    std::vector<std::string> argv = {BinaryPath("aion").string(), "--nats", server_.url()};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = RunProcess(argv, 60s);
    BOOST_TEST_MESSAGE("aion " << args.front() << " -> exit " << r.exit_code
                               << "\n  stdout: " << r.out << "  stderr: " << r.err);
    return r;
  }

 private:
  // A worker owning `partitions`, ready once it answers for an id of `probe_partition`.
  std::unique_ptr<WorkerProcess> StartWorker(const std::string& name, const std::string& partitions,
                                             std::uint32_t probe_partition) {
    WorkerProcessOptions options;
    options.nats_url = server_.url();
    options.data_dir = dir_.path() / name;
    options.extra_args = {"--partitions", partitions, "--partition-count",
                          std::to_string(kPartitions)};
    const std::string probe = IdInPartition(probe_partition, "probe");
    options.ready = [this, probe] {
      wire::DescribeReply reply;
      return TryAsk(*client_, subjects_.Request(probe, bus::ApiOp::kDescribe),
                    wire::DescribeRequest{}, &reply, 500ms) &&
             reply.error().code() == "not_found";
    };
    auto worker = std::make_unique<WorkerProcess>(options);
    Status started = worker->Start();
    BOOST_REQUIRE_MESSAGE(started.ok(), name << ": " << started.ToString());
    return worker;
  }

  NatsTestServer server_;
  TempDir dir_;
  bus::Subjects subjects_;
  std::unique_ptr<bus::NatsConnection> client_;
  std::unique_ptr<WorkerProcess> low_;
  std::unique_ptr<WorkerProcess> high_;
};

json Output(const wire::ResultReply& reply) { return bus::JsonFromValue(reply.output()); }

json FanoutInput(int children, const std::string& type, const json& input,
                 const std::string& policy, bool await) {
  return {{"children", children},
          {"type", type},
          {"input", input},
          {"policy", policy},
          {"await", await}};
}

BOOST_AUTO_TEST_CASE(a_fanout_collects_the_outputs_of_children_on_the_other_worker) {
  TwoWorkers w;
  const std::string parent = SplitParentId("fan", 3);
  const json child_input = {{"hello", "child"}, {"n", 7}};
  w.Start(parent, "fanout", FanoutInput(3, "noop", child_input, "terminate", true));

  const wire::ResultReply result = w.Result(parent);
  BOOST_TEST(result.status() == "completed", result.failure());
  BOOST_TEST(
      (Output(result) == json{{"results", json::array({child_input, child_input, child_input})}}),
      Output(result).dump());
  for (int i = 1; i <= 3; ++i) {
    const std::string child = ChildId(parent, i);
    const wire::ResultReply r = w.Result(child);
    BOOST_TEST(r.status() == "completed", child);
    BOOST_TEST((Output(r) == child_input), child);
    const wire::DescribeReply d = w.Describe(child);
    BOOST_TEST(d.parent().workflow_id() == parent, child);
    BOOST_TEST(d.parent().run_id() == w.Describe(parent).run_id(), child);
    BOOST_TEST(!d.parent().child_ref().empty(), child);
    BOOST_TEST(d.partition() >= kSplit, child);
  }
  BOOST_TEST(w.Describe(parent).pending_children_size() == 0);
}

// Children that wait for a signal the test never sends while the parent
// finishes without awaiting them: the parent-close policy decides their fate.
struct OpenChildren {
  std::string parent;
  static constexpr int kChildren = 3;
};

OpenChildren StartOpenChildren(TwoWorkers& w, const std::string& stem, const std::string& policy) {
  OpenChildren o{SplitParentId(stem, OpenChildren::kChildren)};
  const json child_input = {{"sleep_ms", 0}, {"signal", "go"}};
  w.Start(o.parent, "fanout",
          FanoutInput(OpenChildren::kChildren, "timer_signal", child_input, policy, false));
  for (int i = 1; i <= OpenChildren::kChildren; ++i) {
    BOOST_REQUIRE_MESSAGE(w.AwaitStatus(ChildId(o.parent, i), "running"), ChildId(o.parent, i)
                                                                              << " never ran");
  }
  const wire::DescribeReply d = w.Describe(o.parent);
  BOOST_TEST(d.status() == "running");
  BOOST_REQUIRE(d.pending_children_size() == OpenChildren::kChildren);
  for (const auto& c : d.pending_children()) {
    BOOST_TEST(c.parent_close_policy() == policy);
    BOOST_TEST(c.workflow_type() == "timer_signal");
  }
  return o;
}

void FinishParent(TwoWorkers& w, const OpenChildren& o) {
  w.Signal(o.parent, "finish", json::object());
  const wire::ResultReply result = w.Result(o.parent);
  BOOST_TEST(result.status() == "completed", result.failure());
  BOOST_TEST((Output(result) == json{{"results", json::array()}}), Output(result).dump());
}

BOOST_AUTO_TEST_CASE(children_still_open_when_the_parent_ends_are_terminated_by_policy) {
  TwoWorkers w;
  const OpenChildren o = StartOpenChildren(w, "term", "terminate");
  // The CLI shows the parent's children and each child's parent.
  const ProcessResult described = w.Aion({"describe", o.parent});
  BOOST_TEST(described.exit_code == 0);
  BOOST_TEST(Contains(described.out, "parent_close=terminate"), described.out);
  const ProcessResult child_json = w.Aion({"--json", "describe", ChildId(o.parent, 1)});
  BOOST_TEST(Contains(child_json.out, "\"parent\":{\"workflow_id\":\"" + o.parent + "\""),
             child_json.out);

  FinishParent(w, o);
  for (int i = 1; i <= OpenChildren::kChildren; ++i) {
    const std::string child = ChildId(o.parent, i);
    BOOST_TEST(w.Result(child).status() == "terminated", child);
  }
  const ProcessResult result = w.Aion({"result", ChildId(o.parent, 2)});
  BOOST_TEST(Contains(result.out, "terminated " + ChildId(o.parent, 2)), result.out);
}

BOOST_AUTO_TEST_CASE(abandoned_children_run_on_after_the_parent_ends) {
  TwoWorkers w;
  const OpenChildren o = StartOpenChildren(w, "aband", "abandon");
  FinishParent(w, o);
  // Nothing is sent to abandoned children: give a wrong terminate time to land.
  std::this_thread::sleep_for(1s);
  for (int i = 1; i <= OpenChildren::kChildren; ++i) {
    const std::string child = ChildId(o.parent, i);
    BOOST_TEST(w.Describe(child).status() == "running", child);
    w.Signal(child, "go", json{{"i", i}});
  }
  for (int i = 1; i <= OpenChildren::kChildren; ++i) {
    const std::string child = ChildId(o.parent, i);
    const wire::ResultReply r = w.Result(child);
    BOOST_TEST(r.status() == "completed", child);
    BOOST_TEST((Output(r) == json{{"slept_ms", 0}, {"signal", {{"i", i}}}}), Output(r).dump());
  }
}

}  // namespace
}  // namespace aion::testing
