// Code versions: runs stay pinned to the version they started on; a worker
// may hold several versions of a type; one that lacks a run's version parks
// it with a clear error instead of failing it.
#define BOOST_TEST_MODULE versioning_test
#include <boost/test/unit_test.hpp>
#include <chrono>

#include "aion/engine/engine.h"
#include "aion/engine/history.h"
#include "aion/engine/memory_store.h"
#include "aion/engine/version.h"
#include "support/wait.h"

using namespace aion;
using namespace std::chrono_literals;
using aion::testing::WaitFor;

namespace {

Task<Json> GreetV1(Context& ctx, Json) {
  Timer reminder = ctx.timer("reminder", 1h);
  co_await ctx.signal<Json>("go");
  co_return "v1";
}

// Version 2 changed the code in a way v1 histories would not replay.
Task<Json> GreetV2(Context& ctx, Json) {
  co_await ctx.signal<Json>("go");
  co_return "v2";
}

std::unique_ptr<Engine> Open(MemoryStore& store, const WorkflowRegistry& registry) {
  auto e = Engine::Open({.store = &store, .registry = &registry});
  BOOST_REQUIRE(e.ok());
  return std::move(*e);
}

Json Finish(Engine& engine, const std::string& id) {
  BOOST_REQUIRE(engine.Signal(id, "go", JsonPayload(nullptr)).status.ok());
  auto done = engine.AwaitResult(id, 10s);
  BOOST_REQUIRE(done.ok());
  return *ParseJsonPayload(done->output);
}

}  // namespace

BOOST_AUTO_TEST_CASE(open_runs_stay_on_their_version_new_runs_take_the_current_one) {
  MemoryStore store;
  WorkflowRegistry v1_only, both, v2_only;
  BOOST_REQUIRE(v1_only.workflow("greet", &GreetV1, {.version = "1"}).ok());
  BOOST_REQUIRE(both.workflow("greet", &GreetV1, {.version = "1"}).ok());
  BOOST_REQUIRE(both.workflow("greet", &GreetV2, {.version = "2"}).ok());
  BOOST_REQUIRE(v2_only.workflow("greet", &GreetV2, {.version = "2"}).ok());
  {
    auto engine = Open(store, v1_only);
    BOOST_REQUIRE(engine->Start("old", "greet", JsonPayload(nullptr)).status.ok());
    BOOST_REQUIRE(WaitFor([&] { return engine->History("old")->size() >= 2; }));
  }
  {
    // A worker with only version 2 parks the version-1 run, with the reason.
    auto engine = Open(store, v2_only);
    BOOST_REQUIRE(WaitFor([&] { return !engine->Describe("old")->parked_error.empty(); }));
    const std::string why = engine->Describe("old")->parked_error;
    BOOST_TEST(why.find("pinned to code version '1' of 'greet'") != std::string::npos);
    BOOST_TEST(why.find("version(s) '2'") != std::string::npos);
    BOOST_TEST(engine->Describe("old")->record.status() == records::WORKFLOW_STATUS_RUNNING);
  }
  auto engine = Open(store, both);
  BOOST_TEST(Finish(*engine, "old") == "v1");
  BOOST_REQUIRE(engine->Start("new", "greet", JsonPayload(nullptr)).status.ok());
  BOOST_TEST(engine->Describe("new")->record.code_version() == "2");
  BOOST_TEST(Finish(*engine, "new") == "v2");
}

BOOST_AUTO_TEST_CASE(current_marks_the_version_for_new_runs_and_duplicates_are_refused) {
  WorkflowRegistry registry;
  BOOST_REQUIRE(registry.workflow("greet", &GreetV1, {.version = "1", .current = true}).ok());
  BOOST_REQUIRE(registry.workflow("greet", &GreetV2, {.version = "2"}).ok());
  BOOST_TEST(registry.Find("greet")->options.version == "1");
  BOOST_TEST(registry.Find("greet", "2")->options.version == "2");
  BOOST_TEST(registry.Find("greet", "3") == nullptr);
  BOOST_TEST(registry.workflow("greet", &GreetV2, {.version = "2"}).code() ==
             StatusCode::kInvalidArgument);
  BOOST_TEST(registry.workflow("greet", &GreetV2, {.version = ""}).code() ==
             StatusCode::kInvalidArgument);
}

BOOST_AUTO_TEST_CASE(workflow_started_records_the_aion_version) {
  MemoryStore store;
  WorkflowRegistry registry;
  BOOST_REQUIRE(registry.workflow("greet", &GreetV2, {.version = "2"}).ok());
  auto engine = Open(store, registry);
  BOOST_REQUIRE(engine->Start("av-1", "greet", JsonPayload(nullptr)).status.ok());
  auto history = engine->History("av-1");
  BOOST_REQUIRE(history.ok());
  BOOST_REQUIRE(!history->empty());
  BOOST_TEST(history->front().workflow_started().aion_version() == std::string(Version()));
  BOOST_TEST(!std::string(Version()).empty());
  BOOST_TEST(history->front().workflow_started().code_version() == "2");
}
