// Production NATS (README "Production NATS"): a real aion-worker against real
// nats-servers configured as a deployment might be. Without the mappings of
// DESIGN §5, or with another partition count in them, the worker refuses to
// start and says what to add; with the fragment `aion nats-config` prints it
// starts, and its check leaves nothing in AION_IN. One worker per data dir:
// a second one is refused while the first runs, and the dir is free again
// once the first stopped, also after SIGKILL.
#define BOOST_TEST_MODULE production_nats
#include <boost/test/unit_test.hpp>
#include <fstream>

#include "aion/bus/nats_mappings.h"
#include "support/child_process.h"
#include "worker/worker_harness.h"

namespace aion::testing {
namespace {

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

const bus::Subjects kSubjects;

// A nats-server whose config has `mappings` instead of the generated block.
bus::NatsServerOptions WithMappings(std::string mappings) {
  bus::NatsServerOptions options = NatsTestServer::Options(kPartitions);
  options.mappings_config = std::move(mappings);
  return options;
}

// Runs aion-worker on `server` until it exits (a refusal) or 30 s pass.
ProcessResult RunWorker(const NatsTestServer& server, const std::filesystem::path& data) {
  return RunProcess(
      {BinaryPath("aion-worker").string(), "--nats", server.url(), "--data", data.string()}, 30s);
}

// What AION_IN ever stored: its last sequence (0 if never a message).
std::uint64_t InLastSeq(bus::NatsConnection& conn) {
  StreamInfoHolder info;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&info.si, conn.js(), "AION_IN", nullptr, &jerr);
  BOOST_REQUIRE_MESSAGE(s == NATS_OK, bus::NatsStatus(s, "AION_IN info", jerr).ToString());
  return info.si->State.LastSeq;
}

// The check ran after the streams existed and stored nothing in AION_IN.
void ExpectNothingStored(NatsTestServer& server) {
  auto conn = server.Connect("inspect");
  BOOST_CHECK_EQUAL(StreamCount(*conn, "AION_IN"), 0u);
  BOOST_CHECK_EQUAL(InLastSeq(*conn), 0u);
}

std::unique_ptr<WorkerProcess> ReadyWorker(NatsTestServer& server, bus::NatsConnection& client,
                                           const std::filesystem::path& data) {
  WorkerProcessOptions options;
  options.nats_url = server.url();
  options.data_dir = data;
  options.ready = DescribeProbe(client);
  auto worker = std::make_unique<WorkerProcess>(options);
  Status started = worker->Start();
  BOOST_REQUIRE_MESSAGE(started.ok(), started.ToString());
  return worker;
}

BOOST_AUTO_TEST_CASE(a_worker_refuses_a_nats_server_without_the_mappings) {
  NatsTestServer server(WithMappings(""));
  TempDir dir("aion-prod-nats");
  ProcessResult r = RunWorker(server, dir.path() / "data");
  BOOST_CHECK_EQUAL(r.exit_code, 1);
  BOOST_CHECK_MESSAGE(Contains(r.err,
                               "aion-worker: nats-server does not map aion.wf.* to "
                               "aion.in.<p>.*"),
                      r.err);
  BOOST_CHECK_MESSAGE(Contains(r.err, "does not map aion.req.* to aion.api.<p>.*"), r.err);
  BOOST_CHECK_MESSAGE(Contains(r.err, "Add this to its config"), r.err);
  BOOST_CHECK_MESSAGE(Contains(r.err, bus::NatsMappingsConfig(kSubjects, kPartitions)), r.err);
  BOOST_CHECK(!Contains(r.err + r.out, "worker ready"));
  ExpectNothingStored(server);
}

// The flag is for NATS users that may not watch the probes: the worker then
// starts without the mappings.
BOOST_AUTO_TEST_CASE(skip_mapping_check_starts_without_the_mappings) {
  NatsTestServer server(WithMappings(""));
  TempDir dir("aion-prod-nats");
  WorkerProcessOptions options;
  options.nats_url = server.url();
  options.data_dir = dir.path() / "data";
  options.extra_args = {"--skip-mapping-check"};
  WorkerProcess worker(options);
  BOOST_REQUIRE(worker.Start().ok());
  BOOST_TEST(WaitFor([&] { return worker.LogTail().find("worker ready") != std::string::npos; }));
  BOOST_TEST(worker.Alive());
  BOOST_TEST(worker.Terminate().ok());
}

BOOST_AUTO_TEST_CASE(a_worker_refuses_a_mapping_with_another_partition_count) {
  NatsTestServer server(WithMappings(bus::NatsMappingsBlock(kSubjects, 8)));
  TempDir dir("aion-prod-nats");
  ProcessResult r = RunWorker(server, dir.path() / "data");
  BOOST_CHECK_EQUAL(r.exit_code, 1);
  BOOST_CHECK_MESSAGE(Contains(r.err,
                               "nats-server maps aion.wf.* to aion.in.<p>.* with another "
                               "partition count than the streams' 16"),
                      r.err);
  BOOST_CHECK_MESSAGE(Contains(r.err, "the arrivals fit {{partition(8,1)}}"), r.err);
  BOOST_CHECK_MESSAGE(Contains(r.err, "maps aion.req.* to aion.api.<p>.* with another"), r.err);
  BOOST_CHECK_MESSAGE(Contains(r.err, "Replace its aion.wf and aion.req mappings with this"),
                      r.err);
  BOOST_CHECK_MESSAGE(Contains(r.err, bus::NatsMappingsBlock(kSubjects, kPartitions)), r.err);
  ExpectNothingStored(server);
}

BOOST_AUTO_TEST_CASE(a_worker_names_the_one_mapping_that_is_missing) {
  const std::string wf_only = "mappings = {\n  \"aion.wf.*.*\": \"" +
                              bus::WorkflowMapping(kSubjects, kPartitions).to + "\"\n}\n";
  NatsTestServer server(WithMappings(wf_only));
  TempDir dir("aion-prod-nats");
  ProcessResult r = RunWorker(server, dir.path() / "data");
  BOOST_CHECK_EQUAL(r.exit_code, 1);
  BOOST_CHECK_MESSAGE(Contains(r.err,
                               "aion-worker: nats-server does not map aion.req.* to "
                               "aion.api.<p>.*"),
                      r.err);
  BOOST_CHECK_MESSAGE(!Contains(r.err, "aion.wf.* to"), r.err);
  ExpectNothingStored(server);
}

// The server runs the fragment `aion nats-config` printed, server from its
// config as a deployment would; nats-server -t accepts that config too.
BOOST_AUTO_TEST_CASE(a_worker_starts_with_the_config_aion_nats_config_prints) {
  ProcessResult printed =
      RunProcess({BinaryPath("aion").string(), "nats-config", "--partitions", "16"}, 30s);
  BOOST_REQUIRE_EQUAL(printed.exit_code, 0);
  BOOST_CHECK_EQUAL(printed.out, bus::NatsMappingsConfig(kSubjects, kPartitions));
  TempDir conf_dir("aion-prod-nats-conf");
  std::ofstream(conf_dir.path() / "aion-mappings.conf") << printed.out;
  std::ofstream(conf_dir.path() / "test.conf")
      << "listen: 127.0.0.1:-1\njetstream {}\ninclude \"aion-mappings.conf\"\n";
  const char* nats_server = std::getenv("AION_NATS_SERVER");
  ProcessResult checked =
      RunProcess({nats_server != nullptr ? nats_server : "/usr/sbin/nats-server", "-t", "-c",
                  (conf_dir.path() / "test.conf").string()},
                 30s);
  BOOST_CHECK_MESSAGE(checked.exit_code == 0, checked.out + checked.err);

  // The same text as the mappings part of the server's config.
  NatsTestServer server(WithMappings(printed.out));
  auto client = server.Connect("client");
  TempDir dir("aion-prod-nats");
  auto worker = ReadyWorker(server, *client, dir.path() / "data");
  ExpectNothingStored(server);
  // The mapped subjects reach the worker: a start and its result.
  NatsCollector replies(*client, "test.replies");
  bus::Headers headers = kJsonHeaders;
  headers["Aion-Reply-To"] = "test.replies";
  JsPublish(*client, "aion.wf.prod-1.start", R"({"workflow_type":"noop","input":7})", headers);
  auto recorded = replies.Next(20s);  // recorded: `result` now knows the id
  BOOST_REQUIRE(recorded != nullptr);
  Json result = Json::parse(Request(*client, "aion.req.prod-1.result", "", true, 20s));
  BOOST_CHECK_MESSAGE(result["status"] == "completed", result.dump());
  BOOST_CHECK(worker->Terminate().ok());
}

BOOST_AUTO_TEST_CASE(one_worker_per_data_dir) {
  NatsTestServer server;
  auto client = server.Connect("client");
  TempDir dir("aion-prod-nats");
  const std::filesystem::path data = dir.path() / "data";
  auto first = ReadyWorker(server, *client, data);
  ProcessResult second = RunWorker(server, data);
  BOOST_CHECK_EQUAL(second.exit_code, 1);
  BOOST_CHECK_MESSAGE(Contains(second.err, "aion-worker: data dir '" + data.string() +
                                               "' is in use by another aion-worker (pid " +
                                               std::to_string(first->pid()) + ")"),
                      second.err);
  BOOST_CHECK(first->Alive());
  BOOST_CHECK(first->Terminate().ok());

  auto third = ReadyWorker(server, *client, data);  // free again after a clean stop
  third->Kill();                                    // SIGKILL: the kernel drops the lock
  auto fourth = ReadyWorker(server, *client, data);
  ProcessResult fifth = RunWorker(server, data);
  BOOST_CHECK_EQUAL(fifth.exit_code, 1);
  BOOST_CHECK_MESSAGE(Contains(fifth.err, "(pid " + std::to_string(fourth->pid()) + ")"),
                      fifth.err);
  BOOST_CHECK(fourth->Terminate().ok());
}

}  // namespace
}  // namespace aion::testing
