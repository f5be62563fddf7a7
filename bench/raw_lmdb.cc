// bench_raw_lmdb: the raw durable-commit limit of this machine's disk through
// LMDB, with the flags the worker's store uses (MDB_NOTLS, sync on: every
// commit is fsynced). For batch sizes 1, 64 and 512, commits batches of
// ~200-byte records (big-endian sequence keys, as history rows) for a fixed
// time and reports commits/s and records/s.
#include <lmdb.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_common.h"

namespace ab = aion::bench;

namespace {

bool g_reuse = false;

struct Env {
  MDB_env* env = nullptr;
  MDB_dbi dbi = 0;
  explicit Env(const std::filesystem::path& dir) {
    Check(mdb_env_create(&env), "create");
    Check(mdb_env_set_mapsize(env, std::size_t{4} << 30), "mapsize");
    Check(mdb_env_set_maxdbs(env, 4), "maxdbs");
    Check(mdb_env_open(env, dir.c_str(), MDB_NOTLS, 0644), "open");
    MDB_txn* txn = nullptr;
    Check(mdb_txn_begin(env, nullptr, 0, &txn), "begin");
    Check(mdb_dbi_open(txn, "history", MDB_CREATE, &dbi), "dbi");
    Check(mdb_txn_commit(txn), "commit");
  }
  ~Env() { mdb_env_close(env); }
  static void Check(int rc, const char* what) {
    if (rc != 0) throw std::runtime_error(std::string("lmdb ") + what + ": " + mdb_strerror(rc));
  }
};

// Commits batches of `batch` records for `seconds`; returns commits/s and
// appends each commit's duration (ms) to `latencies`.
double CommitRep(Env& e, int batch, double seconds, std::uint64_t& next_key,
                 std::vector<double>& latencies) {
  std::string value(200, 'v');
  const auto t0 = ab::Clock::now();
  std::int64_t commits = 0;
  while (ab::Seconds(ab::Clock::now() - t0) < seconds) {
    const auto c0 = ab::Clock::now();
    MDB_txn* txn = nullptr;
    Env::Check(mdb_txn_begin(e.env, nullptr, 0, &txn), "begin");
    for (int i = 0; i < batch; ++i) {
      unsigned char key[8];
      const std::uint64_t k = next_key++;
      for (int b = 0; b < 8; ++b) key[b] = static_cast<unsigned char>(k >> (56 - 8 * b));
      std::memcpy(value.data(), key, 8);
      MDB_val mk{sizeof key, key};
      MDB_val mv{value.size(), value.data()};
      Env::Check(mdb_put(txn, e.dbi, &mk, &mv, MDB_APPEND), "put");
      if (g_reuse && k > static_cast<std::uint64_t>(4 * batch)) {
        // Steady state: drop the record written 4 commits ago, so the data
        // file stops growing and freed pages are reused.
        const std::uint64_t old = k - 4 * batch;
        unsigned char okey[8];
        for (int b = 0; b < 8; ++b) okey[b] = static_cast<unsigned char>(old >> (56 - 8 * b));
        MDB_val ok{sizeof okey, okey};
        mdb_del(txn, e.dbi, &ok, nullptr);
      }
    }
    Env::Check(mdb_txn_commit(txn), "commit");
    latencies.push_back(ab::Millis(ab::Clock::now() - c0));
    ++commits;
  }
  return static_cast<double>(commits) / ab::Seconds(ab::Clock::now() - t0);
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"raw LMDB synced-commit throughput"};
  int reps = 3;
  double seconds = 2.0;
  std::vector<int> batches{1, 64, 512};
  app.add_option("--reps", reps, "repetitions");
  app.add_option("--seconds", seconds, "duration of one repetition per batch size");
  app.add_option("--batches", batches, "records per commit");
  app.add_flag("--reuse", g_reuse, "delete old records so the file stops growing (steady state)");
  CLI11_PARSE(app, argc, argv);

  ab::TempDir dir("raw-lmdb");
  Env env(dir.path());
  std::uint64_t next_key = 1;
  for (int batch : batches) {
    const std::string b = std::to_string(batch);
    ab::Figure commits{"lmdb_synced_commits_per_s_batch" + b, "1/s"};
    ab::Figure records{"lmdb_synced_records_per_s_batch" + b, "1/s"};
    ab::Figure p50{"lmdb_commit_p50_ms_batch" + b, "ms"}, p99{"lmdb_commit_p99_ms_batch" + b, "ms"};
    for (int r = 0; r < reps; ++r) {
      std::vector<double> latencies;
      const double c = CommitRep(env, batch, seconds, next_key, latencies);
      commits.reps.push_back(c);
      records.reps.push_back(c * batch);
      p50.reps.push_back(ab::Percentile(latencies, 50));
      p99.reps.push_back(ab::Percentile(latencies, 99));
      std::cerr << "batch " << batch << " rep " << r + 1 << ": " << c << " commits/s\n";
    }
    commits.note = records.note = b + " x 200 B records per fsynced commit, " +
                                  std::to_string(static_cast<int>(seconds * 1000)) + " ms per rep";
    p50.note = p99.note = "duration of one commit (txn begin .. synced commit)";
    ab::Emit(commits);
    ab::Emit(records);
    if (batch == 1) {
      ab::Emit(p50);
      ab::Emit(p99);
    }
  }
  return 0;
}

int main(int argc, char** argv) { return aion::bench::Guard(argc, argv, &Main); }
