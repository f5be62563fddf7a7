#include "aion/lmdb_store/lmdb_store.h"

#include <lmdb.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "aion/engine/write_batch_checks.h"
#include "compact_rows.h"
#include "keys.h"
#include "map_resize_gate.h"

namespace aion {
namespace {

namespace keys = lmdb_keys;

constexpr std::string_view kSchemaVersionKey = "schema_version";
constexpr unsigned kDatabaseCount = 7;

MDB_val ToVal(std::string_view bytes) {
  return MDB_val{bytes.size(), const_cast<char*>(bytes.data())};
}

std::string_view ToView(const MDB_val& val) {
  return {static_cast<const char*>(val.mv_data), val.mv_size};
}

StatusCode CodeForMdbError(int rc) {
  switch (rc) {
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case MDB_READERS_FULL:
    case ENOSPC:
    case EDQUOT:
    case ENOMEM:
      return StatusCode::kResourceExhausted;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_DBS_FULL:
    case MDB_PAGE_FULL:
    case EINVAL:  // a bad argument to LMDB, or a message that would not serialize
      return StatusCode::kInternal;
    case MDB_BAD_VALSIZE:
      return StatusCode::kInvalidArgument;
    default:
      return StatusCode::kUnavailable;
  }
}

Status MdbError(int rc, std::string_view what) {
  return {CodeForMdbError(rc), "lmdb " + std::string(what) + ": " + mdb_strerror(rc)};
}

template <typename Message>
Status ParseStored(const MDB_val& val, Message& message, std::string_view what) {
  if (!message.ParseFromArray(val.mv_data, static_cast<int>(val.mv_size))) {
    return Internal("stored " + std::string(what) + " does not parse");
  }
  return Status::Ok();
}

// Parses a `history` or `dedupe` value in either form (compact_rows.h);
// `compact` says which it was.
template <typename Message>
Status ParseRow(const MDB_val& val, Message& message, std::string_view what, bool& compact) {
  return ParseStored(ToVal(lmdb_compact::MessageBytes(ToView(val), compact)), message, what);
}

// Serializes straight into the page LMDB reserves for the value.
int PutMessage(MDB_txn* txn, MDB_dbi dbi, std::string_view key,
               const google::protobuf::MessageLite& message) {
  MDB_val k = ToVal(key);
  MDB_val v{message.ByteSizeLong(), nullptr};
  if (int rc = mdb_put(txn, dbi, &k, &v, MDB_RESERVE)) return rc;
  return message.SerializeToArray(v.mv_data, static_cast<int>(v.mv_size)) ? 0 : EINVAL;
}

// Like PutMessage, in the compact form (compact_rows.h).
int PutCompact(MDB_txn* txn, MDB_dbi dbi, std::string_view key,
               const google::protobuf::MessageLite& message) {
  MDB_val k = ToVal(key);
  MDB_val v{lmdb_compact::CompactSize(message), nullptr};
  if (int rc = mdb_put(txn, dbi, &k, &v, MDB_RESERVE)) return rc;
  return lmdb_compact::WriteCompact(message, static_cast<char*>(v.mv_data), v.mv_size) ? 0 : EINVAL;
}

// A history event, compact when `record` implies its run id.
int PutEvent(MDB_txn* txn, MDB_dbi dbi, std::string_view key, const HistoryEvent& event,
             const WorkflowRecord& record) {
  if (!lmdb_compact::ImpliesRunId(event, record)) return PutMessage(txn, dbi, key, event);
  HistoryEvent compact = event;
  compact.clear_run_id();
  return PutCompact(txn, dbi, key, compact);
}

int PutEmpty(MDB_txn* txn, MDB_dbi dbi, std::string_view key) {
  MDB_val k = ToVal(key);
  MDB_val v{0, nullptr};
  return mdb_put(txn, dbi, &k, &v, 0);
}

// Deleting an absent key is not an error: deletes are idempotent.
int DeleteKey(MDB_txn* txn, MDB_dbi dbi, std::string_view key) {
  MDB_val k = ToVal(key);
  int rc = mdb_del(txn, dbi, &k, nullptr);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

#define AION_RETURN_IF_MDB_ERROR(expr)        \
  do {                                        \
    if (int mdb_rc_ = (expr)) return mdb_rc_; \
  } while (0)

// How one attempt at a write transaction ended: a plain value. `mdb_rc` is
// the LMDB code that ended it (0 if none), so the caller can tell a full map
// from the rest.
struct Attempt {
  int mdb_rc = 0;
  Status status;

  static Attempt Mdb(int rc, std::string_view what) { return {rc, MdbError(rc, what)}; }
  static Attempt Fail(Status status) { return {0, std::move(status)}; }
};

// Aborts a write transaction that was not handed to mdb_txn_commit.
struct TxnAborter {
  void operator()(MDB_txn* txn) const { mdb_txn_abort(txn); }
};
using TxnPtr = std::unique_ptr<MDB_txn, TxnAborter>;

// Directories with an LmdbStore open in this process: LMDB's file locks break
// if one process opens the same environment twice. Thread-safe.
class OpenDirectories {
 public:
  static bool Claim(const std::string& dir) {
    std::lock_guard lock(Mu());
    return Dirs().insert(dir).second;
  }
  static void Release(const std::string& dir) {
    std::lock_guard lock(Mu());
    Dirs().erase(dir);
  }

 private:
  static std::mutex& Mu() {
    static std::mutex mu;
    return mu;
  }
  static std::set<std::string>& Dirs() {
    static std::set<std::string> dirs;
    return dirs;
  }
};

std::size_t RoundUpToPage(std::size_t bytes) {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}

// The data file may have grown past the configured start in an earlier run;
// starting smaller would only cost an immediate MDB_MAP_FULL and regrowth.
std::size_t StartingMapSize(const LmdbStoreOptions& options) {
  std::error_code ec;
  const auto file_size = std::filesystem::file_size(options.directory / "data.mdb", ec);
  const std::size_t existing = ec ? 0 : static_cast<std::size_t>(file_size);
  return RoundUpToPage(std::max(options.initial_map_size_bytes, existing));
}

Status CheckOptions(const LmdbStoreOptions& options) {
  if (options.directory.empty()) return InvalidArgument("lmdb store: directory is empty");
  if (options.initial_map_size_bytes == 0) {
    return InvalidArgument("lmdb store: initial_map_size_bytes must be positive");
  }
  if (options.max_map_size_bytes < options.initial_map_size_bytes) {
    return InvalidArgument("lmdb store: max_map_size_bytes is below initial_map_size_bytes");
  }
  if (options.max_readers == 0) return InvalidArgument("lmdb store: max_readers must be positive");
  return Status::Ok();
}

// The handles of the named databases, valid for the environment's lifetime
// once the transaction that opened them committed.
struct Databases {
  MDB_dbi history = 0;
  MDB_dbi workflows = 0;
  MDB_dbi by_status = 0;
  MDB_dbi timers = 0;
  MDB_dbi dedupe = 0;
  MDB_dbi outbox = 0;
  MDB_dbi meta = 0;
};

// What the store held for a workflow id before the batch. A plain value.
struct StoredWorkflow {
  std::uint64_t head = 0;
  std::optional<WorkflowStatus> status;  // nullopt: no record yet
};
using StoredWorkflows = std::unordered_map<std::string, StoredWorkflow>;

}  // namespace

namespace lmdb_internal {

// The LMDB environment of one LmdbStore, with the locks that make it safe to
// share: any thread may read, `commit_mu` serializes writers and `gate` keeps
// transactions out of a map resize. Owned by its LmdbStore; closing the
// environment and releasing the directory claim happen in the destructor.
struct Environment {
  LmdbStoreOptions options;
  std::string claimed_dir;  // released in the destructor
  MDB_env* mdb = nullptr;
  Databases db;
  std::size_t max_key_size = 0;
  int stale_readers_cleared = 0;  // by mdb_reader_check at open
  std::mutex commit_mu;           // one write transaction attempt at a time, with its regrowth
  MapResizeGate gate;             // every transaction holds it shared; a resize exclusively

  ~Environment() {
    if (mdb != nullptr) mdb_env_close(mdb);
    if (!claimed_dir.empty()) OpenDirectories::Release(claimed_dir);
  }

  Status OpenEnvironment();
  Attempt SetUpDatabases(MDB_txn* txn);
  Status GrowMap();
  Status AdoptMapSizeOfOtherProcess();
  template <typename Body>
  Status RunWriteTxn(Body&& body);
  template <typename Body>
  Attempt AttemptWriteTxn(Body& body);

  Result<StoredWorkflows> CheckHeads(MDB_txn* txn, const WriteBatch& batch);
  // The stored record of `workflow_id`; nullopt when there is none.
  Result<std::optional<WorkflowRecord>> ReadRecord(MDB_txn* txn, std::string_view workflow_id);
  Result<StoredWorkflow> ReadStoredWorkflow(MDB_txn* txn, std::string_view workflow_id);
  Result<std::string> RunOfCompactEvent(MDB_txn* txn, std::string_view workflow_id,
                                        std::uint64_t seq);
  int ApplyAppends(MDB_txn* txn, const WriteBatch& batch, StoredWorkflows& workflows);
  int ApplyRows(MDB_txn* txn, const WriteBatch& batch);
  Attempt WriteBatchInTxn(MDB_txn* txn, const WriteBatch& batch);

  bool FitsKey(std::string_view key) const { return !key.empty() && key.size() <= max_key_size; }
};

}  // namespace lmdb_internal

using lmdb_internal::Environment;

namespace {

// A short read-only transaction holding the resize gate shared, aborted on
// destruction. MDB_NOTLS lets it run on any thread; one thread uses it.
class ReadTxn {
 public:
  explicit ReadTxn(Environment& env) : env_(env) {}
  ~ReadTxn() {
    if (txn_ != nullptr) {
      mdb_txn_abort(txn_);
      env_.gate.ExitShared();
    }
  }
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;

  Status Begin() {
    for (;;) {
      env_.gate.EnterShared();
      int rc = mdb_txn_begin(env_.mdb, nullptr, MDB_RDONLY, &txn_);
      if (rc == 0) return Status::Ok();
      txn_ = nullptr;
      env_.gate.ExitShared();
      if (rc != MDB_MAP_RESIZED) return MdbError(rc, "begin read transaction");
      AION_RETURN_IF_ERROR(env_.AdoptMapSizeOfOtherProcess());
    }
  }
  MDB_txn* get() const { return txn_; }

 private:
  Environment& env_;
  MDB_txn* txn_ = nullptr;
};

// An LMDB cursor closed on destruction (read-only transactions need it
// closed explicitly). Used by one thread, inside its transaction's lifetime.
class Cursor {
 public:
  Cursor() = default;
  ~Cursor() {
    if (cursor_ != nullptr) mdb_cursor_close(cursor_);
  }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;

  int Open(MDB_txn* txn, MDB_dbi dbi) { return mdb_cursor_open(txn, dbi, &cursor_); }
  // Moves to the first key >= `key` (the first key if `key` is empty).
  int Seek(std::string_view key, MDB_val& k, MDB_val& v) {
    if (key.empty()) return mdb_cursor_get(cursor_, &k, &v, MDB_FIRST);
    k = ToVal(key);
    return mdb_cursor_get(cursor_, &k, &v, MDB_SET_RANGE);
  }
  int Next(MDB_val& k, MDB_val& v) { return mdb_cursor_get(cursor_, &k, &v, MDB_NEXT); }
  int Prev(MDB_val& k, MDB_val& v) { return mdb_cursor_get(cursor_, &k, &v, MDB_PREV); }

 private:
  MDB_cursor* cursor_ = nullptr;
};

// Calls visit(key, value) on the entries with key >= `from`, in key order,
// while it returns true. `visit` returns Result<bool>.
template <typename Visit>
Status ScanFrom(MDB_txn* txn, MDB_dbi dbi, std::string_view from, Visit&& visit) {
  Cursor cursor;
  if (int rc = cursor.Open(txn, dbi)) return MdbError(rc, "open cursor");
  MDB_val k;
  MDB_val v;
  for (int rc = cursor.Seek(from, k, v); rc != MDB_NOTFOUND; rc = cursor.Next(k, v)) {
    if (rc != 0) return MdbError(rc, "cursor read");
    Result<bool> more = visit(ToView(k), v);
    if (!more.ok()) return more.status();
    if (!*more) break;
  }
  return Status::Ok();
}

// Like ScanFrom, over the keys > `after`. `after` may exceed LMDB's key size
// limit (a caller's cursor), so the seek uses a prefix and skips up to `after`.
template <typename Visit>
Status ScanAfter(MDB_txn* txn, MDB_dbi dbi, std::string_view after, std::size_t max_key_size,
                 Visit&& visit) {
  const std::string_view seek = after.substr(0, std::min(after.size(), max_key_size));
  return ScanFrom(txn, dbi, seek, [&](std::string_view key, const MDB_val& v) -> Result<bool> {
    if (key <= after) return true;
    return visit(key, v);
  });
}

}  // namespace

Status Environment::OpenEnvironment() {
  if (int rc = mdb_env_create(&mdb)) return MdbError(rc, "create environment");
  if (int rc = mdb_env_set_maxdbs(mdb, kDatabaseCount)) return MdbError(rc, "set max dbs");
  if (int rc = mdb_env_set_maxreaders(mdb, options.max_readers)) {
    return MdbError(rc, "set max readers");
  }
  if (int rc = mdb_env_set_mapsize(mdb, StartingMapSize(options))) {
    return MdbError(rc, "set map size");
  }
  const unsigned flags = MDB_NOTLS | (options.sync ? 0u : static_cast<unsigned>(MDB_NOSYNC));
  if (int rc = mdb_env_open(mdb, options.directory.c_str(), flags, 0644)) {
    return MdbError(rc, "open environment in " + options.directory.string());
  }
  if (int rc = mdb_reader_check(mdb, &stale_readers_cleared)) {
    return MdbError(rc, "reader check");
  }
  if (stale_readers_cleared > 0) {
    spdlog::warn("lmdb store {}: cleared {} reader slots of dead processes",
                 options.directory.string(), stale_readers_cleared);
  }
  max_key_size = static_cast<std::size_t>(mdb_env_get_maxkeysize(mdb));
  return RunWriteTxn([this](MDB_txn* txn) { return SetUpDatabases(txn); });
}

Attempt Environment::SetUpDatabases(MDB_txn* txn) {
  const std::pair<const char*, MDB_dbi*> named[] = {
      {"history", &db.history}, {"workflows", &db.workflows}, {"by_status", &db.by_status},
      {"timers", &db.timers},   {"dedupe", &db.dedupe},       {"outbox", &db.outbox},
      {"meta", &db.meta},
  };
  for (const auto& [name, dbi] : named) {
    if (int rc = mdb_dbi_open(txn, name, MDB_CREATE, dbi)) {
      return Attempt::Mdb(rc, std::string("open database ") + name);
    }
  }
  MDB_val k = ToVal(kSchemaVersionKey);
  MDB_val v;
  int rc = mdb_get(txn, db.meta, &k, &v);
  if (rc == MDB_NOTFOUND) {
    const std::string version = keys::EncodeUint32(LmdbStore::kSchemaVersion);
    MDB_val value = ToVal(version);
    rc = mdb_put(txn, db.meta, &k, &value, 0);
    return rc == 0 ? Attempt{} : Attempt::Mdb(rc, "write schema version");
  }
  if (rc != 0) return Attempt::Mdb(rc, "read schema version");
  if (v.mv_size != 4) return Attempt::Fail(Internal("lmdb store: malformed schema version"));
  const std::uint32_t stored = keys::DecodeUint32(ToView(v));
  if (stored == 1) {
    // Version 2 only adds compact rows; version 1 rows read as they are.
    const std::string version = keys::EncodeUint32(LmdbStore::kSchemaVersion);
    MDB_val value = ToVal(version);
    rc = mdb_put(txn, db.meta, &k, &value, 0);
    return rc == 0 ? Attempt{} : Attempt::Mdb(rc, "upgrade schema version");
  }
  if (stored != LmdbStore::kSchemaVersion) {
    return Attempt::Fail(InvalidArgument(
        "lmdb store " + options.directory.string() + " has schema version " +
        std::to_string(stored) + " but this build reads version " +
        std::to_string(LmdbStore::kSchemaVersion) +
        (stored > LmdbStore::kSchemaVersion ? "; run a newer aion" : "; no migration exists")));
  }
  return {};
}

Status Environment::GrowMap() {
  ExclusiveGateLock lock(gate);
  MDB_envinfo info;
  if (int rc = mdb_env_info(mdb, &info)) return MdbError(rc, "env info");
  const std::size_t current = info.me_mapsize;
  if (current >= options.max_map_size_bytes) {
    return {StatusCode::kResourceExhausted, "lmdb store " + options.directory.string() +
                                                ": map full at " + std::to_string(current) +
                                                " bytes, the max_map_size_bytes limit"};
  }
  const std::size_t max = options.max_map_size_bytes;
  const std::size_t next = current > max / 2 ? max : current * 2;
  if (int rc = mdb_env_set_mapsize(mdb, next)) return MdbError(rc, "grow map");
  spdlog::info("lmdb store {}: map grown from {} to {} bytes", options.directory.string(), current,
               next);
  return Status::Ok();
}

// Another process grew the map (MDB_MAP_RESIZED): size 0 adopts its size.
Status Environment::AdoptMapSizeOfOtherProcess() {
  ExclusiveGateLock lock(gate);
  if (int rc = mdb_env_set_mapsize(mdb, 0)) return MdbError(rc, "adopt map size");
  return Status::Ok();
}

// Runs `body` (Attempt(MDB_txn*)) in one write transaction and commits it. On
// MDB_MAP_FULL the transaction is aborted, the map grown and `body` run again
// from scratch, so a batch is written whole or not at all.
template <typename Body>
Status Environment::RunWriteTxn(Body&& body) {
  std::lock_guard lock(commit_mu);
  for (;;) {
    Attempt attempt = AttemptWriteTxn(body);
    if (attempt.mdb_rc == MDB_MAP_FULL) {
      AION_RETURN_IF_ERROR(GrowMap());
    } else if (attempt.mdb_rc == MDB_MAP_RESIZED) {
      AION_RETURN_IF_ERROR(AdoptMapSizeOfOtherProcess());
    } else {
      return attempt.status;
    }
  }
}

template <typename Body>
Attempt Environment::AttemptWriteTxn(Body& body) {
  SharedGateLock lock(gate);
  MDB_txn* raw = nullptr;
  if (int rc = mdb_txn_begin(mdb, nullptr, 0, &raw)) {
    return Attempt::Mdb(rc, "begin write transaction");
  }
  TxnPtr txn(raw);
  Attempt attempt = body(txn.get());
  if (!attempt.status.ok()) return attempt;
  // mdb_txn_commit frees the transaction whether or not it succeeds.
  if (int rc = mdb_txn_commit(txn.release())) return Attempt::Mdb(rc, "commit");
  return {};
}

Result<std::optional<WorkflowRecord>> Environment::ReadRecord(MDB_txn* txn,
                                                              std::string_view workflow_id) {
  MDB_val k = ToVal(workflow_id);
  MDB_val v;
  int rc = mdb_get(txn, db.workflows, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<WorkflowRecord>();
  if (rc != 0) return MdbError(rc, "read workflow record");
  std::optional<WorkflowRecord> record(std::in_place);
  AION_RETURN_IF_ERROR(ParseStored(v, *record, "workflow record"));
  return record;
}

Result<StoredWorkflow> Environment::ReadStoredWorkflow(MDB_txn* txn, std::string_view workflow_id) {
  Result<std::optional<WorkflowRecord>> record = ReadRecord(txn, workflow_id);
  if (!record.ok()) return record.status();
  if (!*record) return StoredWorkflow{};
  return StoredWorkflow{(*record)->head_seq(), (*record)->status()};
}

// Compares every expected head with the stored head, or with the head an
// earlier append of this batch left. Returns the stored state of every id.
Result<StoredWorkflows> Environment::CheckHeads(MDB_txn* txn, const WriteBatch& batch) {
  StoredWorkflows stored;
  std::unordered_map<std::string_view, std::uint64_t> batch_heads;
  for (const AppendOp& op : batch.appends) {
    auto it = stored.find(op.workflow_id);
    if (it == stored.end()) {
      Result<StoredWorkflow> read = ReadStoredWorkflow(txn, op.workflow_id);
      if (!read.ok()) return read.status();
      it = stored.emplace(op.workflow_id, *read).first;
    }
    auto in_batch = batch_heads.find(op.workflow_id);
    const std::uint64_t head = in_batch != batch_heads.end() ? in_batch->second : it->second.head;
    if (op.expected_head != head) {
      return Aborted("append to '" + op.workflow_id + "': expected head " +
                     std::to_string(op.expected_head) + ", stored head " + std::to_string(head));
    }
    batch_heads[op.workflow_id] = op.record.head_seq();
  }
  return stored;
}

// The run id of compact event `seq`: the record's when the event belongs to
// the current run, else that of the latest WorkflowStarted before it (a run
// that has since continued as new).
Result<std::string> Environment::RunOfCompactEvent(MDB_txn* txn, std::string_view workflow_id,
                                                   std::uint64_t seq) {
  Result<std::optional<WorkflowRecord>> record = ReadRecord(txn, workflow_id);
  if (!record.ok()) return record.status();
  if (*record && (*record)->run_start_seq() > 0 && seq > (*record)->run_start_seq()) {
    return (*record)->run_id();
  }
  Cursor cursor;
  if (int open = cursor.Open(txn, db.history)) return MdbError(open, "open cursor");
  const std::string prefix = keys::HistoryPrefix(workflow_id);
  MDB_val k;
  MDB_val v;
  int rc = 0;
  for (rc = cursor.Seek(keys::HistoryKey(workflow_id, seq), k, v);
       rc == 0 && ToView(k).starts_with(prefix); rc = cursor.Prev(k, v)) {
    HistoryEvent event;
    bool compact = false;
    AION_RETURN_IF_ERROR(ParseRow(v, event, "history event", compact));
    if (event.has_workflow_started()) return event.run_id();
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return MdbError(rc, "cursor read");
  return Internal("stored history of '" + std::string(workflow_id) + "': event " +
                  std::to_string(seq) + " is compact but no WorkflowStarted precedes it");
}

int Environment::ApplyAppends(MDB_txn* txn, const WriteBatch& batch, StoredWorkflows& workflows) {
  for (const AppendOp& op : batch.appends) {
    for (const HistoryEvent& event : op.events) {
      AION_RETURN_IF_MDB_ERROR(PutEvent(
          txn, db.history, keys::HistoryKey(op.workflow_id, event.seq()), event, op.record));
    }
    AION_RETURN_IF_MDB_ERROR(PutMessage(txn, db.workflows, op.workflow_id, op.record));
    std::optional<WorkflowStatus>& status = workflows[op.workflow_id].status;
    if (status != op.record.status()) {
      if (status) {
        AION_RETURN_IF_MDB_ERROR(
            DeleteKey(txn, db.by_status, keys::StatusKey(*status, op.workflow_id)));
      }
      AION_RETURN_IF_MDB_ERROR(
          PutEmpty(txn, db.by_status, keys::StatusKey(op.record.status(), op.workflow_id)));
      status = op.record.status();
    }
  }
  return 0;
}

// Puts before deletes, so a row put and deleted in one batch ends absent.
int Environment::ApplyRows(MDB_txn* txn, const WriteBatch& batch) {
  for (const auto& e : batch.dedupe_puts) {
    DedupeEntry compact = e;  // its key is the row's
    compact.clear_key();
    AION_RETURN_IF_MDB_ERROR(PutCompact(txn, db.dedupe, e.key(), compact));
  }
  for (const auto& k : batch.dedupe_deletes) AION_RETURN_IF_MDB_ERROR(DeleteKey(txn, db.dedupe, k));
  for (const auto& t : batch.timer_puts) {
    AION_RETURN_IF_MDB_ERROR(PutMessage(txn, db.timers, keys::TimerKey(t), t));
  }
  for (const auto& t : batch.timer_deletes) {
    AION_RETURN_IF_MDB_ERROR(DeleteKey(txn, db.timers, keys::TimerKey(t)));
  }
  for (const auto& row : batch.outbox_puts) {
    AION_RETURN_IF_MDB_ERROR(PutMessage(txn, db.outbox, row.key(), row));
  }
  for (const auto& k : batch.outbox_deletes) AION_RETURN_IF_MDB_ERROR(DeleteKey(txn, db.outbox, k));
  return 0;
}

Attempt Environment::WriteBatchInTxn(MDB_txn* txn, const WriteBatch& batch) {
  Result<StoredWorkflows> stored = CheckHeads(txn, batch);
  if (!stored.ok()) return Attempt::Fail(stored.status());
  if (int rc = ApplyAppends(txn, batch, *stored)) return Attempt::Mdb(rc, "write appends");
  if (int rc = ApplyRows(txn, batch)) return Attempt::Mdb(rc, "write rows");
  return {};
}

Result<std::unique_ptr<LmdbStore>> LmdbStore::Open(const LmdbStoreOptions& options) {
  AION_RETURN_IF_ERROR(CheckOptions(options));
  std::error_code ec;
  std::filesystem::create_directories(options.directory, ec);
  if (ec) {
    return Unavailable("lmdb store: cannot create " + options.directory.string() + ": " +
                       ec.message());
  }
  const std::string canonical = std::filesystem::canonical(options.directory, ec).string();
  if (ec) return Unavailable("lmdb store: cannot resolve " + options.directory.string());
  auto env = std::make_unique<Environment>();
  env->options = options;
  // Doubling a page-aligned map stays page-aligned only below an aligned limit.
  env->options.max_map_size_bytes = RoundUpToPage(options.max_map_size_bytes);
  if (!OpenDirectories::Claim(canonical)) {
    return Unavailable("lmdb store " + canonical + " is already open in this process");
  }
  env->claimed_dir = canonical;
  AION_RETURN_IF_ERROR(env->OpenEnvironment());
  return std::unique_ptr<LmdbStore>(new LmdbStore(std::move(env)));
}

LmdbStore::LmdbStore(std::unique_ptr<Environment> env) : env_(std::move(env)) {}
LmdbStore::~LmdbStore() = default;

Status LmdbStore::Commit(const WriteBatch& batch) {
  if (batch.empty()) return Status::Ok();
  AION_RETURN_IF_ERROR(CheckWriteBatchShape(batch, env_->max_key_size));
  return env_->RunWriteTxn([&](MDB_txn* txn) { return env_->WriteBatchInTxn(txn, batch); });
}

Result<WorkflowRecord> LmdbStore::GetWorkflow(std::string_view workflow_id) {
  const Status not_found = NotFound("no workflow '" + std::string(workflow_id) + "'");
  if (!env_->FitsKey(workflow_id)) return not_found;
  ReadTxn txn(*env_);
  AION_RETURN_IF_ERROR(txn.Begin());
  Result<std::optional<WorkflowRecord>> record = env_->ReadRecord(txn.get(), workflow_id);
  if (!record.ok()) return record.status();
  if (!*record) return not_found;
  return std::move(**record);
}

Result<std::vector<HistoryEvent>> LmdbStore::ReadHistory(std::string_view workflow_id,
                                                         std::uint64_t from_seq,
                                                         std::size_t limit) {
  std::vector<HistoryEvent> events;
  const std::string prefix = keys::HistoryPrefix(workflow_id);
  if (limit == 0 || !IsStorableWorkflowId(workflow_id) || prefix.size() + 8 > env_->max_key_size) {
    return events;
  }
  ReadTxn txn(*env_);
  AION_RETURN_IF_ERROR(txn.Begin());
  const std::string from = keys::HistoryKey(workflow_id, std::max<std::uint64_t>(from_seq, 1));
  std::optional<std::string> run_id;  // of the run the events read belong to, once known
  AION_RETURN_IF_ERROR(
      ScanFrom(txn.get(), env_->db.history, from,
               [&](std::string_view key, const MDB_val& v) -> Result<bool> {
                 if (key.size() != prefix.size() + 8 || !key.starts_with(prefix)) return false;
                 HistoryEvent& event = events.emplace_back();
                 bool compact = false;
                 AION_RETURN_IF_ERROR(ParseRow(v, event, "history event", compact));
                 if (event.has_workflow_started()) {
                   run_id = event.run_id();
                 } else if (compact) {
                   if (!run_id) {
                     Result<std::string> found =
                         env_->RunOfCompactEvent(txn.get(), workflow_id, event.seq());
                     if (!found.ok()) return found.status();
                     run_id = std::move(*found);
                   }
                   event.set_run_id(*run_id);
                 }
                 return events.size() < limit;
               }));
  return events;
}

Result<std::vector<WorkflowRecord>> LmdbStore::ListByStatus(WorkflowStatus status,
                                                            std::string_view start_after,
                                                            std::size_t limit) {
  if (!records::WorkflowStatus_IsValid(status)) {
    return InvalidArgument("unknown workflow status " + std::to_string(status));
  }
  std::vector<WorkflowRecord> records;
  if (limit == 0) return records;
  ReadTxn txn(*env_);
  AION_RETURN_IF_ERROR(txn.Begin());
  const std::string after = keys::StatusKey(status, start_after);
  AION_RETURN_IF_ERROR(ScanAfter(txn.get(), env_->db.by_status, after, env_->max_key_size,
                                 [&](std::string_view key, const MDB_val&) -> Result<bool> {
                                   if (key[0] != after[0]) return false;
                                   auto record = env_->ReadRecord(txn.get(), key.substr(1));
                                   if (!record.ok()) return record.status();
                                   if (!*record) {
                                     return Internal("by_status index names missing workflow '" +
                                                     std::string(key.substr(1)) + "'");
                                   }
                                   records.push_back(std::move(**record));
                                   return records.size() < limit;
                                 }));
  return records;
}

Result<std::vector<TimerRow>> LmdbStore::DueTimers(Timestamp until, std::size_t limit) {
  std::vector<TimerRow> timers;
  if (limit == 0) return timers;
  ReadTxn txn(*env_);
  AION_RETURN_IF_ERROR(txn.Begin());
  AION_RETURN_IF_ERROR(ScanFrom(
      txn.get(), env_->db.timers, "", [&](std::string_view key, const MDB_val& v) -> Result<bool> {
        if (keys::TimerKeyFireAt(key) > until) return false;
        AION_RETURN_IF_ERROR(ParseStored(v, timers.emplace_back(), "timer row"));
        return timers.size() < limit;
      }));
  return timers;
}

Result<DedupeEntry> LmdbStore::GetDedupe(std::string_view key) {
  const Status not_found = NotFound("no dedupe entry '" + std::string(key) + "'");
  if (!env_->FitsKey(key)) return not_found;
  ReadTxn txn(*env_);
  AION_RETURN_IF_ERROR(txn.Begin());
  MDB_val k = ToVal(key);
  MDB_val v;
  int rc = mdb_get(txn.get(), env_->db.dedupe, &k, &v);
  if (rc == MDB_NOTFOUND) return not_found;
  if (rc != 0) return MdbError(rc, "read dedupe entry");
  DedupeEntry entry;
  bool compact = false;
  AION_RETURN_IF_ERROR(ParseRow(v, entry, "dedupe entry", compact));
  if (compact) entry.set_key(std::string(key));
  return entry;
}

Result<std::vector<OutboxRow>> LmdbStore::ReadOutbox(std::string_view start_after,
                                                     std::size_t limit) {
  std::vector<OutboxRow> rows;
  if (limit == 0) return rows;
  ReadTxn txn(*env_);
  AION_RETURN_IF_ERROR(txn.Begin());
  AION_RETURN_IF_ERROR(ScanAfter(txn.get(), env_->db.outbox, start_after, env_->max_key_size,
                                 [&](std::string_view, const MDB_val& v) -> Result<bool> {
                                   AION_RETURN_IF_ERROR(
                                       ParseStored(v, rows.emplace_back(), "outbox row"));
                                   return rows.size() < limit;
                                 }));
  return rows;
}

int LmdbStore::StaleReadersCleared() const { return env_->stale_readers_cleared; }

std::size_t LmdbStore::MapSizeBytes() const {
  SharedGateLock lock(env_->gate);
  MDB_envinfo info;
  mdb_env_info(env_->mdb, &info);
  return info.me_mapsize;
}

}  // namespace aion
