// lmdb_crash_child <dir> <first batch> <initial map bytes>
//
// Commits crash batches first, first+1, ... into the LmdbStore at <dir> until
// it is killed, and writes each batch number to stdout, one line, only after
// its Commit returned. Exits 2 on any error (printed to stderr).
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "aion/lmdb_store/lmdb_store.h"
#include "crash_batches.h"

namespace {

int Fail(const std::string& what, const aion::Status& status) {
  std::fprintf(stderr, "lmdb_crash_child: %s: %s\n", what.c_str(), status.ToString().c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: lmdb_crash_child <dir> <first batch> <initial map bytes>\n");
    return 2;
  }
  // stdout carries only batch numbers; the store's log lines go to stderr.
  spdlog::set_default_logger(spdlog::stderr_logger_st("lmdb_crash_child"));
  aion::LmdbStoreOptions options;
  options.directory = argv[1];
  options.initial_map_size_bytes = std::strtoull(argv[3], nullptr, 10);
  const std::uint64_t first = std::strtoull(argv[2], nullptr, 10);
  auto store = aion::LmdbStore::Open(options);
  if (!store.ok()) return Fail("open", store.status());

  std::map<std::string, std::uint64_t> heads;
  for (std::uint64_t k = 0; k < aion::testing::crash::kWorkflowCount; ++k) {
    const std::string id = aion::testing::crash::WorkflowIdOf(k);
    auto record = (*store)->GetWorkflow(id);
    if (!record.ok() && record.status().code() != aion::StatusCode::kNotFound) {
      return Fail("read " + id, record.status());
    }
    heads[id] = record.ok() ? record->head_seq() : 0;
  }
  for (std::uint64_t n = first;; ++n) {
    const std::string id = aion::testing::crash::WorkflowIdOf(n);
    const aion::WriteBatch batch = aion::testing::crash::CrashBatch(n, heads[id]);
    if (auto status = (*store)->Commit(batch); !status.ok()) {
      return Fail("commit " + std::to_string(n), status);
    }
    heads[id] = batch.appends.front().record.head_seq();
    const std::string line = std::to_string(n) + "\n";
    if (write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      return 2;  // the test went away
    }
  }
}
