// Subjects: building and parsing every subject of the wire contract.
#define BOOST_TEST_MODULE subjects
#include "aion/bus/subjects.h"

#include <boost/test/unit_test.hpp>

#include "aion/bus/mapping_check.h"
#include "aion/bus/nats_mappings.h"
#include "aion/engine/ids.h"

namespace aion::bus {
namespace {

BOOST_AUTO_TEST_CASE(builds_every_subject_with_the_default_prefix) {
  Subjects s;
  BOOST_TEST(s.Workflow("order-42", IngressKind::kStart) == "aion.wf.order-42.start");
  BOOST_TEST(s.Inbox(7, "order-42", IngressKind::kSignal) == "aion.in.7.order-42.signal");
  BOOST_TEST(s.InboxAll() == "aion.in.>");
  BOOST_TEST(s.InboxFilter(3) == "aion.in.3.>");
  BOOST_TEST(s.Event("order", "order-42", "completed") == "aion.evt.order.order-42.completed");
  BOOST_TEST(s.EventsAll() == "aion.evt.>");
  BOOST_TEST(s.Request("order-42", ApiOp::kResult) == "aion.req.order-42.result");
  BOOST_TEST(s.Api(15, "order-42", ApiOp::kDescribe) == "aion.api.15.order-42.describe");
  BOOST_TEST(s.ApiFilter(2) == "aion.api.2.*.*");
  BOOST_TEST(s.Dlq("start") == "aion.dlq.start");
  BOOST_TEST(s.DlqAll() == "aion.dlq.>");
}

BOOST_AUTO_TEST_CASE(builds_and_parses_activity_subjects) {
  Subjects s;
  BOOST_TEST(s.Task("echo") == "aion.task.echo");
  BOOST_TEST(s.TasksAll() == "aion.task.*");
  BOOST_TEST(s.TaskCancel("echo") == "aion.task.echo.cancel");
  BOOST_TEST(s.ActivityResult("order-42") == "aion.wf.order-42.activity_result");
  BOOST_TEST(s.Heartbeat("order-42") == "aion.req.order-42.heartbeat");
  auto queue = s.ParseTask("aion.task.echo");
  BOOST_REQUIRE(queue.ok());
  BOOST_TEST(*queue == "echo");
  // A cancel note is not a task subject: AION_TASKS (aion.task.*) does not store it.
  BOOST_TEST((s.ParseTask(s.TaskCancel("echo")).status().code() == StatusCode::kInvalidArgument));
  BOOST_TEST(!s.ParseTask("aion.task.bad%queue").ok());
  BOOST_TEST(!s.ParseTask("aion.evt.echo").ok());
  Subjects acme("acme");
  BOOST_TEST(acme.Task("q") == "acme.task.q");
  BOOST_TEST(acme.TaskCancel("q") == "acme.task.q.cancel");
  BOOST_TEST(acme.ActivityResult("w") == "acme.wf.w.activity_result");
  BOOST_TEST(acme.Heartbeat("w") == "acme.req.w.heartbeat");
}

BOOST_AUTO_TEST_CASE(a_custom_prefix_may_have_several_tokens) {
  Subjects s("acme.prod");
  BOOST_TEST(s.Workflow("x", IngressKind::kCancel) == "acme.prod.wf.x.cancel");
  auto parsed = s.ParseInbox("acme.prod.in.4.x:1.activity_result");
  BOOST_REQUIRE(parsed.ok());
  BOOST_TEST(parsed->partition == 4u);
  BOOST_TEST(parsed->workflow_id == "x:1");
  BOOST_TEST((parsed->kind == IngressKind::kActivityResult));
  BOOST_TEST(!s.ParseInbox("aion.in.4.x.start").ok());
}

BOOST_AUTO_TEST_CASE(parses_what_it_builds) {
  Subjects s;
  for (IngressKind k : {IngressKind::kStart, IngressKind::kSignal, IngressKind::kSignalWithStart,
                        IngressKind::kCancel, IngressKind::kTerminate, IngressKind::kActivityResult,
                        IngressKind::kChildResult}) {
    auto wf = s.ParseWorkflow(s.Workflow("a_b=c@d+e-f", k));
    BOOST_REQUIRE(wf.ok());
    BOOST_TEST(wf->workflow_id == "a_b=c@d+e-f");
    BOOST_TEST((wf->kind == k));
    auto in = s.ParseInbox(s.Inbox(12, "id", k));
    BOOST_REQUIRE(in.ok());
    BOOST_TEST(in->partition == 12u);
    BOOST_TEST((in->kind == k));
  }
  for (ApiOp op :
       {ApiOp::kDescribe, ApiOp::kHistory, ApiOp::kQuery, ApiOp::kResult, ApiOp::kHeartbeat}) {
    auto req = s.ParseRequest(s.Request("id", op));
    BOOST_REQUIRE(req.ok());
    BOOST_TEST((req->op == op));
    auto api = s.ParseApi(s.Api(0, "id", op));
    BOOST_REQUIRE(api.ok());
    BOOST_TEST((api->op == op));
    BOOST_TEST(api->workflow_id == "id");
  }
  auto evt = s.ParseEvent("aion.evt.noop.w-1.started");
  BOOST_REQUIRE(evt.ok());
  BOOST_TEST(evt->workflow_type == "noop");
  BOOST_TEST(evt->workflow_id == "w-1");
  BOOST_TEST(evt->event == "started");
}

void ExpectInvalid(const Status& status, const std::string& fragment) {
  BOOST_TEST_CONTEXT("status: " << status.ToString()) {
    BOOST_TEST((status.code() == StatusCode::kInvalidArgument));
    BOOST_TEST(status.message().find(fragment) != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(rejects_malformed_subjects_with_a_clear_message) {
  Subjects s;
  ExpectInvalid(s.ParseInbox("other.in.1.x.start").status(), "does not start with 'aion.in.'");
  ExpectInvalid(s.ParseInbox("aion.in.1.x").status(), "has 2 tokens");
  ExpectInvalid(s.ParseInbox("aion.in.1.x.y.start").status(), "has 4 tokens");
  ExpectInvalid(s.ParseInbox("aion.in.one.x.start").status(), "not a decimal number");
  ExpectInvalid(s.ParseInbox("aion.in.01.x.start").status(), "not a decimal number");
  ExpectInvalid(s.ParseInbox("aion.in.-1.x.start").status(), "not a decimal number");
  ExpectInvalid(s.ParseInbox("aion.in.99999999999.x.start").status(), "not a decimal number");
  ExpectInvalid(s.ParseInbox("aion.in.1.x%y.start").status(), "invalid character");
  ExpectInvalid(s.ParseInbox("aion.in.1..start").status(), "workflow id is empty");
  ExpectInvalid(s.ParseInbox("aion.in.1." + std::string(129, 'a') + ".start").status(),
                "longer than 128");
  ExpectInvalid(s.ParseInbox("aion.in.1.x.launch").status(), "unknown ingress kind 'launch'");
  ExpectInvalid(s.ParseWorkflow("aion.wf.x.Start").status(), "unknown ingress kind");
  ExpectInvalid(s.ParseApi("aion.api.1.x.delete").status(), "unknown operation 'delete'");
  ExpectInvalid(s.ParseRequest("aion.req.x").status(), "has 1 tokens");
  ExpectInvalid(s.ParseEvent("aion.evt.t.x.").status(), "event is empty");
}

BOOST_AUTO_TEST_CASE(validates_prefixes) {
  BOOST_TEST(ValidatePrefix("aion").ok());
  BOOST_TEST(ValidatePrefix("acme.prod-1").ok());
  ExpectInvalid(ValidatePrefix(""), "empty token");
  ExpectInvalid(ValidatePrefix("a..b"), "empty token");
  ExpectInvalid(ValidatePrefix("a.*"), "may contain only");
  ExpectInvalid(ValidatePrefix("a b"), "may contain only");
}

BOOST_AUTO_TEST_CASE(kind_and_op_names_round_trip) {
  BOOST_TEST(IngressKindName(IngressKind::kSignalWithStart) == "signal_with_start");
  BOOST_TEST((*ParseIngressKind("terminate") == IngressKind::kTerminate));
  BOOST_TEST(IngressKindName(IngressKind::kChildResult) == "child_result");
  BOOST_TEST((*ParseIngressKind("child_result") == IngressKind::kChildResult));
  ExpectInvalid(ParseIngressKind("child-result").status(), "activity_result or child_result");
  BOOST_TEST(ApiOpName(ApiOp::kHeartbeat) == "heartbeat");
  BOOST_TEST((*ParseApiOp("history") == ApiOp::kHistory));
  BOOST_TEST(!ParseApiOp("").ok());
}

// Engine-to-engine messages go straight to the addressee's partition.
BOOST_AUTO_TEST_CASE(child_results_have_wf_and_inbox_subjects_of_the_partition_of_the_id) {
  Subjects s;
  BOOST_TEST(s.Workflow("parent-1", IngressKind::kChildResult) == "aion.wf.parent-1.child_result");
  for (std::uint32_t partitions : {1u, 7u, 16u}) {
    const std::string subject = s.InboxOf("parent-1", IngressKind::kChildResult, partitions);
    BOOST_TEST(subject == "aion.in." + std::to_string(PartitionOf("parent-1", partitions)) +
                              ".parent-1.child_result");
    auto parsed = s.ParseInbox(subject);
    BOOST_REQUIRE(parsed.ok());
    BOOST_TEST(parsed->partition == PartitionOf("parent-1", partitions));
    BOOST_TEST((parsed->kind == IngressKind::kChildResult));
  }
  BOOST_TEST(Subjects("acme").InboxOf("c", IngressKind::kStart, 1) == "acme.in.0.c.start");
}

BOOST_AUTO_TEST_CASE(list_is_one_subject_outside_the_per_partition_api_filters) {
  BOOST_TEST(Subjects().List() == "aion.api.list");
  BOOST_TEST(Subjects("acme.prod").List() == "acme.prod.api.list");
  BOOST_TEST(!Subjects().ParseApi("aion.api.list").ok());  // never taken for aion.api.<p>.<id>.<op>
  BOOST_TEST(Subjects().ApiFilter(3) == "aion.api.3.*.*");
  BOOST_TEST(ApiOpName(ApiOp::kQuery) == "query");
}

BOOST_AUTO_TEST_CASE(mappings_name_the_partitioned_subjects) {
  const Subjects s("acme");
  BOOST_TEST(WorkflowMapping(s, 4).from == "acme.wf.*.*");
  BOOST_TEST(WorkflowMapping(s, 4).to ==
             "acme.in.{{partition(4,1)}}.{{wildcard(1)}}.{{wildcard(2)}}");
  BOOST_TEST(RequestMapping(s, 4).from == "acme.req.*.*");
  BOOST_TEST(RequestMapping(s, 4).to ==
             "acme.api.{{partition(4,1)}}.{{wildcard(1)}}.{{wildcard(2)}}");
}

// The startup check finds every other partition count a mapping may use.
BOOST_AUTO_TEST_CASE(mapping_probes_tell_every_other_partition_count_apart) {
  for (std::uint32_t p : {1u, 2u, 16u, 17u, 1024u, 4096u}) {
    const auto ids = MappingProbeIds("0123456789ab", p);
    BOOST_TEST(ids.size() >= 4u);
    BOOST_TEST(ids.size() < 64u);
    for (const auto& id : ids) BOOST_TEST(ValidateWorkflowId(id).ok());
    for (std::uint32_t n = 1; n <= kMaxMappingPartitions; ++n) {
      if (n == p) continue;
      bool told = false;
      for (const auto& id : ids) told = told || Fnv1a32(id) % n != Fnv1a32(id) % p;
      if (!told) BOOST_FAIL("P = " << p << ": no probe tells " << n << " apart");
    }
  }
}

}  // namespace
}  // namespace aion::bus
