// DataDirLock: one worker per data dir. Holds flock(LOCK_EX) on <dir>/LOCK for
// its lifetime, so a second worker on the same dir (which would open the same
// LMDB environment as a second writer) is refused. The kernel drops the lock
// when the process ends in any way, SIGKILL included; the file stays and is
// reused. The file records the holder's pid, for the refusal message only.
// Not thread-safe: one owner.
#pragma once

#include <filesystem>
#include <memory>

#include "aion/engine/status.h"

namespace aion::worker {

class DataDirLock {
 public:
  // Takes the lock without waiting. `dir` must exist. Errors:
  // kUnavailable "data dir '<dir>' is in use by another aion-worker (pid N)..."
  // when another process (or another DataDirLock) holds it; kInvalidArgument
  // if the lock file cannot be opened.
  static Result<std::unique_ptr<DataDirLock>> Acquire(const std::filesystem::path& dir);
  ~DataDirLock();  // releases the lock (closes the file)
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace aion::worker
