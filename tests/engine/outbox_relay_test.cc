// The outbox relay against OutboxSink::PublishBatch's contract: only the
// leading rows a sink accepted are deleted, the rest is offered again from
// the first refused row on, in key order. A fake sink, a MemoryStore, a
// ManualClock: no NATS.
#define BOOST_TEST_MODULE outbox_relay_test
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "aion/engine/engine.h"
#include "aion/engine/memory_store.h"
#include "aion/engine/outbox_sink.h"
#include "support/fault_injection_store.h"
#include "support/wait.h"

using namespace aion;
using namespace std::chrono_literals;
using aion::testing::WaitFor;

namespace {

Task<Json> Echo(Context&, Json input) { co_return input; }

std::vector<std::string> Keys(const std::vector<OutboxRow>& rows, std::size_t from = 0) {
  std::vector<std::string> keys;
  for (std::size_t i = from; i < rows.size(); ++i) keys.push_back(rows[i].key());
  return keys;
}

// Refuses everything until Open(); then accepts the scripted number of
// leading rows per call (all once the script is used up). Records what it
// was offered and what it accepted. Thread-safe.
class ScriptedSink final : public OutboxSink {
 public:
  Status Publish(const OutboxRow&) override {
    return Status(StatusCode::kInternal, "the relay must use PublishBatch");
  }
  std::size_t PublishBatch(const std::vector<OutboxRow>& rows, Status* error) override {
    std::lock_guard<std::mutex> g(mu_);
    std::size_t n = 0;
    if (open_) {
      offered_.push_back(Keys(rows));
      n = rows.size();
      if (!script_.empty()) {
        n = std::min(n, script_.front());
        script_.pop_front();
      }
      for (std::size_t i = 0; i < n; ++i) {
        accepted_.push_back(rows[i].key());
        accepted_msg_ids_.push_back(OutboxMsgId(rows[i]));
      }
    }
    if (n < rows.size()) *error = Status(StatusCode::kUnavailable, "scripted refusal");
    return n;
  }
  void Open(std::deque<std::size_t> script) {
    std::lock_guard<std::mutex> g(mu_);
    script_ = std::move(script);
    open_ = true;
  }
  std::vector<std::vector<std::string>> offered() const {
    std::lock_guard<std::mutex> g(mu_);
    return offered_;
  }
  std::vector<std::string> accepted() const {
    std::lock_guard<std::mutex> g(mu_);
    return accepted_;
  }
  std::vector<std::string> accepted_msg_ids() const {
    std::lock_guard<std::mutex> g(mu_);
    return accepted_msg_ids_;
  }

 private:
  mutable std::mutex mu_;
  bool open_ = false;                              // guarded by mu_
  std::deque<std::size_t> script_;                 // guarded by mu_
  std::vector<std::vector<std::string>> offered_;  // guarded by mu_
  std::vector<std::string> accepted_;              // guarded by mu_
  std::vector<std::string> accepted_msg_ids_;      // guarded by mu_
};

// Only Publish: the default PublishBatch. Fails the row keyed `bad`.
class OneByOneSink final : public OutboxSink {
 public:
  explicit OneByOneSink(std::string bad) : bad_(std::move(bad)) {}
  Status Publish(const OutboxRow& row) override {
    if (row.key() == bad_) return Status(StatusCode::kUnavailable, "down");
    published.push_back(row.key());
    return Status::Ok();
  }
  std::vector<std::string> published;

 private:
  std::string bad_;
};

OutboxRow Row(const std::string& key) {
  OutboxRow row;
  row.set_key(key);
  row.set_kind(OutboxRow::KIND_LIFECYCLE);
  row.set_workflow_id(key.substr(0, key.find('/')));
  return row;
}

}  // namespace

BOOST_AUTO_TEST_CASE(default_publish_batch_stops_at_the_first_error) {
  OneByOneSink sink("b/2");
  const std::vector<OutboxRow> rows = {Row("a/1"), Row("b/1"), Row("b/2"), Row("c/1")};
  Status error;
  BOOST_TEST(sink.PublishBatch(rows, &error) == 2u);
  BOOST_TEST((error.code() == StatusCode::kUnavailable));
  BOOST_TEST((sink.published == std::vector<std::string>{"a/1", "b/1"}));

  Status untouched;
  BOOST_TEST(sink.PublishBatch({Row("a/1")}, &untouched) == 1u);
  BOOST_TEST(untouched.ok());
}

BOOST_AUTO_TEST_CASE(relay_deletes_exactly_the_accepted_leading_rows_and_retries_the_rest) {
  MemoryStore store;
  ManualClock clock;
  WorkflowRegistry registry;
  BOOST_REQUIRE(registry.workflow("echo", &Echo).ok());
  ScriptedSink sink;
  auto opened =
      Engine::Open({.store = &store, .registry = &registry, .clock = &clock, .outbox = &sink});
  BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  auto engine = std::move(*opened);

  for (const char* id : {"w-1", "w-2", "w-3"}) {
    BOOST_REQUIRE(engine->Start(id, "echo", JsonPayload(Json{{"id", id}})).status.ok());
    BOOST_REQUIRE(engine->AwaitResult(id, 20s).ok());
  }
  // Started and completed of each run, refused so far, all still in the outbox.
  auto waiting = store.ReadOutbox("", 256);
  BOOST_REQUIRE(waiting.ok());
  BOOST_REQUIRE(waiting->size() == 6u);
  const std::vector<std::string> all = Keys(*waiting);

  sink.Open({2, 1});
  BOOST_TEST(WaitFor([&] {
    auto left = store.ReadOutbox("", 256);
    return left.ok() && left->empty();
  }));
  const auto offered = sink.offered();
  BOOST_REQUIRE(offered.size() == 3u);
  BOOST_TEST(offered[0] == all);
  BOOST_TEST(offered[1] == std::vector<std::string>(all.begin() + 2, all.end()));
  BOOST_TEST(offered[2] == std::vector<std::string>(all.begin() + 3, all.end()));
  BOOST_TEST(sink.accepted() == all);  // each row once, in key order
  engine->Shutdown();
}

namespace {

// An engine over a MemoryStore behind a FaultInjectionStore, publishing to
// a ScriptedSink, with three finished `echo` runs (six outbox rows).
struct RelayFixture {
  RelayFixture() { BOOST_REQUIRE(registry.workflow("echo", &Echo).ok()); }
  void Open() {
    auto opened =
        Engine::Open({.store = &faulty, .registry = &registry, .clock = &clock, .outbox = &sink});
    BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
    engine = std::move(*opened);
  }
  void StartThree() {
    Open();
    for (const char* id : {"w-1", "w-2", "w-3"}) {
      BOOST_REQUIRE(engine->Start(id, "echo", JsonPayload(Json{{"id", id}})).status.ok());
      BOOST_REQUIRE(engine->AwaitResult(id, 20s).ok());
    }
  }
  bool OutboxEmpty() {
    auto left = store.ReadOutbox("", 256);
    return left.ok() && left->empty();
  }
  static bool OnlyDeletes(const WriteBatch& b) {
    return !b.outbox_deletes.empty() && b.appends.empty() && b.outbox_puts.empty();
  }

  MemoryStore store;
  aion::testing::FaultInjectionStore faulty{&store};
  ManualClock clock;
  WorkflowRegistry registry;
  ScriptedSink sink;
  std::unique_ptr<Engine> engine;
};

}  // namespace

// The relay publishes on while a round's deletion is not committed yet, but
// never offers a row again that awaits its deletion.
BOOST_FIXTURE_TEST_CASE(rows_awaiting_deletion_are_not_published_again, RelayFixture) {
  StartThree();  // the sink refuses: all six rows wait
  // Deletions fail transiently: the writer holds and retries them (and takes
  // no other work meanwhile, so the runs were started first). The sink takes
  // 3 rows, then everything: the relay reads from the start again while the
  // deletion of those 3 is held, and must not offer them again.
  faulty.RefuseBatchesWhere(&OnlyDeletes, Status(StatusCode::kUnavailable, "disk busy"));
  sink.Open({3});
  BOOST_TEST(WaitFor([&] { return sink.accepted().size() >= 6u; }));
  BOOST_TEST(WaitFor([&] { return faulty.failed_commits() >= 3; }));
  BOOST_TEST(!OutboxEmpty());
  faulty.RefuseBatchesWhere(nullptr, Status::Ok());
  BOOST_TEST(WaitFor([&] { return OutboxEmpty(); }));
  auto accepted = sink.accepted();
  std::sort(accepted.begin(), accepted.end());
  BOOST_TEST(accepted.size() == 6u);  // each row once
  BOOST_TEST((std::adjacent_find(accepted.begin(), accepted.end()) == accepted.end()));
  engine->Shutdown();
}

// A deletion refused for good leaves the rows in the outbox: they are
// published again (at-least-once), and deleted once the store takes it.
BOOST_FIXTURE_TEST_CASE(rows_whose_deletion_failed_are_published_again, RelayFixture) {
  StartThree();  // the sink refuses: all six rows wait
  auto waiting = store.ReadOutbox("", 256);
  BOOST_REQUIRE(waiting.ok());
  BOOST_REQUIRE(waiting->size() == 6u);
  faulty.RefuseBatchesWhere(&OnlyDeletes, Status(StatusCode::kInvalidArgument, "refused"));
  sink.Open({});
  BOOST_TEST(WaitFor([&] { return sink.accepted().size() >= 12u; }));
  faulty.RefuseBatchesWhere(nullptr, Status::Ok());
  // A new commit nudges the relay out of its backoff.
  BOOST_REQUIRE(engine->Start("w-4", "echo", JsonPayload(Json{{"id", 4}})).status.ok());
  BOOST_TEST(WaitFor([&] { return OutboxEmpty(); }));
  std::map<std::string, int> times;
  for (const std::string& key : sink.accepted()) ++times[key];
  for (const std::string& key : Keys(*waiting)) {
    BOOST_TEST(times[key] >= 2, key << " published " << times[key] << " times");
  }
  engine->Shutdown();
}

// Outbox keys are commit positions: the relay reads rows in commit order, not
// in workflow-id order, and a reopened engine goes on after the last key.
BOOST_FIXTURE_TEST_CASE(outbox_keys_follow_commit_order_across_a_restart, RelayFixture) {
  auto started_rows = [&] {
    std::vector<std::string> msg_ids;
    auto rows = store.ReadOutbox("", 256);
    BOOST_REQUIRE(rows.ok());
    for (const OutboxRow& row : *rows) {
      if (row.event().has_workflow_started()) msg_ids.push_back(OutboxMsgId(row));
    }
    return msg_ids;
  };
  Open();  // the sink refuses: rows stay in the outbox
  for (const char* id : {"zz", "aa"}) {
    BOOST_REQUIRE(engine->Start(id, "echo", JsonPayload(Json{{"id", id}})).status.ok());
    BOOST_REQUIRE(engine->AwaitResult(id, 20s).ok());
  }
  BOOST_TEST((started_rows() ==
              std::vector<std::string>{"zz/00000000000000000001", "aa/00000000000000000001"}));
  engine->Shutdown();
  Open();
  BOOST_REQUIRE(engine->Start("00", "echo", JsonPayload(Json{{"id", 0}})).status.ok());
  BOOST_REQUIRE(engine->AwaitResult("00", 20s).ok());
  BOOST_TEST((started_rows() == std::vector<std::string>{"zz/00000000000000000001",
                                                         "aa/00000000000000000001",
                                                         "00/00000000000000000001"}));
  engine->Shutdown();
}

// A deletion that rides along with a commit refused for other reasons (here:
// every batch with appends) is not failed: it waits for the next commit, so
// nothing published is published again.
BOOST_FIXTURE_TEST_CASE(deletions_riding_with_a_refused_commit_wait_for_the_next, RelayFixture) {
  StartThree();  // the sink refuses: all six rows wait
  faulty.RefuseBatchesWhere([](const WriteBatch& b) { return !b.appends.empty(); },
                            Status(StatusCode::kAborted, "stale head"));
  sink.Open({});
  BOOST_TEST(WaitFor([&] { return sink.accepted().size() >= 6u; }));
  // Refused commits, back to back, while the deletion waits to ride along.
  const auto until = std::chrono::steady_clock::now() + 200ms;
  for (int i = 0; i < 200 && std::chrono::steady_clock::now() < until; ++i) {
    auto refused = engine->Start("x-" + std::to_string(i), "echo", JsonPayload(Json(i)));
    BOOST_TEST((refused.status.code() == StatusCode::kAborted));
  }
  faulty.RefuseBatchesWhere(nullptr, Status::Ok());
  BOOST_TEST(WaitFor([&] { return OutboxEmpty(); }));
  BOOST_TEST(sink.accepted().size() == 6u);
  engine->Shutdown();
}

// Rows keyed the way of earlier versions (<workflow id>/<seq>) are re-keyed
// to commit positions at open, keep their old key as msg id, and go out
// first, in their old order, before rows committed after the open.
BOOST_FIXTURE_TEST_CASE(rows_of_an_earlier_version_are_re_keyed_and_published_first, RelayFixture) {
  WriteBatch old;
  for (const char* key :
       {"b-1/00000000000000000001", "a-1/00000000000000000002", "a-1/00000000000000000001"}) {
    old.outbox_puts.push_back(Row(key));
  }
  BOOST_REQUIRE(store.Commit(old).ok());
  sink.Open({});
  StartThree();
  BOOST_TEST(WaitFor([&] { return OutboxEmpty(); }));
  const auto keys = sink.accepted();
  const auto msg_ids = sink.accepted_msg_ids();
  BOOST_REQUIRE(msg_ids.size() == 9u);  // 3 old rows, then started and completed of 3 runs
  BOOST_TEST((std::vector<std::string>(keys.begin(), keys.begin() + 3) ==
              std::vector<std::string>{"00000000000000000000", "00000000000000000001",
                                       "00000000000000000002"}));
  BOOST_TEST((std::vector<std::string>(msg_ids.begin(), msg_ids.begin() + 3) ==
              std::vector<std::string>{"a-1/00000000000000000001", "a-1/00000000000000000002",
                                       "b-1/00000000000000000001"}));
  BOOST_TEST(msg_ids[3] == "w-1/00000000000000000001");
  engine->Shutdown();
}
