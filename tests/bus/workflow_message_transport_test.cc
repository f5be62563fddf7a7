// Workflow messages (a parent's start, cancel and terminate of a child; a
// child's result to its parent) through a real nats-server: the outbox sink
// puts each on its addressee's partition subject with the row's key as
// Nats-Msg-Id, and what the stream holds decodes at the addressee into what
// the engine delivers to itself without NATS (IngressOfWorkflowMessage).
#define BOOST_TEST_MODULE workflow_message_transport
#include <boost/test/unit_test.hpp>
#include <chrono>

#include "aion/bus/codec.h"
#include "aion/bus/outbox_publisher.h"
#include "aion/bus/streams.h"
#include "aion/engine/ids.h"
#include "support/nats_pipeline.h"
#include "support/nats_test_server.h"
#include "support/wait.h"
#include "support/workflow_messages.h"

namespace aion::testing {
namespace {

using namespace std::chrono_literals;
using Row = records::WorkflowMessageRow;

constexpr Row::Kind kMessageKinds[] = {Row::KIND_START, Row::KIND_CANCEL, Row::KIND_TERMINATE,
                                       Row::KIND_CHILD_RESULT};

std::uint64_t StreamMessages(bus::NatsConnection& conn, const char* name) {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  BOOST_REQUIRE(js_GetStreamInfo(&si, conn.js(), name, nullptr, &jerr) == NATS_OK);
  const std::uint64_t n = si->State.Msgs;
  jsStreamInfo_Destroy(si);
  return n;
}

// The last message AION_IN stores on `subject`, as the ingress sees it.
bus::WireMessage StoredInbox(bus::NatsConnection& conn, const std::string& subject) {
  natsMsg* raw = nullptr;
  BOOST_REQUIRE_MESSAGE(
      js_GetLastMsg(&raw, conn.js(), "AION_IN", subject.c_str(), nullptr, nullptr) == NATS_OK,
      "nothing stored on " << subject);
  NatsMsgPtr msg(raw);
  bus::WireMessage wire{natsMsg_GetSubject(msg.get()), {}, Body(msg.get())};
  const char* msg_id = nullptr;
  if (natsMsgHeader_Get(msg.get(), "Nats-Msg-Id", &msg_id) == NATS_OK) {
    wire.headers.emplace("Nats-Msg-Id", msg_id);
  }
  return wire;
}

std::unique_ptr<bus::NatsConnection> QuickConnect(const NatsTestServer& server) {
  bus::NatsConnectionOptions options;
  options.url = server.url();
  options.jetstream_timeout = 1s;
  auto conn = bus::NatsConnection::Connect(options);
  BOOST_REQUIRE(conn.ok());
  return std::move(*conn);
}

std::string SubjectKind(Row::Kind kind) {
  switch (kind) {
    case Row::KIND_START:
      return "start";
    case Row::KIND_CANCEL:
      return "cancel";
    case Row::KIND_TERMINATE:
      return "terminate";
    default:
      return "child_result";
  }
}

void CheckRoundTrip(std::uint32_t partitions) {
  NatsTestServer server(partitions);
  auto conn = server.Connect();
  bus::Subjects subjects;
  auto streams = bus::EnsureStreams(*conn, subjects, {.partitions = partitions});
  BOOST_REQUIRE_MESSAGE(streams.ok(), streams.status().ToString());
  bus::NatsOutboxSink sink(*conn, subjects, partitions);
  const bus::Codec codec(subjects, bus::CodecOptions{.partitions = partitions});
  for (Row::Kind kind : kMessageKinds) {
    BOOST_TEST_CONTEXT("P " << partitions << ", message kind " << Row::Kind_Name(kind)) {
      const OutboxRow row = WorkflowMessageRow(kind);
      BOOST_TEST(sink.Publish(row).ok());
      BOOST_TEST(sink.Publish(row).ok());  // republished after a crash: stored once
      const std::string& addressee = row.message().workflow_id();
      const std::string subject = "aion.in." + std::to_string(PartitionOf(addressee, partitions)) +
                                  "." + addressee + "." + SubjectKind(kind);
      const bus::WireMessage stored = StoredInbox(*conn, subject);
      BOOST_TEST(bus::HeaderValue(stored.headers, "Nats-Msg-Id") == row.msg_id());
      auto decoded = codec.DecodeIngress(stored, 1, streams->in_epoch);
      BOOST_REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
      CheckSameIngress(*decoded, IngressOfWorkflowMessage(row.message()));
    }
  }
  BOOST_TEST(StreamMessages(*conn, "AION_IN") == 4u);
}

BOOST_AUTO_TEST_CASE(each_message_lands_on_its_addressees_partition_and_decodes_as_delivered) {
  CheckRoundTrip(16);
  CheckRoundTrip(7);
}

BOOST_AUTO_TEST_CASE(messages_that_can_never_be_delivered_do_not_block_the_outbox) {
  NatsTestServer server;
  auto conn = QuickConnect(server);
  bus::Subjects subjects;
  BOOST_REQUIRE(bus::EnsureStreams(*conn, subjects, {}).ok());
  bus::NatsOutboxSink sink(*conn, subjects, 16);

  OutboxRow malformed = WorkflowMessageRow(Row::KIND_CHILD_RESULT);
  malformed.mutable_message()->mutable_result()->set_child_ref("other");
  BOOST_TEST(sink.Publish(malformed).ok());  // logged and dropped
  OutboxRow huge = WorkflowMessageRow(Row::KIND_START);
  const std::string big(static_cast<std::size_t>(conn->max_payload()) + 1024, 'x');
  *huge.mutable_message()->mutable_input() = JsonPayload(Json(big));
  BOOST_TEST(sink.Publish(huge).ok());  // could never be stored: dropped too
  BOOST_TEST(StreamMessages(*conn, "AION_IN") == 0u);

  BOOST_REQUIRE(server.process().Stop().ok());
  const OutboxRow start = WorkflowMessageRow(Row::KIND_START);
  Status down = sink.Publish(start);
  BOOST_TEST((down.code() == StatusCode::kUnavailable), down.ToString());  // kept and retried
  BOOST_REQUIRE(server.process().Restart().ok());
  BOOST_TEST(WaitFor([&] { return sink.Publish(start).ok(); }));
  BOOST_TEST(StreamMessages(*conn, "AION_IN") == 1u);
}

// A client may address child_result through the server's aion.wf mapping;
// a malformed one is dead-lettered under its own kind, like any input.
BOOST_AUTO_TEST_CASE(malformed_child_results_are_dead_lettered_as_child_result) {
  NatsTestServer server;
  NatsPipeline pipeline(server.url());
  auto client = server.Connect("client");
  NatsCollector dlq(*client, "aion.dlq.>");
  JsPublish(*client, "aion.wf.parent-1.child_result",
            R"({"parent":{"workflow_id":"parent-1","run_id":"run-p","child_ref":"c1"},)"
            R"("result":{"child_ref":"c2","workflow_id":"kid","status":"CHILD_STATUS_COMPLETED"}})",
            kJsonHeaders);
  auto msg = dlq.Next();
  BOOST_REQUIRE_MESSAGE(msg != nullptr, "no dead letter arrived");
  BOOST_TEST(std::string(natsMsg_GetSubject(msg.get())) == "aion.dlq.child_result");
  wire::DeadLetter letter;
  BOOST_REQUIRE(letter.ParseFromString(Body(msg.get())));
  BOOST_TEST(letter.kind() == "child_result");
  BOOST_TEST(letter.code() == "invalid_argument");
  BOOST_TEST(letter.reason().find("result.child_ref 'c2' differs from parent.child_ref 'c1'") !=
             std::string::npos);
  BOOST_TEST(letter.subject() ==
             "aion.in." + std::to_string(PartitionOf("parent-1", 16)) + ".parent-1.child_result");
  BOOST_TEST(WaitFor([&] { return StreamMessages(*client, "AION_IN") == 0; }));  // terminated
}

}  // namespace
}  // namespace aion::testing
