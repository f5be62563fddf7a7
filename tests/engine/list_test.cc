// Engine::List: workflows by status, type, start time and partition, read
// from records, with paging.
#define BOOST_TEST_MODULE list_test
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <set>

#include "aion/engine/engine.h"
#include "aion/engine/history.h"
#include "aion/engine/ids.h"
#include "aion/engine/memory_store.h"

using namespace aion;
using namespace std::chrono_literals;

namespace {

Task<Json> Noop(Context& ctx, Json in) { co_return in; }
Task<Json> WaitGo(Context& ctx, Json) { co_return co_await ctx.signal<Json>("go"); }

struct Fixture {
  Fixture() {
    BOOST_REQUIRE(registry.workflow("noop", &Noop).ok());
    BOOST_REQUIRE(registry.workflow("wait_go", &WaitGo).ok());
    auto e = Engine::Open({.store = &store, .registry = &registry, .clock = &clock});
    BOOST_REQUIRE(e.ok());
    engine = std::move(*e);
    // t0: noop-1..3 (completed), t0+10s: wait-1..4 (running)
    for (int i = 1; i <= 3; ++i) Start("noop-" + std::to_string(i), "noop");
    for (int i = 1; i <= 3; ++i)
      BOOST_REQUIRE(engine->AwaitResult("noop-" + std::to_string(i), 10s).ok());
    clock.Advance(10s);
    for (int i = 1; i <= 4; ++i) Start("wait-" + std::to_string(i), "wait_go");
  }
  void Start(const std::string& id, const std::string& type) {
    BOOST_REQUIRE(engine->Start(id, type, JsonPayload(nullptr)).status.ok());
  }
  std::vector<std::string> Ids(const ListRequest& r) {
    auto page = engine->List(r);
    BOOST_REQUIRE(page.ok());
    std::vector<std::string> ids;
    for (const auto& rec : page->workflows) ids.push_back(rec.workflow_id());
    return ids;
  }

  MemoryStore store;
  ManualClock clock;
  WorkflowRegistry registry;
  std::unique_ptr<Engine> engine;
};

using Names = std::vector<std::string>;

}  // namespace

BOOST_FIXTURE_TEST_CASE(lists_by_status_type_and_time, Fixture) {
  BOOST_TEST(Ids({.statuses = {records::WORKFLOW_STATUS_COMPLETED}}) ==
             (Names{"noop-1", "noop-2", "noop-3"}));
  BOOST_TEST(Ids({.workflow_type = "wait_go"}) == (Names{"wait-1", "wait-2", "wait-3", "wait-4"}));
  const Timestamp later = clock.Now() - 5'000'000;
  BOOST_TEST(Ids({.started_before_us = later}).size() == 3u);
  BOOST_TEST(Ids({.started_after_us = later}).size() == 4u);
  BOOST_TEST(Ids({.workflow_type = "nope"}).empty());
}

BOOST_FIXTURE_TEST_CASE(lists_only_the_partitions_asked_for, Fixture) {
  const std::uint32_t p = PartitionOf("wait-1", 16);
  for (const auto& id : Ids({.partitions = {p}})) BOOST_TEST(PartitionOf(id, 16) == p);
  BOOST_TEST(!Ids({.partitions = {p}}).empty());
}

BOOST_FIXTURE_TEST_CASE(pages_cover_everything_once, Fixture) {
  std::set<std::string> seen;
  ListRequest r{.limit = 2};
  int pages = 0;
  while (true) {
    auto page = engine->List(r);
    BOOST_REQUIRE(page.ok());
    BOOST_REQUIRE(page->workflows.size() <= 2u);
    for (const auto& rec : page->workflows) BOOST_TEST(seen.insert(rec.workflow_id()).second);
    ++pages;
    if (page->next_page_token.empty()) break;
    r.page_token = page->next_page_token;
  }
  BOOST_TEST(seen.size() == 7u);
  BOOST_TEST(pages >= 4);
}

BOOST_FIXTURE_TEST_CASE(bad_requests_are_refused, Fixture) {
  BOOST_TEST(engine->List({.page_token = "garbage"}).status().code() ==
             StatusCode::kInvalidArgument);
  BOOST_TEST(engine->List({.limit = 0}).status().code() == StatusCode::kInvalidArgument);
  BOOST_TEST(engine->List({.limit = 5000}).status().code() == StatusCode::kInvalidArgument);
}
