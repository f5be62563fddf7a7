// Worker in process: flag parsing, startup errors, durability across a
// restart on the same LMDB data dir, and partition ownership between workers.
#define BOOST_TEST_MODULE worker
#include "aion/worker/worker.h"

#include <boost/test/unit_test.hpp>
#include <functional>
#include <thread>

#include "aion/engine/ids.h"
#include "aion/examples/reference_workflows.h"
#include "aion/worker/main.h"
#include "support/nats_test_server.h"
#include "support/temp_dir.h"
#include "support/wait.h"

namespace aion::testing {
namespace {

using namespace std::chrono_literals;
using worker::ParsePartitions;
using worker::Worker;
using worker::WorkerOptions;

std::string IdInPartition(std::uint32_t p, const std::string& stem) {
  for (int n = 0;; ++n) {
    std::string id = stem + "-" + std::to_string(n);
    if (PartitionOf(id, 16) == p) return id;
  }
}

// The reference workflows and activities, as aion-worker registers them.
const worker::Registries& Reference() {
  static const worker::Registries registries = [] {
    worker::Registries r;
    BOOST_REQUIRE(examples::RegisterReferenceWorkflows(r.workflows).ok());
    BOOST_REQUIRE(examples::RegisterReferenceActivities(r.activities).ok());
    return r;
  }();
  return registries;
}

WorkerOptions Options() {
  WorkerOptions options;
  options.workflows = &Reference().workflows;
  options.activities = &Reference().activities;
  return options;
}

std::unique_ptr<Worker> StartWorker(WorkerOptions options) {
  auto w = Worker::Start(std::move(options));
  BOOST_REQUIRE_MESSAGE(w.ok(), w.status().ToString());
  return std::move(*w);
}

bool Completed(Worker& w, const std::string& id) {
  auto d = w.engine().Describe(id);
  return d.ok() && d->record.status() == records::WORKFLOW_STATUS_COMPLETED;
}

BOOST_AUTO_TEST_CASE(parses_partition_ranges) {
  BOOST_TEST((*ParsePartitions("0-3,7", 16) == std::vector<std::uint32_t>{0, 1, 2, 3, 7}));
  BOOST_TEST((*ParsePartitions("15", 16) == std::vector<std::uint32_t>{15}));
  BOOST_TEST((*ParsePartitions("3,1-2,2", 16) == std::vector<std::uint32_t>{1, 2, 3}));
  for (const char* bad : {"", "16", "0-16", "a", "1-", "-1", "3-1", "1,,2", "1-2-3", " 1"}) {
    auto parsed = ParsePartitions(bad, 16);
    BOOST_TEST((parsed.status().code() == StatusCode::kInvalidArgument), bad);
  }
  BOOST_TEST(ParsePartitions("0-99", 16).status().message().find("out of range") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(startup_errors_are_clear) {
  TempDir dir("aion-worker");
  WorkerOptions unreachable = Options();
  unreachable.nats_url = "nats://127.0.0.1:1";
  unreachable.data_dir = dir.path();
  auto w = Worker::Start(unreachable);
  BOOST_TEST((w.status().code() == StatusCode::kUnavailable));
  BOOST_TEST(w.status().message().find("cannot reach NATS at nats://127.0.0.1:1") !=
             std::string::npos);

  WorkerOptions file_as_dir = unreachable;
  file_as_dir.data_dir = "/etc/hostname";
  w = Worker::Start(file_as_dir);
  BOOST_TEST((w.status().code() == StatusCode::kInvalidArgument));
  BOOST_TEST(w.status().message().find("cannot use data dir") != std::string::npos);

  WorkerOptions no_dir = Options();
  w = Worker::Start(no_dir);
  BOOST_TEST(w.status().message().find("no data dir") != std::string::npos);

  WorkerOptions bad_prefix = unreachable;
  bad_prefix.prefix = "a b";
  BOOST_TEST((Worker::Start(bad_prefix).status().code() == StatusCode::kInvalidArgument));
}

Task<Json> Echo(Context&, Json input) { co_return input; }

// Checked before anything is opened: no NATS server is needed to see them.
BOOST_AUTO_TEST_CASE(registrations_that_failed_or_none_are_startup_errors) {
  TempDir dir("aion-worker");
  WorkerOptions none = Options();
  none.data_dir = dir.path();
  none.workflows = nullptr;
  auto w = Worker::Start(none);
  BOOST_TEST((w.status().code() == StatusCode::kInvalidArgument));
  BOOST_TEST(w.status().message().find("no workflow types registered") != std::string::npos);
  WorkflowRegistry empty;
  none.workflows = &empty;
  BOOST_TEST(Worker::Start(none).status().message().find("no workflow types registered") !=
             std::string::npos);

  worker::Registries twice;
  BOOST_TEST(twice.workflows.workflow("echo", &Echo).ok());
  BOOST_TEST((twice.workflows.workflow("echo", &Echo).code() == StatusCode::kInvalidArgument));
  BOOST_TEST(twice.workflows.workflow("other", &Echo).ok());  // the first error stays
  auto echo = [](ActivityContext&, Json in) { return in; };
  BOOST_TEST(twice.activities.activity("a", echo).ok());
  BOOST_TEST((twice.activities.activity("a", echo).code() == StatusCode::kInvalidArgument));
  WorkerOptions dup = Options();
  dup.data_dir = dir.path();
  dup.workflows = &twice.workflows;
  w = Worker::Start(dup);
  BOOST_TEST((w.status().code() == StatusCode::kInvalidArgument));
  BOOST_TEST(w.status().message() ==
             "workflow registration failed: workflow type 'echo' version '1' is already "
             "registered");
  dup.workflows = &Reference().workflows;
  dup.activities = &twice.activities;
  BOOST_TEST(Worker::Start(dup).status().message() ==
             "activity registration failed: activity type 'a' is already registered");
}

BOOST_AUTO_TEST_CASE(state_survives_a_restart_on_the_same_data_dir) {
  NatsTestServer server;
  TempDir dir("aion-worker");
  WorkerOptions options = Options();
  options.nats_url = server.url();
  options.data_dir = dir.path();
  auto client = server.Connect("client");
  {
    auto w = StartWorker(options);
    JsPublish(*client, "aion.wf.keep-1.start", R"({"workflow_type":"noop","input":42})",
              kJsonHeaders);
    JsPublish(*client, "aion.wf.keep-2.start",
              R"({"workflow_type":"timer_signal","input":{"sleep_ms":0,"signal":"go"}})",
              kJsonHeaders);
    BOOST_REQUIRE(WaitFor([&] { return Completed(*w, "keep-1"); }));
    BOOST_REQUIRE(WaitFor([&] { return w->engine().Describe("keep-2").ok(); }));
    w->Shutdown();
  }
  BOOST_TEST(std::filesystem::exists(dir.path() / "lmdb"));
  auto w = StartWorker(options);
  BOOST_TEST(Completed(*w, "keep-1"));
  auto history = w->engine().History("keep-1");
  BOOST_REQUIRE(history.ok());
  BOOST_TEST(history->size() == 2u);
  // The open run was rebuilt by replay and still takes its signal.
  JsPublish(*client, "aion.wf.keep-2.signal", R"({"name":"go","input":"later"})", kJsonHeaders);
  BOOST_TEST(WaitFor([&] { return Completed(*w, "keep-2"); }));
}

BOOST_AUTO_TEST_CASE(workers_consume_only_the_partitions_they_own) {
  NatsTestServer server;
  TempDir dir_a("aion-worker-a"), dir_b("aion-worker-b");
  auto client = server.Connect("client");
  WorkerOptions a = Options();
  a.nats_url = server.url();
  a.data_dir = dir_a.path();
  a.partitions = {0, 1, 2, 3};
  auto first = StartWorker(a);
  BOOST_TEST(first->partitions().size() == 4u);
  const std::string mine = IdInPartition(2, "own"), theirs = IdInPartition(9, "own");
  JsPublish(*client, "aion.wf." + mine + ".start", R"({"workflow_type":"noop"})", kJsonHeaders);
  JsPublish(*client, "aion.wf." + theirs + ".start", R"({"workflow_type":"noop"})", kJsonHeaders);
  BOOST_REQUIRE(WaitFor([&] { return Completed(*first, mine); }));
  std::this_thread::sleep_for(300ms);
  BOOST_TEST((first->engine().Describe(theirs).status().code() == StatusCode::kNotFound));

  WorkerOptions b = a;
  b.data_dir = dir_b.path();
  b.partitions = {};
  for (std::uint32_t p = 4; p < 16; ++p) b.partitions.push_back(p);
  auto second = StartWorker(b);
  BOOST_TEST(WaitFor([&] { return Completed(*second, theirs); }));
  BOOST_TEST((second->engine().Describe(mine).status().code() == StatusCode::kNotFound));
}

BOOST_AUTO_TEST_CASE(a_worker_with_another_partition_count_is_refused) {
  NatsTestServer server;
  TempDir dir_a("aion-worker-a"), dir_b("aion-worker-b");
  WorkerOptions options = Options();
  options.nats_url = server.url();
  options.data_dir = dir_a.path();
  auto first = StartWorker(options);
  options.data_dir = dir_b.path();
  options.partition_count = 8;
  auto refused = Worker::Start(options);
  BOOST_TEST((refused.status().code() == StatusCode::kInvalidArgument));
  BOOST_TEST(refused.status().message().find("created with 16 partitions") != std::string::npos);
}

}  // namespace
}  // namespace aion::testing
