// The Store conformance suite (DESIGN §9): every Store implementation runs
// the same cases.
//
// Each case is a function taking a fresh, empty Store. A test file lists its
// fixture types (default-constructible, `Store& store()`, owning the store)
// and expands AION_STORE_CONFORMANCE_TESTS(Fixtures) inside a test suite,
// which registers one BOOST_AUTO_TEST_CASE_TEMPLATE per case and fixture.
// The cases call Boost.Test macros from the test thread only.
#pragma once

#include <google/protobuf/util/message_differencer.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "aion/engine/store.h"

// Checks a Status code, printing the whole Status when it differs.
#define AION_CHECK_CODE(status_expr, want_code)                                            \
  do {                                                                                     \
    const ::aion::Status aion_got_ = (status_expr);                                        \
    BOOST_CHECK_MESSAGE(                                                                   \
        aion_got_.code() == (want_code),                                                   \
        "got " << aion_got_.ToString() << ", want " << ::aion::StatusCodeName(want_code)); \
  } while (0)

#define AION_REQUIRE_OK(status_expr)                                       \
  do {                                                                     \
    const ::aion::Status aion_got_ = (status_expr);                        \
    BOOST_REQUIRE_MESSAGE(aion_got_.ok(), "got " << aion_got_.ToString()); \
  } while (0)

namespace aion::testing::store_conformance {

constexpr std::size_t kAll = std::numeric_limits<std::size_t>::max();
constexpr Timestamp kForever = std::numeric_limits<Timestamp>::max();

inline bool ProtoEq(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

#define AION_CHECK_PROTO_EQ(a, b)                                            \
  BOOST_CHECK_MESSAGE(::aion::testing::store_conformance::ProtoEq((a), (b)), \
                      (a).ShortDebugString() << " != " << (b).ShortDebugString())

// ---- builders -------------------------------------------------------------

inline HistoryEvent Event(std::uint64_t seq, std::string_view run_id = "run-1") {
  HistoryEvent event;
  event.set_seq(seq);
  event.set_run_id(std::string(run_id));
  event.set_recorded_at_us(1'700'000'000'000'000 + static_cast<Timestamp>(seq));
  event.mutable_signal_received()->set_name("sig-" + std::to_string(seq));
  return event;
}

inline WorkflowRecord Record(std::string_view id, std::uint64_t head,
                             WorkflowStatus status = records::WORKFLOW_STATUS_RUNNING) {
  WorkflowRecord record;
  record.set_workflow_id(std::string(id));
  record.set_workflow_type("order");
  record.set_run_id("run-1");
  record.set_status(status);
  record.set_head_seq(head);
  return record;
}

// Appends `count` events after `expected_head`, with a matching record.
inline AppendOp Append(std::string_view id, std::uint64_t expected_head, std::uint64_t count,
                       WorkflowStatus status = records::WORKFLOW_STATUS_RUNNING) {
  AppendOp op;
  op.workflow_id = std::string(id);
  op.expected_head = expected_head;
  for (std::uint64_t i = 1; i <= count; ++i) op.events.push_back(Event(expected_head + i));
  op.record = Record(id, expected_head + count, status);
  return op;
}

inline TimerRow Timer(Timestamp fire_at_us, std::string_view id, std::string_view timer_id) {
  TimerRow row;
  row.set_fire_at_us(fire_at_us);
  row.set_workflow_id(std::string(id));
  row.set_timer_id(std::string(timer_id));
  row.set_run_id("run-1");
  return row;
}

inline DedupeEntry Dedupe(std::string_view key, std::uint64_t seq) {
  DedupeEntry entry;
  entry.set_key(std::string(key));
  entry.set_seq(seq);
  entry.set_recorded_at_us(1'700'000'000'000'000);
  entry.set_run_id("run-1");
  return entry;
}

inline OutboxRow Outbox(std::string_view key, std::string_view id) {
  OutboxRow row;
  row.set_key(std::string(key));
  row.set_kind(OutboxRow::KIND_LIFECYCLE);
  row.set_workflow_id(std::string(id));
  row.set_workflow_type("order");
  *row.mutable_event() = Event(1);
  return row;
}

inline WriteBatch BatchOf(AppendOp op) {
  WriteBatch batch;
  batch.appends.push_back(std::move(op));
  return batch;
}

// ---- read helpers (REQUIRE the read to succeed) ---------------------------

inline std::vector<std::uint64_t> Seqs(Store& store, std::string_view id, std::uint64_t from = 1,
                                       std::size_t limit = kAll) {
  auto events = store.ReadHistory(id, from, limit);
  AION_REQUIRE_OK(events.status());
  std::vector<std::uint64_t> seqs;
  for (const auto& e : *events) seqs.push_back(e.seq());
  return seqs;
}

inline std::vector<std::uint64_t> Range(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint64_t> out;
  for (std::uint64_t s = first; s <= last; ++s) out.push_back(s);
  return out;
}

inline std::vector<std::string> ListedIds(Store& store, WorkflowStatus status,
                                          std::string_view start_after = "",
                                          std::size_t limit = kAll) {
  auto records = store.ListByStatus(status, start_after, limit);
  AION_REQUIRE_OK(records.status());
  std::vector<std::string> ids;
  for (const auto& r : *records) ids.push_back(r.workflow_id());
  return ids;
}

inline std::vector<std::string> TimerIds(Store& store, Timestamp until = kForever,
                                         std::size_t limit = kAll) {
  auto timers = store.DueTimers(until, limit);
  AION_REQUIRE_OK(timers.status());
  std::vector<std::string> ids;
  for (const auto& t : *timers) ids.push_back(t.workflow_id() + "/" + t.timer_id());
  return ids;
}

inline std::vector<std::string> OutboxKeys(Store& store, std::string_view start_after = "",
                                           std::size_t limit = kAll) {
  auto rows = store.ReadOutbox(start_after, limit);
  AION_REQUIRE_OK(rows.status());
  std::vector<std::string> keys;
  for (const auto& r : *rows) keys.push_back(r.key());
  return keys;
}

inline std::uint64_t HeadOf(Store& store, std::string_view id) {
  auto record = store.GetWorkflow(id);
  AION_REQUIRE_OK(record.status());
  return record->head_seq();
}

using Ids = std::vector<std::string>;
using SeqList = std::vector<std::uint64_t>;

// ---- cases ----------------------------------------------------------------

inline void AppendThenReadBack(Store& store) {
  AppendOp first = Append("wf-a", 0, 3);
  AION_REQUIRE_OK(store.Commit(BatchOf(first)));

  auto record = store.GetWorkflow("wf-a");
  AION_REQUIRE_OK(record.status());
  AION_CHECK_PROTO_EQ(*record, first.record);
  auto events = store.ReadHistory("wf-a", 1, kAll);
  AION_REQUIRE_OK(events.status());
  BOOST_REQUIRE_EQUAL(events->size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) AION_CHECK_PROTO_EQ((*events)[i], first.events[i]);

  AION_REQUIRE_OK(store.Commit(BatchOf(Append("wf-a", 3, 2))));
  BOOST_TEST(Seqs(store, "wf-a") == Range(1, 5), boost::test_tools::per_element());
  BOOST_TEST(HeadOf(store, "wf-a") == 5u);
}

inline void AppendWithoutEventsReplacesRecord(Store& store) {
  AION_REQUIRE_OK(store.Commit(BatchOf(Append("wf-a", 0, 2))));
  AppendOp touch = Append("wf-a", 2, 0);
  touch.record.set_code_version("v2");
  AION_REQUIRE_OK(store.Commit(BatchOf(touch)));
  auto record = store.GetWorkflow("wf-a");
  AION_REQUIRE_OK(record.status());
  BOOST_TEST(record->code_version() == "v2");
  BOOST_TEST(Seqs(store, "wf-a") == Range(1, 2), boost::test_tools::per_element());
}

// Rows every failing batch below carries: none of them may appear.
inline void AddRowsThatMustNotLand(WriteBatch& batch) {
  batch.dedupe_puts.push_back(Dedupe("req-new", 1));
  batch.dedupe_deletes.push_back("req-old");
  batch.timer_puts.push_back(Timer(500, "wf-a", "t-new"));
  batch.timer_deletes.push_back(Timer(100, "wf-a", "t-old"));
  batch.outbox_puts.push_back(Outbox("ob-new", "wf-a"));
  batch.outbox_deletes.push_back("ob-old");
}

inline void CommitStateBeforeFailingBatch(Store& store) {
  WriteBatch setup = BatchOf(Append("wf-a", 0, 2));
  setup.dedupe_puts.push_back(Dedupe("req-old", 1));
  setup.timer_puts.push_back(Timer(100, "wf-a", "t-old"));
  setup.outbox_puts.push_back(Outbox("ob-old", "wf-a"));
  AION_REQUIRE_OK(store.Commit(setup));
}

inline void CheckStateUnchangedAfterFailingBatch(Store& store) {
  BOOST_TEST(Seqs(store, "wf-a") == Range(1, 2), boost::test_tools::per_element());
  BOOST_TEST(HeadOf(store, "wf-a") == 2u);
  AION_CHECK_CODE(store.GetWorkflow("wf-b").status(), StatusCode::kNotFound);
  BOOST_TEST(Seqs(store, "wf-b").empty());
  BOOST_TEST(ListedIds(store, records::WORKFLOW_STATUS_RUNNING) == Ids{"wf-a"},
             boost::test_tools::per_element());
  BOOST_TEST(ListedIds(store, records::WORKFLOW_STATUS_COMPLETED).empty());
  AION_CHECK_CODE(store.GetDedupe("req-new").status(), StatusCode::kNotFound);
  AION_CHECK_CODE(store.GetDedupe("req-old").status(), StatusCode::kOk);
  BOOST_TEST(TimerIds(store) == Ids{"wf-a/t-old"}, boost::test_tools::per_element());
  BOOST_TEST(OutboxKeys(store) == Ids{"ob-old"}, boost::test_tools::per_element());
}

inline void HeadMismatchAbortsWholeBatch(Store& store) {
  CommitStateBeforeFailingBatch(store);

  WriteBatch stale;
  stale.appends.push_back(Append("wf-b", 0, 1));  // valid on its own
  stale.appends.push_back(Append("wf-a", 1, 1, records::WORKFLOW_STATUS_COMPLETED));  // head is 2
  AddRowsThatMustNotLand(stale);
  AION_CHECK_CODE(store.Commit(stale), StatusCode::kAborted);
  CheckStateUnchangedAfterFailingBatch(store);

  WriteBatch ahead;
  ahead.appends.push_back(Append("wf-b", 1, 1));  // wf-b has no history yet
  AddRowsThatMustNotLand(ahead);
  AION_CHECK_CODE(store.Commit(ahead), StatusCode::kAborted);
  CheckStateUnchangedAfterFailingBatch(store);
}

inline void BadSeqsAreInvalidAndWriteNothing(Store& store) {
  CommitStateBeforeFailingBatch(store);

  WriteBatch gap;
  gap.appends.push_back(Append("wf-b", 0, 1));
  AppendOp with_gap = Append("wf-a", 2, 2);
  with_gap.events[1].set_seq(5);
  gap.appends.push_back(with_gap);
  AddRowsThatMustNotLand(gap);
  AION_CHECK_CODE(store.Commit(gap), StatusCode::kInvalidArgument);
  CheckStateUnchangedAfterFailingBatch(store);

  AppendOp skips_first = Append("wf-a", 2, 1);
  skips_first.events[0].set_seq(4);
  skips_first.record.set_head_seq(4);
  AION_CHECK_CODE(store.Commit(BatchOf(skips_first)), StatusCode::kInvalidArgument);

  AppendOp repeats = Append("wf-a", 2, 1);
  repeats.events[0].set_seq(2);
  AION_CHECK_CODE(store.Commit(BatchOf(repeats)), StatusCode::kInvalidArgument);

  AppendOp wrong_record_head = Append("wf-a", 2, 2);
  wrong_record_head.record.set_head_seq(3);
  AION_CHECK_CODE(store.Commit(BatchOf(wrong_record_head)), StatusCode::kInvalidArgument);
  CheckStateUnchangedAfterFailingBatch(store);
}

inline void MalformedRowsAreInvalid(Store& store) {
  AION_CHECK_CODE(store.Commit(BatchOf(Append("", 0, 1))), StatusCode::kInvalidArgument);
  AION_CHECK_CODE(store.Commit(BatchOf(Append(std::string("wf\0x", 4), 0, 1))),
                  StatusCode::kInvalidArgument);
  AppendOp other_record = Append("wf-a", 0, 1);
  other_record.record.set_workflow_id("wf-z");
  AION_CHECK_CODE(store.Commit(BatchOf(other_record)), StatusCode::kInvalidArgument);
  AppendOp bad_status = Append("wf-a", 0, 1);
  bad_status.record.set_status(static_cast<WorkflowStatus>(77));
  AION_CHECK_CODE(store.Commit(BatchOf(bad_status)), StatusCode::kInvalidArgument);

  WriteBatch empty_dedupe;
  empty_dedupe.dedupe_puts.push_back(Dedupe("", 1));
  AION_CHECK_CODE(store.Commit(empty_dedupe), StatusCode::kInvalidArgument);
  WriteBatch empty_outbox;
  empty_outbox.outbox_puts.push_back(Outbox("", "wf-a"));
  AION_CHECK_CODE(store.Commit(empty_outbox), StatusCode::kInvalidArgument);
  WriteBatch anonymous_timer;
  anonymous_timer.timer_puts.push_back(Timer(1, "wf-a", ""));
  AION_CHECK_CODE(store.Commit(anonymous_timer), StatusCode::kInvalidArgument);

  AION_CHECK_CODE(store.GetWorkflow("wf-a").status(), StatusCode::kNotFound);
  AION_CHECK_CODE(store.ListByStatus(static_cast<WorkflowStatus>(77), "", kAll).status(),
                  StatusCode::kInvalidArgument);
}

inline void TwoAppendsToOneIdChain(Store& store) {
  WriteBatch chained;
  chained.appends.push_back(Append("wf-a", 0, 2));
  chained.appends.push_back(Append("wf-a", 2, 3, records::WORKFLOW_STATUS_COMPLETED));
  AION_REQUIRE_OK(store.Commit(chained));
  BOOST_TEST(Seqs(store, "wf-a") == Range(1, 5), boost::test_tools::per_element());
  BOOST_TEST(HeadOf(store, "wf-a") == 5u);
  BOOST_TEST(ListedIds(store, records::WORKFLOW_STATUS_COMPLETED) == Ids{"wf-a"},
             boost::test_tools::per_element());
  BOOST_TEST(ListedIds(store, records::WORKFLOW_STATUS_RUNNING).empty());

  // The second append names the stored head instead of the one the first left.
  WriteBatch stale_second;
  stale_second.appends.push_back(Append("wf-a", 5, 1));
  stale_second.appends.push_back(Append("wf-a", 5, 1));
  AION_CHECK_CODE(store.Commit(stale_second), StatusCode::kAborted);
  BOOST_TEST(Seqs(store, "wf-a") == Range(1, 5), boost::test_tools::per_element());
}

inline void ReadHistoryHonoursFromSeqAndLimit(Store& store) {
  WriteBatch batch;
  batch.appends.push_back(Append("wf", 0, 10));
  batch.appends.push_back(Append("wf-2", 0, 3));  // ids sharing a prefix stay apart
  batch.appends.push_back(Append("w", 0, 1));
  AION_REQUIRE_OK(store.Commit(batch));

  BOOST_TEST(Seqs(store, "wf") == Range(1, 10), boost::test_tools::per_element());
  BOOST_TEST(Seqs(store, "wf", 4, 3) == Range(4, 6), boost::test_tools::per_element());
  BOOST_TEST(Seqs(store, "wf", 9) == Range(9, 10), boost::test_tools::per_element());
  BOOST_TEST(Seqs(store, "wf", 0, 2) == Range(1, 2), boost::test_tools::per_element());
  BOOST_TEST(Seqs(store, "wf", 10, 1) == SeqList{10}, boost::test_tools::per_element());
  BOOST_TEST(Seqs(store, "wf", 11).empty());
  BOOST_TEST(Seqs(store, "wf", 1, 0).empty());
  BOOST_TEST(Seqs(store, "wf-2") == Range(1, 3), boost::test_tools::per_element());
  BOOST_TEST(Seqs(store, "w") == SeqList{1}, boost::test_tools::per_element());
  BOOST_TEST(Seqs(store, "nobody").empty());
  BOOST_TEST(Seqs(store, "").empty());
}

// Appends a run of `id`: WorkflowStarted at `head` + 1, then `signals`
// events, recorded as the id's current run (a store may keep the run id once).
inline AppendOp AppendRun(std::string_view id, std::uint64_t head, std::string_view run_id,
                          std::uint64_t signals) {
  AppendOp op;
  op.workflow_id = std::string(id);
  op.expected_head = head;
  HistoryEvent started = Event(head + 1, run_id);
  started.mutable_workflow_started()->set_workflow_type("order");
  op.events.push_back(started);
  for (std::uint64_t i = 2; i <= signals + 1; ++i) op.events.push_back(Event(head + i, run_id));
  op.record = Record(id, head + signals + 1);
  op.record.set_run_id(std::string(run_id));
  op.record.set_run_start_seq(head + 1);
  return op;
}

// The run id of every event read, from every seq: events of a run that has
// continued as new keep theirs.
inline void HistoryKeepsRunIdsAcrossRuns(Store& store) {
  AION_REQUIRE_OK(store.Commit(BatchOf(AppendRun("wf", 0, "run-1", 3))));
  AppendOp next = AppendRun("wf", 5, "run-2", 2);  // seqs 6..8
  HistoryEvent ended = Event(5, "run-1");          // run-1 ends with seq 5, in the same batch
  ended.mutable_workflow_continued_as_new();
  next.events.insert(next.events.begin(), ended);
  next.expected_head = 4;
  AION_REQUIRE_OK(store.Commit(BatchOf(next)));

  const std::vector<std::string> runs = {"run-1", "run-1", "run-1", "run-1",
                                         "run-1", "run-2", "run-2", "run-2"};
  for (std::uint64_t from = 1; from <= 8; ++from) {
    auto events = store.ReadHistory("wf", from, kAll);
    AION_REQUIRE_OK(events.status());
    BOOST_REQUIRE_EQUAL(events->size(), 9 - from);
    for (const HistoryEvent& e : *events) {
      BOOST_TEST(e.run_id() == runs[e.seq() - 1], "seq " << e.seq() << " read from " << from);
    }
  }
  auto all = store.ReadHistory("wf", 1, kAll);
  AION_REQUIRE_OK(all.status());
  AION_CHECK_PROTO_EQ((*all)[6], next.events[2]);
}

inline void GetWorkflowOfUnknownIdIsNotFound(Store& store) {
  AION_CHECK_CODE(store.GetWorkflow("nobody").status(), StatusCode::kNotFound);
  AION_CHECK_CODE(store.GetWorkflow("").status(), StatusCode::kNotFound);
  AION_REQUIRE_OK(store.Commit(BatchOf(Append("wf-a", 0, 1))));
  AION_CHECK_CODE(store.GetWorkflow("wf-").status(), StatusCode::kNotFound);
  AION_CHECK_CODE(store.GetWorkflow("wf-ab").status(), StatusCode::kNotFound);
}

inline void ListByStatusOrdersPagesAndFollowsChanges(Store& store) {
  using records::WORKFLOW_STATUS_COMPLETED;
  using records::WORKFLOW_STATUS_FAILED;
  using records::WORKFLOW_STATUS_RUNNING;
  WriteBatch batch;
  for (const char* id : {"c", "a", "bb", "b", "d"}) batch.appends.push_back(Append(id, 0, 1));
  batch.appends.push_back(Append("e", 0, 2, WORKFLOW_STATUS_COMPLETED));
  AION_REQUIRE_OK(store.Commit(batch));

  BOOST_TEST(ListedIds(store, WORKFLOW_STATUS_RUNNING) == (Ids{"a", "b", "bb", "c", "d"}),
             boost::test_tools::per_element());
  BOOST_TEST(ListedIds(store, WORKFLOW_STATUS_RUNNING, "b") == (Ids{"bb", "c", "d"}),
             boost::test_tools::per_element());
  BOOST_TEST(ListedIds(store, WORKFLOW_STATUS_RUNNING, "ba") == (Ids{"bb", "c", "d"}),
             boost::test_tools::per_element());
  BOOST_TEST(ListedIds(store, WORKFLOW_STATUS_RUNNING, "", 2) == (Ids{"a", "b"}),
             boost::test_tools::per_element());
  BOOST_TEST(ListedIds(store, WORKFLOW_STATUS_RUNNING, "b", 1) == Ids{"bb"},
             boost::test_tools::per_element());
  BOOST_TEST(ListedIds(store, WORKFLOW_STATUS_RUNNING, "d").empty());
  BOOST_TEST(ListedIds(store, WORKFLOW_STATUS_RUNNING, "", 0).empty());
  BOOST_TEST(ListedIds(store, WORKFLOW_STATUS_COMPLETED) == Ids{"e"},
             boost::test_tools::per_element());
  BOOST_TEST(ListedIds(store, WORKFLOW_STATUS_FAILED).empty());

  WriteBatch changes;
  changes.appends.push_back(Append("b", 1, 1, WORKFLOW_STATUS_COMPLETED));
  changes.appends.push_back(Append("d", 1, 1, WORKFLOW_STATUS_FAILED));
  changes.appends.push_back(Append("c", 1, 1));  // stays running
  AION_REQUIRE_OK(store.Commit(changes));
  BOOST_TEST(ListedIds(store, WORKFLOW_STATUS_RUNNING) == (Ids{"a", "bb", "c"}),
             boost::test_tools::per_element());
  BOOST_TEST(ListedIds(store, WORKFLOW_STATUS_COMPLETED) == (Ids{"b", "e"}),
             boost::test_tools::per_element());
  BOOST_TEST(ListedIds(store, WORKFLOW_STATUS_FAILED) == Ids{"d"},
             boost::test_tools::per_element());
  auto listed = store.ListByStatus(WORKFLOW_STATUS_COMPLETED, "", 1);
  AION_REQUIRE_OK(listed.status());
  BOOST_REQUIRE_EQUAL(listed->size(), 1u);
  AION_CHECK_PROTO_EQ(listed->front(), Record("b", 2, WORKFLOW_STATUS_COMPLETED));

  // Back to running (continue-as-new keeps the id).
  AION_REQUIRE_OK(store.Commit(BatchOf(Append("b", 2, 1))));
  BOOST_TEST(ListedIds(store, WORKFLOW_STATUS_RUNNING) == (Ids{"a", "b", "bb", "c"}),
             boost::test_tools::per_element());
  BOOST_TEST(ListedIds(store, WORKFLOW_STATUS_COMPLETED) == Ids{"e"},
             boost::test_tools::per_element());
}

inline void DueTimersComeEarliestFirstUpToUntil(Store& store) {
  WriteBatch batch;
  batch.timer_puts = {Timer(300, "wf-b", "t1"),
                      Timer(100, "wf-b", "t2"),
                      Timer(100, "wf-a", "t9"),
                      Timer(100, "wf-a", "t10"),
                      Timer(-50, "wf-c", "t1"),
                      Timer(0, "wf-c", "t2"),
                      Timer(1'700'000'000'000'000, "wf-d", "t1")};
  AION_REQUIRE_OK(store.Commit(batch));

  const Ids all = {"wf-c/t1", "wf-c/t2", "wf-a/t10", "wf-a/t9", "wf-b/t2", "wf-b/t1", "wf-d/t1"};
  BOOST_TEST(TimerIds(store) == all, boost::test_tools::per_element());
  BOOST_TEST(TimerIds(store, 100) == (Ids{"wf-c/t1", "wf-c/t2", "wf-a/t10", "wf-a/t9", "wf-b/t2"}),
             boost::test_tools::per_element());
  BOOST_TEST(TimerIds(store, 99) == (Ids{"wf-c/t1", "wf-c/t2"}), boost::test_tools::per_element());
  BOOST_TEST(TimerIds(store, -51).empty());
  BOOST_TEST(TimerIds(store, kForever, 3) == (Ids{"wf-c/t1", "wf-c/t2", "wf-a/t10"}),
             boost::test_tools::per_element());
  BOOST_TEST(TimerIds(store, kForever, 0).empty());
  auto first = store.DueTimers(-50, 1);
  AION_REQUIRE_OK(first.status());
  BOOST_REQUIRE_EQUAL(first->size(), 1u);
  AION_CHECK_PROTO_EQ(first->front(), Timer(-50, "wf-c", "t1"));
}

inline void TimerDeleteMatchesTimeIdAndTimer(Store& store) {
  WriteBatch setup;
  setup.timer_puts = {Timer(100, "wf-a", "t1"), Timer(200, "wf-a", "t2"), Timer(100, "wf-b", "t1")};
  AION_REQUIRE_OK(store.Commit(setup));

  WriteBatch misses;  // each row differs from a stored one in one field
  misses.timer_deletes = {Timer(101, "wf-a", "t1"), Timer(200, "wf-b", "t2"),
                          Timer(100, "wf-a", "t3"), Timer(7, "nobody", "t1")};
  AION_REQUIRE_OK(store.Commit(misses));
  BOOST_TEST(TimerIds(store) == (Ids{"wf-a/t1", "wf-b/t1", "wf-a/t2"}),
             boost::test_tools::per_element());

  WriteBatch hit;
  hit.timer_deletes = {Timer(100, "wf-a", "t1")};
  AION_REQUIRE_OK(store.Commit(hit));
  BOOST_TEST(TimerIds(store) == (Ids{"wf-b/t1", "wf-a/t2"}), boost::test_tools::per_element());

  // Started and cancelled within one batch: the delete wins.
  WriteBatch both;
  both.timer_puts = {Timer(50, "wf-c", "t1")};
  both.timer_deletes = {Timer(50, "wf-c", "t1")};
  AION_REQUIRE_OK(store.Commit(both));
  BOOST_TEST(TimerIds(store) == (Ids{"wf-b/t1", "wf-a/t2"}), boost::test_tools::per_element());
}

inline void DedupePutGetDelete(Store& store) {
  AION_CHECK_CODE(store.GetDedupe("req-1").status(), StatusCode::kNotFound);
  AION_CHECK_CODE(store.GetDedupe("").status(), StatusCode::kNotFound);
  WriteBatch put;
  put.dedupe_puts = {Dedupe("req-1", 4), Dedupe("req-2", 0)};
  AION_REQUIRE_OK(store.Commit(put));
  auto got = store.GetDedupe("req-1");
  AION_REQUIRE_OK(got.status());
  AION_CHECK_PROTO_EQ(*got, Dedupe("req-1", 4));
  AION_CHECK_CODE(store.GetDedupe("req-").status(), StatusCode::kNotFound);

  WriteBatch overwrite;
  overwrite.dedupe_puts = {Dedupe("req-1", 9)};
  AION_REQUIRE_OK(store.Commit(overwrite));
  auto again = store.GetDedupe("req-1");
  AION_REQUIRE_OK(again.status());
  BOOST_TEST(again->seq() == 9u);

  WriteBatch del;
  del.dedupe_deletes = {"req-1", "never-written"};
  AION_REQUIRE_OK(store.Commit(del));
  AION_CHECK_CODE(store.GetDedupe("req-1").status(), StatusCode::kNotFound);
  AION_CHECK_CODE(store.GetDedupe("req-2").status(), StatusCode::kOk);
}

inline void OutboxReadsInKeyOrder(Store& store) {
  WriteBatch put;
  for (const char* key : {"k3", "k1", "k20", "k2"}) put.outbox_puts.push_back(Outbox(key, "wf"));
  AION_REQUIRE_OK(store.Commit(put));

  BOOST_TEST(OutboxKeys(store) == (Ids{"k1", "k2", "k20", "k3"}), boost::test_tools::per_element());
  BOOST_TEST(OutboxKeys(store, "k2") == (Ids{"k20", "k3"}), boost::test_tools::per_element());
  BOOST_TEST(OutboxKeys(store, "k10") == (Ids{"k2", "k20", "k3"}),
             boost::test_tools::per_element());
  BOOST_TEST(OutboxKeys(store, "", 2) == (Ids{"k1", "k2"}), boost::test_tools::per_element());
  BOOST_TEST(OutboxKeys(store, "k3").empty());
  BOOST_TEST(OutboxKeys(store, "", 0).empty());
  auto rows = store.ReadOutbox("k20", 1);
  AION_REQUIRE_OK(rows.status());
  BOOST_REQUIRE_EQUAL(rows->size(), 1u);
  AION_CHECK_PROTO_EQ(rows->front(), Outbox("k3", "wf"));

  WriteBatch del;
  del.outbox_deletes = {"k2", "k9"};
  AION_REQUIRE_OK(store.Commit(del));
  BOOST_TEST(OutboxKeys(store) == (Ids{"k1", "k20", "k3"}), boost::test_tools::per_element());
}

inline void EmptyBatchIsOkAndChangesNothing(Store& store) {
  AION_REQUIRE_OK(store.Commit(WriteBatch{}));
  AION_REQUIRE_OK(store.Commit(BatchOf(Append("wf-a", 0, 1))));
  AION_REQUIRE_OK(store.Commit(WriteBatch{}));
  BOOST_TEST(Seqs(store, "wf-a") == SeqList{1}, boost::test_tools::per_element());
  BOOST_TEST(TimerIds(store).empty());
  BOOST_TEST(OutboxKeys(store).empty());
}

// What reader threads saw that a whole commit would never leave behind.
// Counters are atomic; only the thread that counts the first failure writes
// `first_failure`, read after the threads are joined.
struct TornReads {
  std::atomic<int> reads{0};
  std::atomic<int> failures{0};
  std::string first_failure;  // written once, by the thread that counts failure 1

  void Fail(const std::string& what) {
    if (failures.fetch_add(1) == 0) first_failure = what;
  }
};

// Every commit appends 3 events to each of two ids and puts 2 timers and 2
// outbox rows, so one read call must see multiples of these and equal heads.
inline void CheckOneSnapshotOfPairs(Store& store, TornReads& torn) {
  auto history = store.ReadHistory("pair-a", 1, kAll);
  if (!history.ok()) return torn.Fail("ReadHistory: " + history.status().ToString());
  for (std::size_t i = 0; i < history->size(); ++i) {
    if ((*history)[i].seq() != i + 1) return torn.Fail("history not contiguous");
  }
  if (history->size() % 3 != 0) return torn.Fail("history of a partial commit");

  auto running = store.ListByStatus(records::WORKFLOW_STATUS_RUNNING, "", kAll);
  if (!running.ok()) return torn.Fail("ListByStatus: " + running.status().ToString());
  if (running->size() == 1) return torn.Fail("one record of a pair");
  if (running->size() == 2 && (*running)[0].head_seq() != (*running)[1].head_seq()) {
    return torn.Fail("pair heads differ");
  }
  auto timers = store.DueTimers(kForever, kAll);
  if (!timers.ok()) return torn.Fail("DueTimers: " + timers.status().ToString());
  if (timers->size() % 2 != 0) return torn.Fail("odd number of timers");
  auto outbox = store.ReadOutbox("", kAll);
  if (!outbox.ok()) return torn.Fail("ReadOutbox: " + outbox.status().ToString());
  if (outbox->size() % 2 != 0) return torn.Fail("odd number of outbox rows");
  torn.reads.fetch_add(1);
}

inline void ConcurrentReadersSeeWholeCommits(Store& store) {
  constexpr int kCommits = 120;
  constexpr int kReaders = 2;
  TornReads torn;
  std::atomic<bool> writing{true};
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&] {
      while (writing.load()) CheckOneSnapshotOfPairs(store, torn);
      CheckOneSnapshotOfPairs(store, torn);
    });
  }
  Status writer_status;
  for (int i = 0; i < kCommits && writer_status.ok(); ++i) {
    const std::uint64_t head = static_cast<std::uint64_t>(i) * 3;
    WriteBatch batch;
    batch.appends = {Append("pair-a", head, 3), Append("pair-b", head, 3)};
    batch.timer_puts = {Timer(i, "pair-a", "t" + std::to_string(i)),
                        Timer(i, "pair-b", "t" + std::to_string(i))};
    batch.outbox_puts = {Outbox("ob-a-" + std::to_string(i), "pair-a"),
                         Outbox("ob-b-" + std::to_string(i), "pair-b")};
    writer_status = store.Commit(batch);
  }
  writing.store(false);
  for (auto& t : readers) t.join();

  AION_REQUIRE_OK(writer_status);
  BOOST_CHECK_MESSAGE(torn.failures.load() == 0, "first torn read: " << torn.first_failure);
  BOOST_TEST(torn.reads.load() >= kReaders);
  BOOST_TEST(HeadOf(store, "pair-b") == 3u * kCommits);
  BOOST_TEST(TimerIds(store).size() == 2u * kCommits);
}

}  // namespace aion::testing::store_conformance

#define AION_STORE_CONFORMANCE_CASE(name, Fixtures)            \
  BOOST_AUTO_TEST_CASE_TEMPLATE(name, Fixture, Fixtures) {     \
    Fixture fixture;                                           \
    ::aion::testing::store_conformance::name(fixture.store()); \
  }

#define AION_STORE_CONFORMANCE_TESTS(Fixtures)                                    \
  AION_STORE_CONFORMANCE_CASE(AppendThenReadBack, Fixtures)                       \
  AION_STORE_CONFORMANCE_CASE(AppendWithoutEventsReplacesRecord, Fixtures)        \
  AION_STORE_CONFORMANCE_CASE(HeadMismatchAbortsWholeBatch, Fixtures)             \
  AION_STORE_CONFORMANCE_CASE(BadSeqsAreInvalidAndWriteNothing, Fixtures)         \
  AION_STORE_CONFORMANCE_CASE(MalformedRowsAreInvalid, Fixtures)                  \
  AION_STORE_CONFORMANCE_CASE(TwoAppendsToOneIdChain, Fixtures)                   \
  AION_STORE_CONFORMANCE_CASE(ReadHistoryHonoursFromSeqAndLimit, Fixtures)        \
  AION_STORE_CONFORMANCE_CASE(HistoryKeepsRunIdsAcrossRuns, Fixtures)             \
  AION_STORE_CONFORMANCE_CASE(GetWorkflowOfUnknownIdIsNotFound, Fixtures)         \
  AION_STORE_CONFORMANCE_CASE(ListByStatusOrdersPagesAndFollowsChanges, Fixtures) \
  AION_STORE_CONFORMANCE_CASE(DueTimersComeEarliestFirstUpToUntil, Fixtures)      \
  AION_STORE_CONFORMANCE_CASE(TimerDeleteMatchesTimeIdAndTimer, Fixtures)         \
  AION_STORE_CONFORMANCE_CASE(DedupePutGetDelete, Fixtures)                       \
  AION_STORE_CONFORMANCE_CASE(OutboxReadsInKeyOrder, Fixtures)                    \
  AION_STORE_CONFORMANCE_CASE(EmptyBatchIsOkAndChangesNothing, Fixtures)          \
  AION_STORE_CONFORMANCE_CASE(ConcurrentReadersSeeWholeCommits, Fixtures)
