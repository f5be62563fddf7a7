// Signal-with-start and the id-reuse policies of a start, on an embedded
// Engine over a MemoryStore.
#define BOOST_TEST_MODULE start_policy_test
#include <boost/test/unit_test.hpp>
#include <chrono>

#include "aion/engine/engine.h"
#include "aion/engine/history.h"
#include "aion/engine/memory_store.h"

using namespace aion;
using namespace std::chrono_literals;
using Policy = IngressMessage::IdReusePolicy;

namespace {

// Collects "go" signals until one says "stop"; returns them all.
Task<Json> Collect(Context& ctx, Json) {
  Json got = Json::array();
  while (true) {
    Json s = co_await ctx.signal<Json>("go");
    got.push_back(s);
    if (s == "stop") co_return got;
  }
}

Task<Json> Fail(Context& ctx, Json) {
  throw std::runtime_error("always fails");
  co_return nullptr;
}

struct Fixture {
  Fixture() {
    BOOST_REQUIRE(registry.workflow("collect", &Collect).ok());
    BOOST_REQUIRE(registry.workflow("fail", &Fail).ok());
    auto e = Engine::Open({.store = &store, .registry = &registry});
    BOOST_REQUIRE(e.ok());
    engine = std::move(*e);
  }

  IngressOutcome SignalWithStart(const std::string& id, const Json& signal,
                                 const std::string& request_id = "") {
    IngressMessage m;
    m.kind = IngressMessage::Kind::kSignalWithStart;
    m.workflow_id = id;
    m.workflow_type = "collect";
    m.signal_name = "go";
    m.input = JsonPayload(nullptr);
    m.signal_input = JsonPayload(signal);
    m.request_id = request_id;
    m.dedupe_key = RequestDedupeKey("signal_with_start", id, request_id);
    return engine->Send(std::move(m));
  }

  IngressOutcome StartWith(const std::string& id, const std::string& type, Policy policy) {
    IngressMessage m;
    m.kind = IngressMessage::Kind::kStart;
    m.workflow_id = id;
    m.workflow_type = type;
    m.input = JsonPayload(nullptr);
    m.id_reuse_policy = policy;
    return engine->Send(std::move(m));
  }

  std::string Closed(const std::string& id) {
    auto done = engine->AwaitResult(id, 10s);
    BOOST_REQUIRE(done.ok());
    return WorkflowStatusName(done->status);
  }

  MemoryStore store;
  WorkflowRegistry registry;
  std::unique_ptr<Engine> engine;
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(signal_with_start_starts_then_signals_the_same_run, Fixture) {
  IngressOutcome first = SignalWithStart("sws-1", "a");
  BOOST_REQUIRE(first.status.ok());
  IngressOutcome second = SignalWithStart("sws-1", "stop");
  BOOST_REQUIRE(second.status.ok());
  BOOST_TEST(second.run_id == first.run_id);
  BOOST_TEST(Closed("sws-1") == "completed");
  auto out = engine->AwaitResult("sws-1", 1s);
  BOOST_TEST(*ParseJsonPayload(out->output) == Json::array({"a", "stop"}));
  // 1 WorkflowStarted, 2 SignalReceived(a), 3 SignalReceived(stop), 4 WorkflowCompleted
  auto history = engine->History("sws-1");
  BOOST_REQUIRE(history.ok());
  BOOST_TEST(history->size() == 4u);
  BOOST_TEST(DescribeEvent((*history)[1]) == "SignalReceived(name=go)");
}

BOOST_FIXTURE_TEST_CASE(signal_with_start_is_idempotent_by_request_id, Fixture) {
  BOOST_REQUIRE(SignalWithStart("sws-2", "a", "r-1").status.ok());
  IngressOutcome again = SignalWithStart("sws-2", "a", "r-1");
  BOOST_TEST(again.duplicate);
  auto history = engine->History("sws-2");
  BOOST_TEST(history->size() == 2u);  // Started, one SignalReceived
}

BOOST_FIXTURE_TEST_CASE(reject_duplicate_refuses_a_closed_id, Fixture) {
  BOOST_REQUIRE(SignalWithStart("r-1", "stop").status.ok());
  BOOST_REQUIRE(Closed("r-1") == "completed");
  BOOST_TEST(StartWith("r-1", "collect", Policy::kRejectDuplicate).status.code() ==
             StatusCode::kAlreadyStarted);
  BOOST_TEST(StartWith("r-1", "collect", Policy::kAllowDuplicateFailedOnly).status.code() ==
             StatusCode::kAlreadyStarted);
  BOOST_TEST(StartWith("r-1", "collect", Policy::kAllowDuplicate).status.ok());
}

BOOST_FIXTURE_TEST_CASE(allow_failed_only_reuses_a_failed_id, Fixture) {
  BOOST_REQUIRE(StartWith("f-1", "fail", Policy::kAllowDuplicate).status.ok());
  BOOST_REQUIRE(Closed("f-1") == "failed");
  BOOST_TEST(StartWith("f-1", "fail", Policy::kRejectDuplicate).status.code() ==
             StatusCode::kAlreadyStarted);
  BOOST_TEST(StartWith("f-1", "collect", Policy::kAllowDuplicateFailedOnly).status.ok());
}
