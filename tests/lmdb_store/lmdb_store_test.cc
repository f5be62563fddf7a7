// LmdbStore: the Store conformance suite, plus what only a durable store has
// (reopen, map growth, schema check, SIGKILL at any moment).
#define BOOST_TEST_MODULE lmdb_store_test
#include "aion/lmdb_store/lmdb_store.h"

#include <fcntl.h>
#include <lmdb.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/store_conformance.h"
#include "lmdb_store/crash_batches.h"
#include "support/temp_dir.h"

extern char** environ;

namespace {

using aion::AppendOp;
using aion::HistoryEvent;
using aion::LmdbStore;
using aion::LmdbStoreOptions;
using aion::Status;
using aion::StatusCode;
using aion::WriteBatch;
using aion::testing::TempDir;
using namespace aion::testing::store_conformance;

constexpr std::size_t kTinyMap = 64 * 1024;

std::unique_ptr<LmdbStore> OpenOrDie(const LmdbStoreOptions& options) {
  auto store = LmdbStore::Open(options);
  BOOST_REQUIRE_MESSAGE(store.ok(), "open: " << store.status().ToString());
  return std::move(*store);
}

LmdbStoreOptions OptionsFor(const TempDir& dir, std::size_t initial_map = std::size_t{1} << 30) {
  LmdbStoreOptions options;
  options.directory = dir.path() / "data";
  options.initial_map_size_bytes = initial_map;
  return options;
}

// Owns a temp dir and an LmdbStore in it, opened with `Options`.
template <typename Options>
struct LmdbFixture {
  TempDir dir{"aion-lmdb"};
  std::unique_ptr<LmdbStore> lmdb = OpenOrDie(Options::Make(dir));
  aion::Store& store() { return *lmdb; }
};

struct DefaultOptions {
  static LmdbStoreOptions Make(const TempDir& dir) { return OptionsFor(dir); }
};
// Every case also runs through several map growths.
struct TinyMapOptions {
  static LmdbStoreOptions Make(const TempDir& dir) { return OptionsFor(dir, kTinyMap); }
};
struct NoSyncOptions {
  static LmdbStoreOptions Make(const TempDir& dir) {
    LmdbStoreOptions options = OptionsFor(dir);
    options.sync = false;
    return options;
  }
};

using LmdbFixtures = boost::mpl::list<LmdbFixture<DefaultOptions>, LmdbFixture<TinyMapOptions>,
                                      LmdbFixture<NoSyncOptions>>;

aion::HistoryEvent EventWithPayload(std::uint64_t seq, std::size_t bytes) {
  aion::HistoryEvent event = Event(seq);
  event.mutable_signal_received()->mutable_input()->set_data(
      std::string(bytes, static_cast<char>('a' + seq % 26)));
  return event;
}

aion::AppendOp AppendWithPayload(std::string_view id, std::uint64_t head, std::uint64_t count,
                                 std::size_t bytes) {
  aion::AppendOp op = Append(id, head, count);
  for (auto& event : op.events) event = EventWithPayload(event.seq(), bytes);
  return op;
}

// Reads and writes databases directly, as another build would. Use it only
// while no LmdbStore has the directory open (one per process).
class RawDatabases {
 public:
  explicit RawDatabases(const std::filesystem::path& dir) {
    BOOST_REQUIRE_EQUAL(mdb_env_create(&env_), 0);
    BOOST_REQUIRE_EQUAL(mdb_env_set_maxdbs(env_, 16), 0);
    BOOST_REQUIRE_EQUAL(mdb_env_open(env_, dir.c_str(), 0, 0644), 0);
  }
  ~RawDatabases() { mdb_env_close(env_); }

  // "<absent>" if the key is missing.
  std::string Get(const char* db, std::string_view key) {
    MDB_txn* txn = nullptr;
    BOOST_REQUIRE_EQUAL(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), 0);
    MDB_dbi dbi;
    BOOST_REQUIRE_EQUAL(mdb_dbi_open(txn, db, 0, &dbi), 0);
    MDB_val k{key.size(), const_cast<char*>(key.data())};
    MDB_val v;
    std::string value = "<absent>";
    if (mdb_get(txn, dbi, &k, &v) == 0) value.assign(static_cast<char*>(v.mv_data), v.mv_size);
    mdb_txn_abort(txn);
    return value;
  }

  void Put(const char* db, std::string_view key, std::string_view value) {
    MDB_txn* txn = nullptr;
    BOOST_REQUIRE_EQUAL(mdb_txn_begin(env_, nullptr, 0, &txn), 0);
    MDB_dbi dbi;
    BOOST_REQUIRE_EQUAL(mdb_dbi_open(txn, db, 0, &dbi), 0);
    MDB_val k{key.size(), const_cast<char*>(key.data())};
    MDB_val v{value.size(), const_cast<char*>(value.data())};
    BOOST_REQUIRE_EQUAL(mdb_put(txn, dbi, &k, &v, 0), 0);
    BOOST_REQUIRE_EQUAL(mdb_txn_commit(txn), 0);
  }

 private:
  MDB_env* env_ = nullptr;
};

// The `history` key of (id, seq): id, 0x00, seq big-endian.
std::string HistoryKey(std::string_view id, std::uint64_t seq) {
  std::string key(id);
  key.push_back('\0');
  for (int shift = 56; shift >= 0; shift -= 8) key.push_back(static_cast<char>(seq >> shift));
  return key;
}

std::string BigEndian32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(lmdb_store_conformance)
AION_STORE_CONFORMANCE_TESTS(LmdbFixtures)
BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(lmdb_store)

BOOST_AUTO_TEST_CASE(ReopenKeepsEverything) {
  TempDir dir("aion-lmdb");
  WriteBatch batch;
  batch.appends = {Append("wf-a", 0, 3),
                   Append("wf-b", 0, 1, aion::records::WORKFLOW_STATUS_FAILED)};
  batch.dedupe_puts = {Dedupe("req-1", 3)};
  batch.timer_puts = {Timer(42, "wf-a", "t1")};
  batch.outbox_puts = {Outbox("ob-1", "wf-a")};
  {
    auto store = OpenOrDie(OptionsFor(dir));
    AION_REQUIRE_OK(store->Commit(batch));
  }
  auto store = OpenOrDie(OptionsFor(dir));
  auto record = store->GetWorkflow("wf-a");
  AION_REQUIRE_OK(record.status());
  AION_CHECK_PROTO_EQ(*record, batch.appends[0].record);
  auto events = store->ReadHistory("wf-a", 1, kAll);
  AION_REQUIRE_OK(events.status());
  BOOST_REQUIRE_EQUAL(events->size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) AION_CHECK_PROTO_EQ((*events)[i], batch.appends[0].events[i]);
  BOOST_TEST(ListedIds(*store, aion::records::WORKFLOW_STATUS_FAILED) == Ids{"wf-b"},
             boost::test_tools::per_element());
  auto dedupe = store->GetDedupe("req-1");
  AION_REQUIRE_OK(dedupe.status());
  AION_CHECK_PROTO_EQ(*dedupe, batch.dedupe_puts[0]);
  BOOST_TEST(TimerIds(*store) == Ids{"wf-a/t1"}, boost::test_tools::per_element());
  BOOST_TEST(OutboxKeys(*store) == Ids{"ob-1"}, boost::test_tools::per_element());
  // The reopened store continues from the stored heads.
  AION_CHECK_CODE(store->Commit(BatchOf(Append("wf-a", 0, 1))), StatusCode::kAborted);
  AION_REQUIRE_OK(store->Commit(BatchOf(Append("wf-a", 3, 1))));
}

BOOST_AUTO_TEST_CASE(MapGrowsUntilEveryBatchFits) {
  TempDir dir("aion-lmdb");
  auto store = OpenOrDie(OptionsFor(dir, kTinyMap));
  BOOST_TEST(store->MapSizeBytes() == kTinyMap);
  constexpr std::uint64_t kBatches = 60;
  constexpr std::uint64_t kEventsPerBatch = 8;
  constexpr std::size_t kPayload = 2000;
  for (std::uint64_t b = 0; b < kBatches; ++b) {
    WriteBatch batch =
        BatchOf(AppendWithPayload("grow", b * kEventsPerBatch, kEventsPerBatch, kPayload));
    batch.outbox_puts = {Outbox("ob-" + std::to_string(1000 + b), "grow")};
    AION_REQUIRE_OK(store->Commit(batch));
  }
  // One batch bigger than the whole map so far: grown several times, then retried whole.
  const std::size_t before_big_batch = store->MapSizeBytes();
  AION_REQUIRE_OK(store->Commit(BatchOf(AppendWithPayload("big", 0, 400, 8000))));
  BOOST_TEST(store->MapSizeBytes() >= 4 * before_big_batch);
  BOOST_TEST(before_big_batch >= 16 * kTinyMap);  // ~1 MB of history from a 64 KiB map

  auto events = store->ReadHistory("grow", 1, kAll);
  AION_REQUIRE_OK(events.status());
  BOOST_REQUIRE_EQUAL(events->size(), kBatches * kEventsPerBatch);
  for (std::uint64_t i = 0; i < events->size(); ++i) {
    AION_CHECK_PROTO_EQ((*events)[i], EventWithPayload(i + 1, kPayload));
  }
  BOOST_TEST(OutboxKeys(*store).size() == kBatches);
  BOOST_TEST(Seqs(*store, "big") == Range(1, 400), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(GrowthStopsAtMaxMapSize) {
  TempDir dir("aion-lmdb");
  LmdbStoreOptions options = OptionsFor(dir, kTinyMap);
  options.max_map_size_bytes = 4 * kTinyMap;
  auto store = OpenOrDie(options);
  AION_REQUIRE_OK(store->Commit(BatchOf(Append("small", 0, 1))));

  WriteBatch too_big = BatchOf(AppendWithPayload("big", 0, 200, 4000));
  too_big.dedupe_puts = {Dedupe("req-big", 200)};
  AION_CHECK_CODE(store->Commit(too_big), StatusCode::kResourceExhausted);
  BOOST_TEST(store->MapSizeBytes() == 4 * kTinyMap);
  AION_CHECK_CODE(store->GetWorkflow("big").status(), StatusCode::kNotFound);
  BOOST_TEST(Seqs(*store, "big").empty());
  AION_CHECK_CODE(store->GetDedupe("req-big").status(), StatusCode::kNotFound);

  // Still usable for what fits.
  AION_REQUIRE_OK(store->Commit(BatchOf(Append("small", 1, 1))));
  BOOST_TEST(Seqs(*store, "small") == Range(1, 2), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(SchemaVersionIsWrittenAndChecked) {
  TempDir dir("aion-lmdb");
  const LmdbStoreOptions options = OptionsFor(dir);
  OpenOrDie(options).reset();
  {
    RawDatabases raw(options.directory);
    BOOST_TEST(raw.Get("meta", "schema_version") == BigEndian32(LmdbStore::kSchemaVersion));
    raw.Put("meta", "schema_version", BigEndian32(LmdbStore::kSchemaVersion + 1));
  }
  auto newer = LmdbStore::Open(options);
  AION_CHECK_CODE(newer.status(), StatusCode::kInvalidArgument);
  BOOST_TEST(
      newer.status().message().find(
          "schema version " + std::to_string(LmdbStore::kSchemaVersion + 1)) != std::string::npos,
      newer.status().message());
  {
    RawDatabases raw(options.directory);
    BOOST_TEST(raw.Get("meta", "schema_version") == BigEndian32(LmdbStore::kSchemaVersion + 1));
    raw.Put("meta", "schema_version", BigEndian32(0));
  }
  auto older = LmdbStore::Open(options);
  AION_CHECK_CODE(older.status(), StatusCode::kInvalidArgument);
  BOOST_TEST(older.status().message().find("no migration exists") != std::string::npos,
             older.status().message());
  RawDatabases(options.directory).Put("meta", "schema_version", BigEndian32(1));
  OpenOrDie(options).reset();  // version 1 is upgraded in place
  BOOST_TEST(RawDatabases(options.directory).Get("meta", "schema_version") ==
             BigEndian32(LmdbStore::kSchemaVersion));
}

// Rows of a version 1 directory (every message in full) read as they did,
// beside the compact rows version 2 writes: events of the current run without
// their run id, dedupe entries without their key.
BOOST_AUTO_TEST_CASE(CompactRowsAndVersionOneRowsReadAlike) {
  TempDir dir("aion-lmdb");
  const LmdbStoreOptions options = OptionsFor(dir);
  {
    auto store = OpenOrDie(options);
    WriteBatch batch = BatchOf(AppendRun("new", 0, "run-1", 2));
    batch.dedupe_puts.push_back(Dedupe("start:new", 1));
    AION_REQUIRE_OK(store->Commit(batch));
  }
  {
    RawDatabases raw(options.directory);
    const std::string started = raw.Get("history", HistoryKey("new", 1));
    const std::string signal = raw.Get("history", HistoryKey("new", 2));
    BOOST_TEST(started.find("run-1") != std::string::npos);  // kept: later events take it
    BOOST_TEST(signal.substr(0, 1) == std::string(1, '\0'));
    BOOST_TEST(signal.find("run-1") == std::string::npos);
    const std::string dedupe = raw.Get("dedupe", "start:new");
    BOOST_TEST(dedupe.substr(0, 1) == std::string(1, '\0'));
    BOOST_TEST(dedupe.find("start:new") == std::string::npos);
    // What version 1 wrote: the same rows in full.
    const AppendOp old_run = AppendRun("old", 0, "run-9", 2);
    for (const auto& e : old_run.events) {
      raw.Put("history", HistoryKey("old", e.seq()), e.SerializeAsString());
    }
    raw.Put("workflows", "old", old_run.record.SerializeAsString());
    raw.Put("dedupe", "start:old", Dedupe("start:old", 1).SerializeAsString());
  }
  auto store = OpenOrDie(options);
  const AppendOp written = AppendRun("new", 0, "run-1", 2);
  const AppendOp old_run = AppendRun("old", 0, "run-9", 2);
  for (std::uint64_t from = 1; from <= 3; ++from) {
    auto fresh = store->ReadHistory("new", from, kAll);
    auto old = store->ReadHistory("old", from, kAll);
    AION_REQUIRE_OK(fresh.status());
    AION_REQUIRE_OK(old.status());
    BOOST_REQUIRE_EQUAL(fresh->size(), 4 - from);
    BOOST_REQUIRE_EQUAL(old->size(), 4 - from);
    for (std::size_t i = 0; i < fresh->size(); ++i) {
      AION_CHECK_PROTO_EQ((*fresh)[i], written.events[from - 1 + i]);
      AION_CHECK_PROTO_EQ((*old)[i], old_run.events[from - 1 + i]);
    }
  }
  auto fresh_dedupe = store->GetDedupe("start:new");
  auto old_dedupe = store->GetDedupe("start:old");
  AION_REQUIRE_OK(fresh_dedupe.status());
  AION_REQUIRE_OK(old_dedupe.status());
  AION_CHECK_PROTO_EQ(*fresh_dedupe, Dedupe("start:new", 1));
  AION_CHECK_PROTO_EQ(*old_dedupe, Dedupe("start:old", 1));
}

// A compact row that does not parse, or a compact event with no
// WorkflowStarted before it, is kInternal: the read loses nothing else.
BOOST_AUTO_TEST_CASE(MalformedCompactRowsAreInternal) {
  TempDir dir("aion-lmdb");
  const LmdbStoreOptions options = OptionsFor(dir);
  OpenOrDie(options).reset();
  {
    RawDatabases raw(options.directory);
    raw.Put("history", HistoryKey("torn", 1), std::string("\0\xff\xff\xff", 4));
    raw.Put("dedupe", "torn", std::string("\0\x0a\x7f", 3));
    HistoryEvent orphan = Event(1, "");
    raw.Put("history", HistoryKey("orphan", 1), std::string(1, '\0') + orphan.SerializeAsString());
  }
  auto store = OpenOrDie(options);
  AION_CHECK_CODE(store->ReadHistory("torn", 1, kAll).status(), StatusCode::kInternal);
  AION_CHECK_CODE(store->GetDedupe("torn").status(), StatusCode::kInternal);
  auto orphan = store->ReadHistory("orphan", 1, kAll);
  AION_CHECK_CODE(orphan.status(), StatusCode::kInternal);
  BOOST_TEST(orphan.status().message().find("no WorkflowStarted precedes it") != std::string::npos,
             orphan.status().message());
  AION_REQUIRE_OK(store->Commit(BatchOf(Append("fine", 0, 2))));
  BOOST_TEST(Seqs(*store, "fine") == Range(1, 2), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(OneStorePerDirectoryPerProcess) {
  TempDir dir("aion-lmdb");
  const LmdbStoreOptions options = OptionsFor(dir);
  auto first = OpenOrDie(options);
  LmdbStoreOptions same_dir_other_spelling = options;
  same_dir_other_spelling.directory = options.directory / ".";
  AION_CHECK_CODE(LmdbStore::Open(same_dir_other_spelling).status(), StatusCode::kUnavailable);
  first.reset();
  OpenOrDie(same_dir_other_spelling);
}

BOOST_AUTO_TEST_CASE(OpenCreatesDirectoriesAndChecksOptions) {
  TempDir dir("aion-lmdb");
  LmdbStoreOptions nested = OptionsFor(dir);
  nested.directory = dir.path() / "a" / "b" / "c";
  OpenOrDie(nested);
  BOOST_TEST(std::filesystem::exists(nested.directory / "data.mdb"));

  AION_CHECK_CODE(LmdbStore::Open(LmdbStoreOptions{}).status(), StatusCode::kInvalidArgument);
  LmdbStoreOptions inverted = OptionsFor(dir);
  inverted.max_map_size_bytes = inverted.initial_map_size_bytes / 2;
  AION_CHECK_CODE(LmdbStore::Open(inverted).status(), StatusCode::kInvalidArgument);
  LmdbStoreOptions file_in_the_way = OptionsFor(dir);
  file_in_the_way.directory = nested.directory / "data.mdb" / "sub";
  AION_CHECK_CODE(LmdbStore::Open(file_in_the_way).status(), StatusCode::kUnavailable);
}

BOOST_AUTO_TEST_CASE(KeysBeyondLmdbLimitAreInvalid) {
  TempDir dir("aion-lmdb");
  auto store = OpenOrDie(OptionsFor(dir));
  const std::string huge(600, 'z');
  AION_CHECK_CODE(store->Commit(BatchOf(Append(huge, 0, 1))), StatusCode::kInvalidArgument);
  WriteBatch huge_dedupe;
  huge_dedupe.dedupe_puts = {Dedupe(huge, 1)};
  AION_CHECK_CODE(store->Commit(huge_dedupe), StatusCode::kInvalidArgument);
  WriteBatch huge_timer;
  huge_timer.timer_puts = {Timer(1, "wf", huge)};
  AION_CHECK_CODE(store->Commit(huge_timer), StatusCode::kInvalidArgument);
  AION_CHECK_CODE(store->GetWorkflow(huge).status(), StatusCode::kNotFound);
  AION_CHECK_CODE(store->GetDedupe(huge).status(), StatusCode::kNotFound);
  BOOST_TEST(Seqs(*store, huge).empty());

  // Cursors past the key limit still page correctly.
  WriteBatch rows;
  rows.outbox_puts = {Outbox("a", "wf"), Outbox("zz", "wf")};
  for (const char* id : {"a", "zz"}) rows.appends.push_back(Append(id, 0, 1));
  AION_REQUIRE_OK(store->Commit(rows));
  BOOST_TEST(OutboxKeys(*store, std::string(600, 'a')) == Ids{"zz"},
             boost::test_tools::per_element());
  BOOST_TEST(OutboxKeys(*store, huge).empty());
  BOOST_TEST(
      ListedIds(*store, aion::records::WORKFLOW_STATUS_RUNNING, std::string(600, 'a')) == Ids{"zz"},
      boost::test_tools::per_element());
  BOOST_TEST(ListedIds(*store, aion::records::WORKFLOW_STATUS_RUNNING, huge).empty());
}

// ---- SIGKILL crash test ---------------------------------------------------

namespace {

namespace crash = aion::testing::crash;

// A running lmdb_crash_child with its stdout on a pipe; killed and reaped at
// the latest on destruction. Used by the test thread only.
class CrashChild {
 public:
  CrashChild(const std::filesystem::path& dir, std::uint64_t first_batch)
      : CrashChild({AION_LMDB_CRASH_CHILD, dir.string(), std::to_string(first_batch),
                    std::to_string(128 * 1024)}) {}
  // Any child program that reports on stdout, one number a line.
  explicit CrashChild(std::vector<std::string> args) {
    int fds[2];
    BOOST_REQUIRE_EQUAL(pipe(fds), 0);
    read_fd_ = fds[0];
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string& path = args[0];
    const int rc = posix_spawn(&pid_, path.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    BOOST_REQUIRE_MESSAGE(rc == 0, "spawn " << path << ": " << std::strerror(rc));
  }
  ~CrashChild() {
    if (pid_ > 0) KillAndReap();
    close(read_fd_);
  }

  // Waits until the child reported a first commit (or `timeout` passed).
  bool WaitForFirstReport(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (output_.find('\n') == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd pfd{read_fd_, POLLIN, 0};
      if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
      if (!ReadSome()) return false;  // EOF: the child died on its own
    }
    return true;
  }

  // SIGKILL, reap, and return how the child ended (-1 if not by SIGKILL).
  int KillAndReap() {
    kill(pid_, SIGKILL);
    int wstatus = 0;
    waitpid(pid_, &wstatus, 0);
    pid_ = -1;
    while (ReadSome()) {
    }
    return WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL ? SIGKILL : -1;
  }

  // The last batch number on a complete line; 0 if none.
  std::uint64_t LastReported() const {
    const std::size_t end = output_.rfind('\n');
    if (end == std::string::npos) return 0;
    const std::size_t begin = output_.rfind('\n', end - 1);
    const std::size_t from = begin == std::string::npos || end == 0 ? 0 : begin + 1;
    return std::stoull(output_.substr(from, end - from));
  }

 private:
  bool ReadSome() {
    char buf[4096];
    const ssize_t n = read(read_fd_, buf, sizeof buf);
    if (n <= 0) return false;
    output_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  int read_fd_ = -1;
  std::string output_;
};

// Checks the store holds exactly batches 1..last, each whole.
void CheckExactlyBatchesUpTo(aion::Store& store, std::uint64_t last) {
  for (std::uint64_t n = 1; n <= last; ++n) {
    AION_CHECK_CODE(store.GetDedupe(crash::TagOf(n)).status(), StatusCode::kOk);
  }
  AION_CHECK_CODE(store.GetDedupe(crash::TagOf(last + 1)).status(), StatusCode::kNotFound);

  Ids want_timers;
  for (std::uint64_t n = 1; n <= last; ++n) {
    want_timers.push_back(crash::WorkflowIdOf(n) + "/" + crash::TimerIdOf(n));
  }
  BOOST_TEST(TimerIds(store) == want_timers, boost::test_tools::per_element());
  BOOST_TEST(OutboxKeys(store) == (last == 0 ? Ids{} : Ids{crash::OutboxKeyOf(last)}),
             boost::test_tools::per_element());

  for (std::uint64_t k = 0; k < crash::kWorkflowCount; ++k) {
    const std::string id = crash::WorkflowIdOf(k);
    Ids want_tags;
    for (std::uint64_t n = 1; n <= last; ++n) {
      if (crash::WorkflowIdOf(n) != id) continue;
      want_tags.insert(want_tags.end(), crash::EventCountOf(n), crash::TagOf(n));
    }
    auto events = store.ReadHistory(id, 1, kAll);
    AION_REQUIRE_OK(events.status());
    Ids tags;
    for (const auto& e : *events) tags.push_back(e.run_id());
    BOOST_TEST(tags == want_tags, boost::test_tools::per_element());
    auto record = store.GetWorkflow(id);
    if (want_tags.empty()) {
      AION_CHECK_CODE(record.status(), StatusCode::kNotFound);
    } else {
      AION_REQUIRE_OK(record.status());
      BOOST_TEST(record->head_seq() == want_tags.size());
      BOOST_TEST(record->run_id() == want_tags.back());
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(SigkillNeverLosesReportedBatchesNorLeavesHalfOfOne) {
  TempDir dir("aion-lmdb");
  const LmdbStoreOptions options = OptionsFor(dir, 128 * 1024);
  std::random_device seed_source;
  const unsigned seed = seed_source();
  BOOST_TEST_MESSAGE("crash test seed " << seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> kill_after_ms(0, 200);

  std::uint64_t committed = 0;  // batches known to be in the store
  for (int round = 0; round < 6; ++round) {
    std::uint64_t reported = 0;
    {
      CrashChild child(options.directory, committed + 1);
      BOOST_REQUIRE_MESSAGE(child.WaitForFirstReport(std::chrono::seconds(30)),
                            "round " << round << ": the child reported no commit");
      std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms(rng)));
      BOOST_REQUIRE_MESSAGE(child.KillAndReap() == SIGKILL,
                            "round " << round << ": the child ended before the kill");
      reported = child.LastReported();
    }
    BOOST_REQUIRE_GT(reported, committed);
    auto store = OpenOrDie(options);
    // The kill may land after a commit and before its report: one more batch.
    const bool unreported_commit = store->GetDedupe(crash::TagOf(reported + 1)).ok();
    committed = reported + (unreported_commit ? 1 : 0);
    BOOST_TEST_MESSAGE("round " << round << ": reported " << reported << ", found " << committed);
    CheckExactlyBatchesUpTo(*store, committed);
  }
}

// LMDB resets its reader table when the opening process is the only one with
// the environment open; a dead reader's slot survives only while another
// process (here a live reader) keeps it open, and then Open must clear it.
BOOST_AUTO_TEST_CASE(StaleReaderOfAKilledProcessIsClearedAtOpen) {
  TempDir dir("aion-lmdb");
  const LmdbStoreOptions options = OptionsFor(dir);
  OpenOrDie(options).reset();  // create the environment
  CrashChild live_reader({AION_LMDB_READER_CHILD, options.directory.string()});
  BOOST_REQUIRE(live_reader.WaitForFirstReport(std::chrono::seconds(30)));
  {
    CrashChild killed_reader({AION_LMDB_READER_CHILD, options.directory.string()});
    BOOST_REQUIRE(killed_reader.WaitForFirstReport(std::chrono::seconds(30)));
    BOOST_REQUIRE_EQUAL(killed_reader.KillAndReap(), SIGKILL);
  }
  auto store = OpenOrDie(options);
  BOOST_TEST(store->StaleReadersCleared() == 1);  // the killed one, not the live one
  store.reset();
  BOOST_TEST(OpenOrDie(options)->StaleReadersCleared() == 0);  // nothing left to clear
}

BOOST_AUTO_TEST_SUITE_END()
