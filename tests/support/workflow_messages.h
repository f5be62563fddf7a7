// Outbox rows of KIND_WORKFLOW_MESSAGE as the engine's writer commits them
// (a parent's start, cancel and terminate of a child; a child's result), and
// a Boost.Test check that two IngressMessages are the same. Header-only;
// include it after <boost/test/unit_test.hpp>.
#pragma once

#include <google/protobuf/util/message_differencer.h>

#include <string>

#include "aion/engine/engine.h"
#include "aion/engine/payload.h"

namespace aion::testing {

using MessageKind = records::WorkflowMessageRow::Kind;

// The parent "parent-1" (run "run-p") and its child "parent-1-1" (ref "c1").
inline history::ParentRef SampleParent() {
  history::ParentRef parent;
  parent.set_workflow_id("parent-1");
  parent.set_run_id("run-p");
  parent.set_child_ref("c1");
  return parent;
}

// A row of `kind`: starts, cancels and terminates go to the child, results
// to the parent; request ids and keys are deterministic like the writer's.
inline OutboxRow WorkflowMessageRow(MessageKind kind) {
  const history::ParentRef parent = SampleParent();
  OutboxRow row;
  row.set_key("0000000000000000000" + std::to_string(static_cast<int>(kind)));  // a position
  row.set_msg_id("parent-1/0000000000000000000" + std::to_string(static_cast<int>(kind)));
  row.set_kind(OutboxRow::KIND_WORKFLOW_MESSAGE);
  row.set_workflow_id(parent.workflow_id());
  auto* m = row.mutable_message();
  m->set_kind(kind);
  m->set_workflow_id("parent-1-1");
  m->set_request_id("parent-1:run-p:c1:" + std::to_string(static_cast<int>(kind)));
  *m->mutable_parent() = parent;
  switch (kind) {
    case records::WorkflowMessageRow::KIND_START:
      m->set_workflow_type("noop");
      *m->mutable_input() = JsonPayload(Json::parse(R"({"n":1,"tags":["x",true,null],"f":2.5})"));
      m->set_run_timeout_us(30'000'000);
      break;
    case records::WorkflowMessageRow::KIND_CANCEL:
    case records::WorkflowMessageRow::KIND_TERMINATE:
      m->set_reason("parent closed");
      break;
    case records::WorkflowMessageRow::KIND_CHILD_RESULT: {
      m->set_workflow_id(parent.workflow_id());
      auto* r = m->mutable_result();
      r->set_child_ref(parent.child_ref());
      r->set_workflow_id("parent-1-1");
      r->set_run_id("run-c");
      r->set_status(history::CHILD_STATUS_COMPLETED);
      *r->mutable_output() = JsonPayload(Json{{"done", true}});
      break;
    }
    default:
      break;
  }
  return row;
}

inline bool SameMessage(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

// Every field of IngressMessage, so a field the codec forgets shows up.
inline void CheckSameIngress(const IngressMessage& got, const IngressMessage& want) {
  BOOST_TEST((got.kind == want.kind));
  BOOST_TEST(got.workflow_id == want.workflow_id);
  BOOST_TEST(got.dedupe_key == want.dedupe_key);
  BOOST_TEST(got.workflow_type == want.workflow_type);
  BOOST_TEST(got.signal_name == want.signal_name);
  BOOST_TEST(SameMessage(got.input, want.input), got.input.data() << " vs " << want.input.data());
  BOOST_TEST(SameMessage(got.signal_input, want.signal_input));
  BOOST_TEST((got.id_reuse_policy == want.id_reuse_policy));
  BOOST_TEST(got.request_id == want.request_id);
  BOOST_TEST(got.run_timeout_us == want.run_timeout_us);
  BOOST_TEST(got.reason == want.reason);
  BOOST_TEST(got.run_id == want.run_id);
  BOOST_TEST(got.activity_id == want.activity_id);
  BOOST_TEST(got.attempt == want.attempt);
  BOOST_TEST(got.activity_failed == want.activity_failed);
  BOOST_TEST(SameMessage(got.failure, want.failure));
  BOOST_TEST(SameMessage(got.parent, want.parent), got.parent.ShortDebugString());
  BOOST_TEST(SameMessage(got.child_result, want.child_result), got.child_result.ShortDebugString());
}

}  // namespace aion::testing
