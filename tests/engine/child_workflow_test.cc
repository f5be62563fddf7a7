// Child workflows on an embedded Engine (no outbox sink: messages between
// parent and child are delivered by the engine itself) with a ManualClock:
// start and await, failures, refused starts, parent-close policies, cancel
// from code and by the parent's cancellation, termination, continue-as-new
// of a child, and a restart of the engine with children in flight.
#define BOOST_TEST_MODULE child_workflow_test
#include <boost/test/unit_test.hpp>
#include <chrono>

#include "aion/engine/engine.h"
#include "aion/engine/history.h"
#include "aion/engine/memory_store.h"
#include "event_names.h"
#include "support/wait.h"

using namespace aion;
using namespace std::chrono_literals;
using aion::testing::WaitFor;

namespace {

Task<Json> Double(Context& ctx, Json n) { co_return n.get<int>() * 2; }

Task<Json> Boom(Context& ctx, Json) {
  throw std::runtime_error("boom");
  co_return nullptr;
}

// Waits for the signal "go" and returns its input.
Task<Json> Waiter(Context& ctx, Json) {
  Json got = co_await ctx.signal<Json>("go");
  co_return got;
}

// Continues as new once, then returns "second run".
Task<Json> Twice(Context& ctx, Json n) {
  if (n.get<int>() == 0) ctx.continue_as_new(1);
  co_return "second run";
}

// Starts two `double` children (ids <id>-a, <id>-b) and returns the sum.
Task<Json> SumOfDoubles(Context& ctx, Json) {
  ChildOptions a_options{.workflow_id = ctx.workflow_id() + "-a"};
  ChildOptions b_options{.workflow_id = ctx.workflow_id() + "-b"};
  auto a = ctx.child<Json>("double", Json(2), a_options);
  auto b = ctx.child<Json>("double", Json(5), b_options);
  co_await ctx.all(a, b);
  Json ra = co_await a;
  Json rb = co_await b;
  co_return ra.get<int>() + rb.get<int>();
}

// Starts a child of the type and id given in its input, awaits it and
// returns how it ended.
Task<Json> AwaitOne(Context& ctx, Json in) {
  ChildOptions options{.workflow_id = in.value("id", std::string())};
  auto child =
      ctx.child<Json>(in.at("type").get<std::string>(), in.value("input", Json()), options);
  try {
    Json out = co_await child;
    co_return Json{{"completed", out}};
  } catch (const ChildWorkflowFailedError& e) {
    co_return Json{{"status", e.status()}, {"id", e.workflow_id()}, {"message", e.what()}};
  }
}

// Starts an uncaught failing child: the parent fails with it.
Task<Json> FailsWithChild(Context& ctx, Json) {
  auto child = ctx.child<Json>("boom", Json(nullptr));
  Json out = co_await child;
  co_return out;
}

// Starts three waiting children with the three policies and ends without
// awaiting them once the signal "finish" arrives.
Task<Json> LeavesChildren(Context& ctx, Json) {
  const std::string id = ctx.workflow_id();
  ChildOptions terminate{.workflow_id = id + "-t"};
  ChildOptions cancel{.workflow_id = id + "-c",
                      .parent_close_policy = ParentClosePolicy::kRequestCancel};
  ChildOptions abandon{.workflow_id = id + "-a",
                       .parent_close_policy = ParentClosePolicy::kAbandon};
  ctx.child<Json>("waiter", Json(nullptr), terminate);
  ctx.child<Json>("waiter", Json(nullptr), cancel);
  ctx.child<Json>("waiter", Json(nullptr), abandon);
  co_await ctx.signal<Json>("finish");
  co_return "done";
}

// A waiting child races a 1 s timer; the losing child is cancelled.
Task<Json> ChildOrDeadline(Context& ctx, Json) {
  ChildOptions options{.workflow_id = ctx.workflow_id() + "-slow"};
  auto slow = ctx.child<Json>("waiter", Json(nullptr), options);
  Timer deadline = ctx.timer("deadline", 1s);
  const std::size_t winner = co_await ctx.first(slow, deadline);
  co_return winner;
}

// Awaits a waiting child; a cancel of the parent cancels the child.
Task<Json> AwaitsWaiter(Context& ctx, Json) {
  ChildOptions options{.workflow_id = ctx.workflow_id() + "-w"};
  auto child = ctx.child<Json>("waiter", Json(nullptr), options);
  Json out = co_await child;
  co_return out;
}

struct Fixture {
  Fixture() {
    BOOST_REQUIRE(registry.workflow("double", &Double).ok());
    BOOST_REQUIRE(registry.workflow("boom", &Boom).ok());
    BOOST_REQUIRE(registry.workflow("waiter", &Waiter).ok());
    BOOST_REQUIRE(registry.workflow("twice", &Twice).ok());
    BOOST_REQUIRE(registry.workflow("sum_of_doubles", &SumOfDoubles).ok());
    BOOST_REQUIRE(registry.workflow("await_one", &AwaitOne).ok());
    BOOST_REQUIRE(registry.workflow("fails_with_child", &FailsWithChild).ok());
    BOOST_REQUIRE(registry.workflow("leaves_children", &LeavesChildren).ok());
    BOOST_REQUIRE(registry.workflow("child_or_deadline", &ChildOrDeadline).ok());
    BOOST_REQUIRE(registry.workflow("awaits_waiter", &AwaitsWaiter).ok());
    Open();
  }

  void Open() {
    auto e = Engine::Open({.store = &store, .registry = &registry, .clock = &clock});
    BOOST_REQUIRE(e.ok());
    engine = std::move(*e);
  }

  Outcome Closed(const std::string& id) {
    auto done = engine->AwaitResult(id, 10s);
    BOOST_REQUIRE_MESSAGE(done.ok(), id + ": " + done.status().ToString());
    return *done;
  }

  Json Result(const std::string& id) {
    const Outcome o = Closed(id);
    BOOST_REQUIRE_EQUAL(WorkflowStatusName(o.status), "completed");
    return *ParseJsonPayload(o.output);
  }

  std::string Status(const std::string& id) {
    auto d = engine->Describe(id);
    return d.ok() ? WorkflowStatusName(d->record.status()) : d.status().ToString();
  }

  std::vector<std::string> Events(const std::string& id) {
    return aion::testing::EventNames(*engine, id);
  }
  bool Has(const std::string& id, const std::string& event) {
    return aion::testing::HasEvent(*engine, id, event);
  }

  void Start(const std::string& id, const std::string& type, Json input = nullptr) {
    BOOST_REQUIRE(engine->Start(id, type, JsonPayload(input)).status.ok());
  }

  MemoryStore store;
  ManualClock clock;
  WorkflowRegistry registry;
  std::unique_ptr<Engine> engine;
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(parent_awaits_the_results_of_its_children, Fixture) {
  Start("p-1", "sum_of_doubles");
  BOOST_TEST(Result("p-1") == 14);
  // 1 WorkflowStarted, 2-3 ChildWorkflowScheduled (refs 1, 2), 4-5
  // ChildWorkflowClosed (either order), 6 WorkflowCompleted
  const auto events = Events("p-1");
  BOOST_REQUIRE_EQUAL(events.size(), 6u);
  BOOST_TEST(events[1] == "ChildWorkflowScheduled(ref=1, id=p-1-a, type=double)");
  BOOST_TEST(events[2] == "ChildWorkflowScheduled(ref=2, id=p-1-b, type=double)");
  BOOST_TEST(Has("p-1", "ChildWorkflowClosed(ref=1, status=completed)"));
  BOOST_TEST(Has("p-1", "ChildWorkflowClosed(ref=2, status=completed)"));
  BOOST_TEST(Result("p-1-a") == 4);
  // The child's start names its parent.
  auto child = engine->History("p-1-b");
  BOOST_REQUIRE(child.ok());
  const auto& parent = child->front().workflow_started().parent();
  BOOST_TEST(parent.workflow_id() == "p-1");
  BOOST_TEST(parent.run_id() == Closed("p-1").run_id);
  BOOST_TEST(parent.child_ref() == "2");
  BOOST_TEST(engine->Describe("p-1")->record.children_size() == 0);
}

BOOST_FIXTURE_TEST_CASE(a_failed_child_raises_in_its_parent, Fixture) {
  Start("p-2", "await_one", Json{{"type", "boom"}, {"id", "p-2-boom"}});
  const Json r = Result("p-2");
  BOOST_TEST(r.at("status") == "failed");
  BOOST_TEST(r.at("id") == "p-2-boom");
  BOOST_TEST(r.at("message").get<std::string>().find("boom") != std::string::npos);

  Start("p-3", "fails_with_child");
  const Outcome o = Closed("p-3");
  BOOST_TEST(WorkflowStatusName(o.status) == "failed");
  auto history = engine->History("p-3");
  BOOST_TEST(history->back().workflow_failed().error_type() == "ChildWorkflowFailed:failed");
}

BOOST_FIXTURE_TEST_CASE(a_refused_start_reaches_the_parent_as_start_failed, Fixture) {
  Start("taken", "waiter");
  const std::string taken_run = engine->Describe("taken")->record.run_id();
  Start("p-4", "await_one", Json{{"type", "double"}, {"id", "taken"}, {"input", 1}});
  const Json r = Result("p-4");
  BOOST_TEST(r.at("status") == "start_failed");
  BOOST_TEST(r.at("message").get<std::string>().find("already running") != std::string::npos);
  // The running workflow is untouched.
  BOOST_TEST(engine->Describe("taken")->record.run_id() == taken_run);
  BOOST_TEST(!engine->Describe("taken")->record.has_parent());

  Start("p-5", "await_one", Json{{"type", "no_such_type"}, {"id", "p-5-x"}});
  BOOST_TEST(Result("p-5").at("status") == "start_failed");
  BOOST_TEST(engine->Describe("p-5-x").status().code() == StatusCode::kNotFound);
}

BOOST_FIXTURE_TEST_CASE(parent_close_policies_terminate_cancel_or_abandon, Fixture) {
  Start("p-6", "leaves_children");
  BOOST_REQUIRE(WaitFor([&] { return Status("p-6-a") == "running"; }));
  BOOST_REQUIRE(WaitFor([&] { return Status("p-6-t") == "running"; }));
  BOOST_REQUIRE(WaitFor([&] { return Status("p-6-c") == "running"; }));
  BOOST_REQUIRE_EQUAL(engine->Describe("p-6")->record.children_size(), 3);
  BOOST_REQUIRE(engine->Signal("p-6", "finish", JsonPayload(nullptr)).status.ok());
  BOOST_TEST(Result("p-6") == "done");

  const Outcome t = Closed("p-6-t");
  BOOST_TEST(WorkflowStatusName(t.status) == "terminated");
  BOOST_TEST(t.failure == "parent workflow 'p-6' closed (completed)");
  BOOST_TEST(WorkflowStatusName(Closed("p-6-c").status) == "cancelled");
  BOOST_TEST(Status("p-6-a") == "running");

  // The abandoned child completes later; its parent's closed run drops the result.
  const std::size_t parent_events = Events("p-6").size();
  BOOST_REQUIRE(engine->Signal("p-6-a", "go", JsonPayload("late")).status.ok());
  BOOST_TEST(Result("p-6-a") == "late");
  BOOST_REQUIRE(WaitFor([&] { return store.ReadOutbox("", 10)->empty(); }));
  BOOST_TEST(Events("p-6").size() == parent_events);
}

BOOST_FIXTURE_TEST_CASE(a_losing_child_is_cancelled, Fixture) {
  Start("p-7", "child_or_deadline");
  BOOST_REQUIRE(WaitFor([&] { return Status("p-7-slow") == "running"; }));
  clock.Advance(2s);
  BOOST_TEST(Result("p-7") == 1);
  BOOST_TEST(Has("p-7", "ChildWorkflowCancelRequested(ref=1)"));
  const Outcome child = Closed("p-7-slow");
  BOOST_TEST(WorkflowStatusName(child.status) == "cancelled");
  // The child's close after the cancel is dropped, not recorded.
  BOOST_REQUIRE(WaitFor([&] { return store.ReadOutbox("", 10)->empty(); }));
  BOOST_TEST(!Has("p-7", "ChildWorkflowClosed(ref=1, status=cancelled)"));
}

BOOST_FIXTURE_TEST_CASE(cancelling_the_parent_cancels_the_awaited_child, Fixture) {
  Start("p-8", "awaits_waiter");
  BOOST_REQUIRE(WaitFor([&] { return Status("p-8-w") == "running"; }));
  IngressMessage cancel;
  cancel.kind = IngressMessage::Kind::kCancel;
  cancel.workflow_id = "p-8";
  cancel.reason = "user";
  BOOST_REQUIRE(engine->Send(cancel).status.ok());
  BOOST_TEST(WorkflowStatusName(Closed("p-8").status) == "cancelled");
  BOOST_TEST(WorkflowStatusName(Closed("p-8-w").status) == "cancelled");
  BOOST_TEST(Has("p-8", "ChildWorkflowCancelRequested(ref=1)"));
}

BOOST_FIXTURE_TEST_CASE(terminating_the_parent_terminates_the_child, Fixture) {
  Start("p-9", "awaits_waiter");
  BOOST_REQUIRE(WaitFor([&] { return Status("p-9-w") == "running"; }));
  IngressMessage terminate;
  terminate.kind = IngressMessage::Kind::kTerminate;
  terminate.workflow_id = "p-9";
  terminate.reason = "ops";
  BOOST_REQUIRE(engine->Send(terminate).status.ok());
  BOOST_TEST(WorkflowStatusName(Closed("p-9").status) == "terminated");
  const Outcome child = Closed("p-9-w");
  BOOST_TEST(WorkflowStatusName(child.status) == "terminated");
  BOOST_TEST(child.failure == "parent workflow 'p-9' closed (terminated)");
}

BOOST_FIXTURE_TEST_CASE(a_parent_cannot_terminate_a_run_it_did_not_start, Fixture) {
  Start("stranger", "waiter");
  IngressMessage terminate;
  terminate.kind = IngressMessage::Kind::kTerminate;
  terminate.workflow_id = "stranger";
  terminate.parent.set_workflow_id("someone");
  terminate.parent.set_run_id("r");
  terminate.parent.set_child_ref("1");
  const IngressOutcome out = engine->Send(terminate);
  BOOST_TEST(out.status.ok());
  BOOST_TEST(out.dropped);
  BOOST_TEST(Status("stranger") == "running");
}

BOOST_FIXTURE_TEST_CASE(a_child_that_continues_as_new_reports_its_last_run, Fixture) {
  Start("p-10", "await_one", Json{{"type", "twice"}, {"id", "p-10-x"}, {"input", 0}});
  BOOST_TEST(Result("p-10") == (Json{{"completed", "second run"}}));
  const auto events = Events("p-10");
  BOOST_TEST(std::count(events.begin(), events.end(),
                        "ChildWorkflowClosed(ref=1, status=completed)") == 1);
  auto child = engine->History("p-10-x");
  BOOST_REQUIRE(child.ok());
  // Both runs of the child name the parent.
  for (const auto& e : *child) {
    if (e.has_workflow_started()) BOOST_TEST(e.workflow_started().parent().workflow_id() == "p-10");
  }
}

BOOST_FIXTURE_TEST_CASE(children_survive_a_restart_of_the_engine, Fixture) {
  Start("p-11", "awaits_waiter");
  BOOST_REQUIRE(WaitFor([&] { return Status("p-11-w") == "running"; }));
  engine->Shutdown();
  engine.reset();
  Open();
  BOOST_REQUIRE(engine->Signal("p-11-w", "go", JsonPayload("after restart")).status.ok());
  BOOST_TEST(Result("p-11") == "after restart");
  BOOST_TEST(Events("p-11").size() == 4u);
}
